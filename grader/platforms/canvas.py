"""Get grades into Canvas: an import CSV for the gradebook, or a direct upload with canvasapi.

``grader canvas-export`` needs no credentials: it fills one column of the gradebook CSV that
Canvas exports (see ``grader.platforms.exports`` for how students are matched) and writes a file for
Canvas' gradebook "Import". ``grader canvas-upload`` posts each grade through the Canvas REST
API (``PUT /api/v1/courses/:course_id/assignments/:assignment_id/submissions/:user_id`` with
``submission[posted_grade]``), addressing students by SIS user id, login id or Canvas id, as
Canvas allows in that URL (``sis_user_id:123``). The token comes from the environment
(``CANVAS_API_TOKEN``), never from the command line, where it would land in shell history.

Both refuse to copy scores out of 100 into a column worth 10 unless ``--scale`` (to what
Canvas says the column is worth) or ``--points N`` says how to convert, and both fail when
not one grade reaches a student. ``canvas-upload --dry-run`` contacts nobody: it prints
each grade it would post.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from grader.errors import ConfigError, GraderError
from grader.platforms.exports import (
    ScoreRow,
    canvas_import,
    conversion_factor,
    grader_max,
    read_scores_csv,
)

__all__ = ["UploadReport", "upload_grades", "add_commands"]

TOKEN_ENV = "CANVAS_API_TOKEN"
URL_ENV = "CANVAS_API_URL"
#: --match value -> (scores.csv field, Canvas user-id prefix in the URL)
MATCHES: dict[str, tuple[str, str]] = {
    "sis_user_id": ("sid", "sis_user_id:"),
    "sis_login_id": ("email", "sis_login_id:"),
    "user_id": ("id", ""),
}


class CanvasError(GraderError):
    """Canvas refused a request or could not be reached."""


@dataclass
class UploadReport:
    posted: list[tuple[str, str]] = field(default_factory=list)  # (canvas user, grade)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (scores id, why)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (canvas user, error)
    factor: float = 1.0  # grader points -> Canvas points
    canvas_points: float | None = None  # what Canvas says the assignment is worth
    sources: dict[str, str] = field(default_factory=dict)  # canvas user -> scores.csv id


def _users_for(row: ScoreRow, match: str) -> list[str]:
    """Canvas ``:user_id`` path segments for a scores.csv row (several for a group)."""
    attr, prefix = MATCHES[match]
    values = [v.strip() for v in str(getattr(row, attr)).split(";") if v.strip()]
    return [prefix + quote(v, safe="@.") for v in values]


def upload_grades(
    url: str,
    token: str,
    course_id: int | str,
    assignment_id: int | str,
    rows: list[ScoreRow],
    *,
    match: str = "sis_user_id",
    dry_run: bool = False,
    scale: bool = False,
    points: float | None = None,
    on_post: Callable[[str, str], None] | None = None,
) -> UploadReport:
    """Post ``rows``' totals as grades of one Canvas assignment; never stops at one failure.

    Before posting anything it checks the assignment's points against the grader's maximum
    (``conversion_factor``). A dry run makes no request at all (``url`` and ``token`` may be
    empty): Canvas' points are then unknown, so only ``points`` can convert.
    """
    if match not in MATCHES:
        raise ConfigError(f"--match must be one of {', '.join(MATCHES)}, not {match!r}")
    report = UploadReport()
    plan: list[tuple[str, str, float]] = []  # (canvas user, scores id, points)
    for row in rows:
        if row.total is None:
            report.skipped.append((row.id, f"no score ({row.status}: {row.error})"))
            continue
        users = _users_for(row, match)
        if not users:
            report.skipped.append((row.id, f"no {MATCHES[match][0]} in scores.csv"))
            continue
        plan.extend((user, row.id, row.total) for user in users)
    if not plan:
        raise ConfigError(
            f"no row of scores.csv has both a score and a {MATCHES[match][0]} to address a "
            f"student by {match} ({len(rows)} rows); nothing to post"
        )
    course = assignment = None
    if not dry_run:
        course, assignment = _connect(url, token, course_id, assignment_id)
        canvas_points = getattr(assignment, "points_possible", None)
        report.canvas_points = float(canvas_points) if canvas_points else None
    report.factor = conversion_factor(
        grader_max(rows),
        report.canvas_points,
        scale=scale,
        points=points,
        what=f"Canvas assignment {assignment_id}",
    )
    from canvasapi.exceptions import CanvasException
    from canvasapi.submission import Submission

    for user, ident, total in plan:
        grade = f"{round(total * report.factor, 4):g}"
        report.sources[user] = ident
        if dry_run:
            report.posted.append((user, grade))
            continue
        assert course is not None and assignment is not None
        sub = Submission(
            assignment._requester,
            {"course_id": course.id, "assignment_id": assignment.id, "user_id": user},
        )
        try:
            sub.edit(submission={"posted_grade": grade})
        except CanvasException as exc:
            report.failed.append((user, str(exc)))
            continue
        report.posted.append((user, grade))
        if on_post is not None:
            on_post(user, grade)
    return report


def _connect(url: str, token: str, course_id: int | str, assignment_id: int | str):
    """(course, assignment) from Canvas, or a ``CanvasError`` saying what to check."""
    from canvasapi import Canvas
    from canvasapi.exceptions import CanvasException

    canvas = Canvas(url.rstrip("/"), token)
    try:
        course = canvas.get_course(course_id)
        assignment = course.get_assignment(assignment_id)
    except CanvasException as exc:
        raise CanvasError(
            f"Canvas at {url} refused course {course_id} / assignment {assignment_id}: {exc} "
            f"(check the ids and that the token in ${TOKEN_ENV} may grade this course)"
        ) from exc
    except Exception as exc:  # requests' connection errors
        raise CanvasError(f"cannot reach Canvas at {url}: {exc}") from exc
    return course, assignment


# --------------------------------------------------------------------------- CLI


def _cmd_export(args) -> int:
    report = canvas_import(
        Path(args.gradebook),
        Path(args.scores),
        args.column,
        Path(args.out),
        scale=args.scale,
        points=args.points,
    )
    print(f"filled {len(report.matched)} grades of {args.column!r} into {args.out}")
    for warning in report.warnings:
        print(f"warning: {warning}")
    if report.unmatched_scores:
        shown = ", ".join(report.unmatched_scores[:10])
        more = " ..." if len(report.unmatched_scores) > 10 else ""
        print(
            f"warning: {len(report.unmatched_scores)} scores match no student in the gradebook: "
            f"{shown}{more}"
        )
    if report.ambiguous:
        print(f"warning: ambiguous (several gradebook rows): {', '.join(report.ambiguous)}")
    if report.no_score:
        print(f"note: {len(report.no_score)} students in the gradebook have no score (unchanged)")
    print("import it in Canvas: Grades > Import, then review the changes before saving")
    return 0


def _cmd_upload(args) -> int:
    token = os.environ.get(TOKEN_ENV, "")
    url = args.url or os.environ.get(URL_ENV, "")
    if not args.dry_run:
        if not token:
            raise ConfigError(f"set ${TOKEN_ENV} to a Canvas access token (Account > Settings)")
        if not url:
            raise ConfigError(f"give --url or set ${URL_ENV} (e.g. https://canvas.example.edu)")
    rows = read_scores_csv(Path(args.scores))
    report = upload_grades(
        url,
        token,
        args.course,
        args.assignment_id,
        rows,
        match=args.match,
        dry_run=args.dry_run,
        scale=args.scale,
        points=args.points,
    )
    where = f"course {args.course}, assignment {args.assignment_id}"
    if report.factor != 1.0:
        print(f"scores scaled by {report.factor:g} (grader maximum -> the column's points)")
    if args.dry_run:
        print(f"dry run (Canvas not contacted): would post {len(report.posted)} grades to {where}")
        for user, grade in report.posted:
            print(f"  {grade:>8}  {user}  ({report.sources.get(user, '')})")
        if report.canvas_points is None and args.points is None:
            print(
                "note: the assignment's points in Canvas were not checked (dry run); the real "
                "upload refuses a mismatch unless --scale or --points N"
            )
    else:
        print(f"posted {len(report.posted)} grades to {where}")
    for ident, why in report.skipped:
        print(f"skipped {ident}: {why}")
    for user, error in report.failed:
        print(f"FAILED {user}: {error}")
    if not args.dry_run and not report.posted:
        print(f"grader: Canvas accepted none of the {len(report.failed)} grades", file=sys.stderr)
        return 1
    return 1 if report.failed else 0


def _conversion_args(parser, source: str) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--scale",
        action="store_true",
        help=f"scale scores from the grader's maximum to the points in {source} (without "
        "it, a different maximum is refused)",
    )
    group.add_argument(
        "--points",
        type=float,
        metavar="N",
        help="the Canvas column is worth N points: scale scores from the grader's maximum to N",
    )


def add_commands(subparsers) -> None:
    """Register ``canvas-export`` and ``canvas-upload``."""
    e = subparsers.add_parser(
        "canvas-export",
        help="fill an assignment column of Canvas' gradebook CSV from scores.csv",
        description=(
            "Match scores.csv rows to students of Canvas' exported gradebook (SIS User ID, "
            "then SIS Login ID, then Canvas ID; see docs/containers.md) and write a CSV for "
            "Canvas' gradebook import holding only that column."
        ),
    )
    e.add_argument("--gradebook", required=True, help="CSV exported from Canvas' gradebook")
    e.add_argument("--scores", required=True, help="scores.csv written by 'grader batch'")
    e.add_argument("--column", required=True, help='gradebook column, e.g. "Module 1 (123)"')
    e.add_argument("--out", required=True, help="CSV to write for Canvas' import")
    _conversion_args(e, "the column's 'Points Possible' row")
    e.set_defaults(func=_cmd_export)

    u = subparsers.add_parser(
        "canvas-upload",
        help="post scores.csv grades to a Canvas assignment (REST API; token from env)",
        description=(
            f"Post every total of scores.csv as the grade of one Canvas assignment. The token "
            f"is read from ${TOKEN_ENV}; the URL from --url or ${URL_ENV}."
        ),
    )
    u.add_argument("--scores", required=True, help="scores.csv written by 'grader batch'")
    u.add_argument("--course", required=True, help="Canvas course id")
    u.add_argument("--assignment-id", required=True, help="Canvas assignment id")
    u.add_argument("--url", help=f"Canvas base URL (default ${URL_ENV})")
    u.add_argument(
        "--match",
        choices=sorted(MATCHES),
        default="sis_user_id",
        help="how scores.csv names a student: sid as SIS user id (default), email as SIS "
        "login id, or id as Canvas user id",
    )
    _conversion_args(u, "the assignment's points_possible in Canvas")
    u.add_argument(
        "--dry-run",
        action="store_true",
        help="contact nobody: print each grade that would be posted (no token needed)",
    )
    u.set_defaults(func=_cmd_upload)
