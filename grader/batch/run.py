"""Regrade a whole class, N submissions at a time, resumable, keyed on what made each result.

Input is a folder of submission folders or zips (the id is the file name), or Gradescope's
"Export Submissions" folder (``submission_metadata.yml`` plus one ``submission_<id>`` folder
each; names, SIDs and e-mails come from the yml). Each submission is graded in its own
container (``--mode docker``) or by its own ``grader grade --mode sandbox`` process
(``--mode sandbox``, at most one per CPU core); ``auto`` takes docker when an engine answers.

Every result is written atomically to ``OUT/results/<id>.json`` as soon as it exists, with
the key of what made it (``extra_data.batch``): the content of the files the grader takes
from the submission, the assignment, tests and reference, the grader's version and the
runner (image id, or sandbox and the Python version), and the grading options. A rerun
(a batch killed halfway, a test fixed, a student's new zip) regrades exactly the submissions
whose key changed and says why; ``--force`` regrades all. One submission failing never stops
the batch; only a machine fault does (the engine down, a sandbox that cannot start), after
recording which submissions are left. At the end: ``OUT/scores.csv``, a summary table, and
every student whose score changed since the results OUT held before (or ``--diff OLD_OUT``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.batch.discovery import BatchItem, discover
from grader.batch.keys import (
    course_parts,
    describe_reasons,
    grader_version,
    key_parts,
    load_valid_result,
    regrade_reason,
    result_key,
)
from grader.batch.local import MODES, local_executor
from grader.batch.progress import ProgressLine
from grader.course.assignment import Assignment
from grader.errors import ConfigError, GraderError, MachineError

# --------------------------------------------------------------------------- results


@dataclass
class BatchSummary:
    """What a batch run did; ``rows`` feed scores.csv."""

    total: int = 0
    skipped: int = 0  # results kept: their key did not change
    graded: int = 0
    mode: str = ""
    reasons: Counter = field(default_factory=Counter)  # why each regraded submission was
    failed: list[tuple[str, str]] = field(default_factory=list)  # (id, why) with no result
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    scores_csv: Path | None = None
    results: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    #: students whose score differs from the results OUT held before (see score_changes)
    changes: list[tuple[str, list[tuple[str, float | None, float | None]]]] = field(
        default_factory=list
    )


def run_batch(
    submissions: Path,
    assignment: Assignment,
    out: Path,
    *,
    jobs: int = 1,
    force: bool = False,
    mode: str = "auto",
    image: str | None = None,
    timeout: float | None = None,
    memory_mb: int | None = None,
    max_examples: int | None = None,
    diff: Path | None = None,
    scheduler: str | None = None,
    console=None,
    progress: bool = True,
) -> BatchSummary:
    """Grade every submission in ``submissions`` into ``out``; see the module docstring.

    With ``scheduler`` (a Dask scheduler's address) the grades run on that cluster's workers
    (``grader.batch.cluster``) instead of this machine; the rest is the same.
    """
    from rich.console import Console

    from grader.platforms.containers import write_json_atomic
    from grader.platforms.exports import (
        read_scores_csv,
        row_from_results,
        score_changes,
        write_scores_csv,
    )

    console = console or Console(stderr=True, highlight=False, soft_wrap=True)
    out = Path(out)
    results_dir = out / "results"
    logs_dir = out / "logs"
    results_dir.mkdir(parents=True, exist_ok=True)
    items = discover(submissions)
    start = time.monotonic()

    if mode not in MODES:
        raise ConfigError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    executor: Any
    if scheduler is not None:
        from grader.batch.cluster import ClusterExecutor

        executor = ClusterExecutor(
            scheduler,
            assignment,
            mode=mode,
            image=image,
            timeout=timeout,
            max_examples=max_examples,
            logs_dir=logs_dir,
            console=console,
        )
    else:
        executor = local_executor(
            assignment,
            out,
            mode=mode,
            jobs=jobs,
            image=image,
            timeout=timeout,
            memory_mb=memory_mb,
            max_examples=max_examples,
            console=console,
        )
    try:
        summary = BatchSummary(total=len(items), mode=executor.mode)

        course, grader = course_parts(assignment), grader_version()
        options = {"max_examples": max_examples}
        parts: dict[str, dict[str, str]] = {}
        previous: dict[str, dict[str, Any]] = {}  # what OUT held before, for the changes
        todo: list[tuple[BatchItem, str]] = []
        for item in items:
            parts[item.id] = key_parts(
                item.path, assignment, executor.runner, options, course=course, grader=grader
            )
            stored = load_valid_result(results_dir / f"{item.id}.json")
            if stored is not None:
                previous[item.id] = stored
            reason = regrade_reason(stored, parts[item.id], force)
            if reason is None:
                summary.skipped += 1
                summary.results[item.id] = stored
            else:
                summary.reasons[reason] += 1
                todo.append((item, reason))
        console.print(f"{len(items)} submissions in {submissions}: " + _plan(summary))

        def save(item: BatchItem, doc: dict[str, Any]) -> None:
            extra = doc["extra_data"]
            extra["batch"] = {"key": result_key(parts[item.id]), "parts": parts[item.id]}
            write_json_atomic(results_dir / f"{item.id}.json", doc)

        if todo:
            console.print(f"grading {len(todo)} {executor.describe()}")
            _grade_all(executor, [item for item, _ in todo], summary, save, console, progress)
    finally:
        executor.close()

    rows = []
    for item in items:
        doc = summary.results.get(item.id)
        meta = dict(item.meta)
        if doc is None:
            meta["error"] = next((why for i, why in summary.failed if i == item.id), "not graded")
        rows.append(row_from_results(item.id, doc, meta))
    summary.scores_csv = write_scores_csv(rows, assignment, out / "scores.csv")
    summary.seconds = time.monotonic() - start
    for row in rows:
        summary.statuses[row.status] += 1
    new_rows = {r.id: r for r in rows}
    if diff is not None:
        old_csv = Path(diff) / "scores.csv" if Path(diff).is_dir() else Path(diff)
        old_rows = {r.id: r for r in read_scores_csv(old_csv)}
        summary.changes = score_changes(old_rows, new_rows)
        against = str(old_csv)
    else:
        meta_of = {i.id: i.meta for i in items}
        old_rows = {
            ident: row_from_results(ident, doc, meta_of.get(ident))
            for ident, doc in previous.items()
        }
        summary.changes = score_changes(old_rows, {k: new_rows[k] for k in old_rows})
        against = "the results OUT held before" if previous else ""
    print_summary(summary, rows, assignment, console, against=against)
    return summary


def _grade_all(
    executor,
    queue: list[BatchItem],
    summary: BatchSummary,
    save: Callable[[BatchItem, dict[str, Any]], None],
    console,
    progress: bool,
) -> None:
    """Feed ``executor`` as it has room, record and save each result as it finishes."""
    bar = ProgressLine(len(queue), executor.slots(), console.file) if progress else None
    queue = list(queue)
    machine_down: GraderError | None = None
    pending: dict[Future, BatchItem] = {}
    try:
        while queue or pending:
            room = executor.slots() - len(pending)
            while queue and room > 0 and machine_down is None:
                item = queue.pop(0)
                if bar is not None:
                    bar.started(item.id)
                pending[executor.submit(item)] = item
                room -= 1
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                item = pending.pop(fut)
                last = _record(fut, item, summary, save)
                if isinstance(last, MachineError):
                    machine_down = machine_down or last
                    last = f"{item.id}: not graded ({last.__class__.__name__})"
                if bar is not None:
                    bar.finished(item.id, last)
    except KeyboardInterrupt:
        executor.interrupt()
        for fut in pending:
            fut.cancel()
        console.print(
            "[yellow]interrupted: finished results are saved; rerun the same "
            "command to grade the rest[/]"
        )
        raise
    finally:
        if bar is not None:
            bar.close()
    if machine_down is not None:
        left = [i for i in summary.results if summary.results[i] is None]
        left += [i.id for i in queue]
        why = f"not graded: {machine_down}"
        summary.failed.extend((i, why) for i in left if i not in dict(summary.failed))
        console.print(f"[red]stopped: {machine_down}[/]")


def _plan(summary: BatchSummary) -> str:
    return describe_reasons(summary.reasons, summary.skipped).replace(" graded", " to grade", 1)


def _record(
    fut: Future,
    item: BatchItem,
    summary: BatchSummary,
    save: Callable[[BatchItem, dict[str, Any]], None],
) -> str | GraderError:
    """Save one finished future's result and store it in the summary; returns a short line
    for the progress."""
    from grader.platforms.exports import submission_status

    try:
        doc = fut.result()
        save(item, doc)
    except MachineError as exc:
        summary.failed.append((item.id, f"{exc}"))
        summary.results[item.id] = None
        return exc
    except (GraderError, OSError, ValueError) as exc:
        summary.failed.append((item.id, f"{exc.__class__.__name__}: {exc}"))
        summary.results[item.id] = None
        return f"{item.id}: error ({exc.__class__.__name__})"
    except Exception as exc:  # a bug must not cost the other 299 submissions
        summary.failed.append((item.id, f"unexpected {exc.__class__.__name__}: {exc}"))
        summary.results[item.id] = None
        return f"{item.id}: error ({exc.__class__.__name__})"
    summary.graded += 1
    summary.results[item.id] = doc
    status, _ = submission_status(doc)
    return f"{item.id}: {doc.get('score', 0):g} {status}"


def _points(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def format_changes(changes, names: dict[str, str] | None = None) -> list[str]:
    """One line per student: ``alice (Alice Doe): total 100 -> 85; task 1.4 45 -> 30``."""
    names = names or {}
    lines = []
    for ident, diffs in changes:
        who = f"{ident} ({names[ident]})" if names.get(ident) else ident
        what = "; ".join(f"{w} {_points(a)} -> {_points(b)}" for w, a, b in diffs)
        lines.append(f"{who}: {what}")
    return lines


def print_summary(
    summary: BatchSummary, rows, assignment: Assignment, console, *, against: str = ""
) -> None:
    """Counts per status, score statistics, what changed, and every row that needs a human."""
    from rich.markup import escape
    from rich.table import Table

    scores = [r.total for r in rows if r.total is not None]
    table = Table(title=f"{assignment.name}: {summary.total} submissions", title_justify="left")
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row("mode", summary.mode)
    table.add_row("graded now", str(summary.graded))
    for reason, count in summary.reasons.most_common():
        table.add_row(f"  {escape(reason)}", str(count))
    table.add_row("unchanged (kept)", str(summary.skipped))
    for status, count in sorted(summary.statuses.items()):
        style = "green" if status == "ok" else "red"
        table.add_row(f"status [{style}]{status}[/]", str(count))
    if scores:
        mean = sum(scores) / len(scores)
        table.add_row("mean / min / max", f"{mean:.1f} / {min(scores):g} / {max(scores):g}")
        table.add_row("full marks", f"{sum(s >= assignment.max_score for s in scores)}")
    table.add_row("wall time", f"{summary.seconds:.1f} s")
    if summary.scores_csv is not None:
        table.add_row("scores.csv", str(summary.scores_csv))
    console.print(table)
    console.print(describe_reasons(summary.reasons, summary.skipped))
    if against:
        names = {r.id: r.name for r in rows}
        if summary.changes:
            console.print(f"scores changed against {escape(against)} ({len(summary.changes)}):")
            for line in format_changes(summary.changes, names):
                console.print(f"  {escape(line)}")
        else:
            console.print(f"no score changed against {escape(against)}")
    attention = [r for r in rows if r.status != "ok"]
    for r in attention[:20]:
        console.print(f"  [red]{r.status}[/] {escape(r.id)}: {escape(r.error[:160])}")
    if len(attention) > 20:
        console.print(f"  ... and {len(attention) - 20} more (see scores.csv, column 'status')")
