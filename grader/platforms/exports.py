"""Files for TAs: ``scores.csv`` from a batch, and a Canvas gradebook import CSV.

scores.csv has one row per submission: who (id, name, sid, email from Gradescope's export
metadata when there is one), the points of each task, the total, the submission's status
and the reason, so a TA can sort by status and look only at the rows that need a human.
Statuses: ``ok``, ``empty`` (nothing of the assignment found), ``import-error`` (a file did
not import), ``timeout``, ``crashed`` (the grader or its container died: out of memory, no
report), ``bad-submission`` (unreadable: not a folder or zip, a broken zip), and
``not-graded`` (no result at all: the engine failed; the row has no total). It holds
nothing that varies between two runs of the same grade (no timings), so two runs compare
byte for byte.

Canvas import: Canvas exports its gradebook as CSV (Student, ID, SIS User ID, SIS Login ID,
Section, then one column per assignment named "Title (assignment id)", and a "Points
Possible" row). ``canvas_import`` fills one assignment column from scores.csv and writes a
CSV with the identifying columns and that column only, which Canvas' "Import" accepts and
applies to that column alone. A scores.csv row is matched to a gradebook row by, in order:

1. its ``sid`` against "SIS User ID", then "SIS Login ID", then "ID" (Canvas user id);
2. its ``email`` against "SIS Login ID" (schools that log in by e-mail);
3. its ``id`` against the same three columns (a folder of submissions named by student id).

Matching ignores case and surrounding spaces. A group submission (sids joined by ";") fills
the row of every member. A key that matches two gradebook rows is ambiguous and skipped
with a warning. Rows without a score (``not-graded``) leave the gradebook cell unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.course.assignment import Assignment
from grader.errors import ConfigError
from grader.files import write_atomic

__all__ = [
    "STATUSES",
    "ScoreRow",
    "submission_status",
    "row_from_results",
    "score_changes",
    "write_scores_csv",
    "read_scores_csv",
    "CanvasImport",
    "canvas_import",
    "conversion_factor",
]

FIXED_COLUMNS = ("id", "name", "sid", "email")
TAIL_COLUMNS = ("total", "max_score", "status", "error")
#: Submission-level statuses (the grader's ``extra_data.status``), then the batch's own.
STATUSES = ("ok", "empty", "import-error", "timeout", "crashed", "bad-submission")
NOT_GRADED = "not-graded"
#: ``extra_data.container.status`` (docker) / ``extra_data.process.status`` (sandbox batch)
#: of a run that left no usable report of the grader's own -> the submission's status.
_OUTER_STATUS = {
    "timeout": "timeout",
    "oom": "crashed",
    "no-results": "crashed",
    "invalid-results": "crashed",
    "grader-failed": "crashed",
    "crashed": "crashed",
    "bad-submission": "bad-submission",
}
#: Gradebook columns that identify a student; everything else is a grade column.
CANVAS_ID_COLUMNS = (
    "Student",
    "ID",
    "SIS User ID",
    "SIS Login ID",
    "Integration ID",
    "Root Account",
    "Section",
)
_MATCH_COLUMNS = ("SIS User ID", "SIS Login ID", "ID")


@dataclass
class ScoreRow:
    """One submission's line in scores.csv."""

    id: str
    name: str = ""
    sid: str = ""
    email: str = ""
    tasks: dict[str, float] = field(default_factory=dict)
    total: float | None = None
    max_score: float | None = None
    status: str = "ok"
    error: str = ""


def task_column(task_id: str) -> str:
    return f"task {task_id}"


