"""Files for TAs: ``scores.csv`` from a batch, and a Canvas gradebook import CSV.

scores.csv has one row per submission: who (id, name, sid, email from Gradescope's export
metadata when there is one), the points of each task, the total, a status (``ok``,
``timeout``, ``oom``, ``error``, ...) and the error message, so a TA can sort by status and
look only at the rows that need a human.

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
with a warning. Rows without a score (status ``error``) leave the gradebook cell unchanged.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .assignment import Assignment
from .errors import ConfigError
from .files import write_atomic

__all__ = [
    "ScoreRow",
    "row_from_results",
    "write_scores_csv",
    "read_scores_csv",
    "CanvasImport",
    "canvas_import",
]

FIXED_COLUMNS = ("id", "name", "sid", "email")
TAIL_COLUMNS = ("total", "max_score", "status", "error", "seconds")
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
    seconds: float | None = None


def task_column(task_id: str) -> str:
    return f"task {task_id}"


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
        row.status = "error"
        row.error = meta.get("error", "not graded")
        return row
    extra = results.get("extra_data") if isinstance(results.get("extra_data"), dict) else {}
    for task in extra.get("tasks", []) or []:
        if isinstance(task, dict) and "id" in task:
            row.tasks[str(task["id"])] = float(task.get("score", 0.0))
    row.total = float(results.get("score", 0.0))
    if isinstance(extra.get("max_score"), (int, float)):
        row.max_score = float(extra["max_score"])
    container = extra.get("container") if isinstance(extra.get("container"), dict) else {}
    row.status = str(container.get("status", "ok"))
    if container.get("seconds") is not None:
        row.seconds = float(container["seconds"])
    if row.status != "ok" or extra.get("error"):
        row.error = _one_line(str(extra.get("error") or results.get("output", "")))
    return row


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
                _fmt(row.seconds),
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
) -> CanvasImport:
    """Fill ``column`` of Canvas' exported gradebook from scores.csv; write the import CSV.

    The output keeps Canvas' identifying columns and ``column`` only, so importing it cannot
    touch any other assignment. With ``scale``, scores are scaled to the column's "Points
    Possible" (for a Canvas assignment worth, say, 10 points while the grader scores of 100).
    """
    header, rows = _read_gradebook(gradebook)
    column = _find_column(header, column, gradebook)
    score_rows = read_scores_csv(scores)
    report = CanvasImport()

    points_possible: float | None = None
    for row in rows:
        if _is_points_row(row):
            try:
                points_possible = float(row.get(column, "").strip())
            except ValueError:
                points_possible = None
    max_scores = {r.max_score for r in score_rows if r.max_score}
    factor = 1.0
    if points_possible and max_scores and max_scores != {points_possible}:
        grader_max = max(max_scores)
        if scale:
            factor = points_possible / grader_max
        else:
            report.warnings.append(
                f"Canvas says {column!r} is worth {points_possible:g} points but the grader "
                f"scored out of {grader_max:g}; grades are copied as they are (use --scale "
                "to scale them)"
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