def submission_status(results: dict[str, Any]) -> tuple[str, str]:
    """(status, one-line reason) of a validated results.json; the reason is "" when ok.

    A run that died around the grader (container killed, no report) decides first; then the
    grader's own ``extra_data.status`` and ``problem``. Reports of a grader older than those
    fields: a fallback report is ``crashed``, any other error report ``bad-submission``.
    """
    extra = results.get("extra_data") if isinstance(results.get("extra_data"), dict) else {}
    error = str(extra.get("error") or "")
    for key in ("container", "process"):
        outer = extra.get(key)
        if isinstance(outer, dict) and outer.get("status", "ok") != "ok":
            status = _OUTER_STATUS.get(str(outer["status"]), "crashed")
            return status, _one_line(error or str(outer.get("problem") or "") or _output(results))
    status = extra.get("status")
    if isinstance(status, str) and status:
        if status == "ok":
            return "ok", ""
        return status, _one_line(str(extra.get("problem") or "") or error or _output(results))
    if extra.get("autograder_fallback"):
        return "crashed", _one_line(error or _output(results))
    if error:
        return "bad-submission", _one_line(error)
    return "ok", ""


def _output(results: dict[str, Any]) -> str:
    """The report's output without its first line (the score)."""
    lines = str(results.get("output", "")).splitlines()
    return " ".join(lines[1:] if lines and lines[0].startswith("Score:") else lines)


def row_from_results(
    submission_id: str, results: dict[str, Any] | None, meta: dict[str, str] | None = None
) -> ScoreRow:
    """A scores.csv row from a validated results.json dict (None: grading never finished)."""
    meta = meta or {}
    row = ScoreRow(
        id=submission_id,
        name=meta.get("name", ""),
        sid=meta.get("sid", ""),
        email=meta.get("email", ""),
    )
    if results is None:
        row.status = NOT_GRADED
        row.error = _one_line(meta.get("error", "not graded"))
        return row
    extra = results.get("extra_data") if isinstance(results.get("extra_data"), dict) else {}
    for task in extra.get("tasks", []) or []:
        if isinstance(task, dict) and "id" in task:
            row.tasks[str(task["id"])] = float(task.get("score", 0.0))
    row.total = float(results.get("score", 0.0))
    if isinstance(extra.get("max_score"), (int, float)):
        row.max_score = float(extra["max_score"])
    row.status, row.error = submission_status(results)
    return row


def score_changes(
    old: dict[str, ScoreRow], new: dict[str, ScoreRow]
) -> list[tuple[str, list[tuple[str, float | None, float | None]]]]:
    """Every submission whose total or a task's points differ between two runs.

    Returns ``[(id, [(what, old, new), ...]), ...]`` sorted by id, ``what`` being "total"
    or "task <id>"; a submission in one run only shows as total None on the other side.
    """
    changes = []
    for ident in sorted(set(old) | set(new)):
        a, b = old.get(ident), new.get(ident)
        diffs: list[tuple[str, float | None, float | None]] = []
        if a is None or b is None or a.total != b.total:
            diffs.append(("total", a.total if a else None, b.total if b else None))
        if a is not None and b is not None:
            for task in sorted(set(a.tasks) | set(b.tasks)):
                if a.tasks.get(task) != b.tasks.get(task):
                    diffs.append((f"task {task}", a.tasks.get(task), b.tasks.get(task)))
        if diffs:
            changes.append((ident, diffs))
    return changes


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return f"{round(value, 4):g}"


def write_scores_csv(rows: Iterable[ScoreRow], assignment: Assignment, path: Path) -> Path:
    """Write scores.csv (sorted by id) atomically and return its path."""
    task_ids = [t.id for t in assignment.tasks]
    header = [*FIXED_COLUMNS, *(task_column(t) for t in task_ids), *TAIL_COLUMNS]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for row in sorted(rows, key=lambda r: r.id):
        writer.writerow(
            [
                row.id,
                row.name,
                row.sid,
                row.email,
                *(_fmt(row.tasks.get(t)) if row.total is not None else "" for t in task_ids),
                _fmt(row.total),
                _fmt(row.max_score if row.max_score is not None else assignment.max_score),
                row.status,
                row.error,
            ]
        )
    write_atomic(Path(path), buf.getvalue())
    return Path(path)


def read_scores_csv(path: Path) -> list[ScoreRow]:
    """Read a scores.csv written by ``write_scores_csv`` (extra columns are ignored)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            fields = reader.fieldnames or []
            if "id" not in fields or "total" not in fields:
                raise ConfigError(
                    f"{path}: not a scores.csv (needs 'id' and 'total' columns, has {fields})"
                )
            rows = []
            for rec in reader:
                total = rec.get("total", "").strip()
                rows.append(
                    ScoreRow(
                        id=rec.get("id", ""),
                        name=rec.get("name", "") or "",
                        sid=rec.get("sid", "") or "",
                        email=rec.get("email", "") or "",
                        tasks={
                            k[5:]: float(v) for k, v in rec.items() if k.startswith("task ") and v
                        },
                        total=float(total) if total else None,
                        max_score=float(rec["max_score"]) if rec.get("max_score") else None,
                        status=rec.get("status", "") or "",
                        error=rec.get("error", "") or "",
                    )
                )
            return rows
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path}: a number column holds a non-number ({exc})") from exc


# --------------------------------------------------------------------------- Canvas


@dataclass
class CanvasImport:
    """What ``canvas_import`` did, for the TA's summary."""

    matched: list[tuple[str, str, float]] = field(default_factory=list)  # (score id, student, pts)
    unmatched_scores: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)
    no_score: list[str] = field(default_factory=list)  # gradebook students left unchanged
    warnings: list[str] = field(default_factory=list)


def grader_max(rows: Iterable[ScoreRow]) -> float | None:
    """The grader's maximum score as scores.csv states it (None: no row says)."""
    maxima = [r.max_score for r in rows if r.max_score]
    return max(maxima) if maxima else None


def conversion_factor(
    grader_max: float | None,
    canvas_points: float | None,
    *,
    scale: bool = False,
    points: float | None = None,
    what: str = "Canvas says the assignment",
) -> float:
    """What to multiply the grader's scores by to fill a Canvas column; refuses a silent mismatch.

    ``canvas_points`` is what Canvas says the column is worth (None: unknown). ``points``
    (``--points N``) says it instead, and scales to it; ``scale`` (``--scale``) scales to
    ``canvas_points``. Equal maxima need neither; a different one needs one of them.
    """
    if points is not None:
        if points <= 0:
            raise ConfigError(f"--points must be positive, not {points:g}")
        if canvas_points is not None and abs(canvas_points - points) > 1e-9:
            raise ConfigError(
                f"--points {points:g}, but {what} is worth {canvas_points:g} points; "
                "fix one of them"
            )
        target = points
    elif canvas_points is not None:
        target = canvas_points
    elif scale:
        raise ConfigError(
            f"--scale needs the points the Canvas column is worth, and {what} is worth an "
            "unknown number of points here; give --points N instead"
        )
    else:
        return 1.0
    if grader_max is None or abs(grader_max - target) < 1e-9:
        return 1.0
    if scale or points is not None:
        return target / grader_max
    raise ConfigError(
        f"{what} is worth {target:g} points but the grader scored out of {grader_max:g}; "
        f"nothing was written. Pass --scale to convert (x{target / grader_max:g}), or "
        "--points N to say what the column is worth"
    )


def _norm(value: str) -> str:
    return value.strip().casefold()


def _is_points_row(row: dict[str, str]) -> bool:
    return _norm(row.get("Student", "")) in ("points possible",)


def _keys(values: str) -> list[str]:
    return [_norm(v) for v in values.replace(",", ";").split(";") if v.strip()]


def _read_gradebook(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except OSError as exc:
        raise ConfigError(f"cannot read the Canvas gradebook {path}: {exc}") from exc
    if "Student" not in header or "ID" not in header:
        raise ConfigError(
            f"{path}: not a Canvas gradebook export (needs 'Student' and 'ID' columns; "
            f"has {header[:6]})"
        )
    return header, rows


def _find_column(header: Sequence[str], column: str, path: Path) -> str:
    if column in header:
        return column
    grades = [h for h in header if h not in CANVAS_ID_COLUMNS]
    close = [h for h in grades if _norm(column) in _norm(h) or _norm(h) in _norm(column)]
    hint = f" Did you mean {close[0]!r}?" if close else ""
    shown = ", ".join(repr(h) for h in grades[:12])
    raise ConfigError(
        f"{path}: no column {column!r}.{hint} Assignment columns are named 'Title (id)': "
        f"{shown}{' ...' if len(grades) > 12 else ''}"
    )


def canvas_import(
    gradebook: Path,
    scores: Path,
    column: str,
    out: Path,
    *,
    scale: bool = False,
    points: float | None = None,
) -> CanvasImport:
    """Fill ``column`` of Canvas' exported gradebook from scores.csv; write the import CSV.

    The output keeps Canvas' identifying columns and ``column`` only, so importing it cannot
    touch any other assignment. With ``scale``, scores are scaled to the column's "Points
    Possible" (for a Canvas assignment worth, say, 10 points while the grader scores of 100);
    ``points`` says what the column is worth and scales to it. A mismatch without either is
    refused (``ConfigError``), and so is a scores.csv of which no row matches a student: an
    import that changes nothing is a mistake, never a result.
    """
    header, rows = _read_gradebook(gradebook)
    column = _find_column(header, column, gradebook)
    score_rows = read_scores_csv(scores)
    report = CanvasImport()

    points_possible: float | None = None
    for row in rows:
        if _is_points_row(row):
            try:
                points_possible = float(row.get(column, "").strip()) or None
            except ValueError:
                points_possible = None
    factor = conversion_factor(
        grader_max(score_rows),
        points_possible,
        scale=scale,
        points=points,
        what=f"the gradebook says {column!r}",
    )

    index: dict[str, dict[str, list[int]]] = {c: {} for c in _MATCH_COLUMNS}
    for i, row in enumerate(rows):
        if _is_points_row(row):
            continue
        for col in _MATCH_COLUMNS:
            value = _norm(row.get(col, "") or "")
            if value:
                index[col].setdefault(value, []).append(i)

    def lookup(keys: list[str], columns: Sequence[str]) -> list[int] | None:
        for key in keys:
            for col in columns:
                hits = index[col].get(key)
                if hits:
                    return hits
        return None

    filled: dict[int, float] = {}
    for srow in score_rows:
        if srow.total is None:
            continue
        found: list[int] = []
        ambiguous = False
        # Stages in order of trust; a later stage is tried only when the earlier found no one.
        stages = [
            [([sid], _MATCH_COLUMNS) for sid in _keys(srow.sid)],  # one per group member
            [([email], ("SIS Login ID",)) for email in _keys(srow.email)],
            [([_norm(srow.id)], _MATCH_COLUMNS)],
        ]
        for stage in stages:
            for keys, columns in stage:
                hits = lookup(keys, columns)
                if hits is None:
                    continue
                if len(hits) > 1:
                    ambiguous = True
                elif hits[0] not in found:
                    found.extend(hits)
            if found:
                break
        if ambiguous:
            report.ambiguous.append(srow.id)
        if not found:
            if not ambiguous:
                report.unmatched_scores.append(srow.id)
            continue
        points = round(srow.total * factor, 4)
        for i in found:
            if i in filled and filled[i] != points:
                report.warnings.append(
                    f"{rows[i].get('Student', '?')} has two submissions ({srow.id} and "
                    "another); the higher score is kept"
                )
                points = max(points, filled[i])
            filled[i] = points
            report.matched.append((srow.id, rows[i].get("Student", ""), points))

    if not report.matched:
        scored = [r for r in score_rows if r.total is not None]
        if not scored:
            raise ConfigError(f"{scores}: no row has a score (nothing to import)")
        raise ConfigError(
            f"none of the {len(scored)} scores of {scores} matched a student of {gradebook} "
            "(tried each row's sid against SIS User ID, SIS Login ID and ID, its email against "
            "SIS Login ID, its id against all three). Is this the right course's gradebook, "
            "and does scores.csv have sid/email columns (Gradescope's export fills them)?"
        )
    keep = [c for c in header if c in CANVAS_ID_COLUMNS]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([*keep, column])
    for i, row in enumerate(rows):
        value = row.get(column, "")
        if i in filled:
            value = _fmt(filled[i])
        elif not _is_points_row(row) and row.get("Student", "").strip():
            report.no_score.append(row.get("Student", ""))
        writer.writerow([*(row.get(c, "") for c in keep), value])
    write_atomic(Path(out), buf.getvalue())
    return report
