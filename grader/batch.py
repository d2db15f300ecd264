"""Regrade a whole class: one container per submission, N at a time, resumable.

Input is a folder of submission folders or zips (the id is the file name), or Gradescope's
"Export Submissions" folder (``submission_metadata.yml`` plus one ``submission_<id>`` folder
each; names, SIDs and e-mails come from the yml). Every result is written atomically to
``OUT/results/<id>.json`` as soon as it exists, so a batch killed halfway (Ctrl-C, a reboot)
loses nothing: the rerun skips every submission with a valid result and grades the rest.
One submission failing never stops the batch; only an unusable Docker engine does, after
recording which submissions are left. At the end: ``OUT/scores.csv`` and a summary table.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .assignment import Assignment, load_assignment
from .errors import DockerError, GraderError, SubmissionError

__all__ = [
    "BatchItem",
    "BatchSummary",
    "discover",
    "parse_gradescope_metadata",
    "run_batch",
    "add_commands",
]

GRADESCOPE_METADATA = "submission_metadata.yml"


@dataclass(frozen=True)
class BatchItem:
    """One submission of a batch: a stable id (file-name safe), its path, who submitted it."""

    id: str
    path: Path
    meta: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- discovery


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


def parse_gradescope_metadata(text: str) -> dict[str, dict[str, str]]:
    """Submitters per submission from Gradescope's ``submission_metadata.yml``.

    Reads only the shape Gradescope writes (so no YAML dependency)::

        submission_123:
          :submitters:
          - :name: Jane Doe
            :sid: '12345'
            :email: jane@example.edu

    Returns ``{"submission_123": {"name": ..., "sid": ..., "email": ...}}``; a group's
    members are joined with "; " in each field.
    """
    out: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    in_submitters = False
    member: dict[str, str] = {}

    def flush() -> None:
        nonlocal member
        if current is not None and member:
            for key in ("name", "sid", "email"):
                current.setdefault(key, []).append(member.get(key, ""))
        member = {}

    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        line = raw.strip()
        if indent == 0 and line.endswith(":"):
            flush()
            current = out.setdefault(_unquote(line[:-1]), {})
            in_submitters = False
            continue
        if current is None:
            continue
        if line.startswith("- "):
            if in_submitters:
                flush()
            line = line[2:].strip()
            if not in_submitters:
                continue
        elif line.startswith(":") and indent <= 2:
            flush()
            in_submitters = line.startswith(":submitters:")
            continue
        if in_submitters and line.startswith(":") and ":" in line[1:]:
            key, _, value = line[1:].partition(":")
            if key in ("name", "sid", "email"):
                member[key] = _unquote(value)
    flush()
    return {sub: {k: "; ".join(v) for k, v in fields.items()} for sub, fields in out.items()}


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_id(name: str) -> str:
    return _SAFE.sub("_", name).strip("._") or "submission"


def discover(folder: Path) -> list[BatchItem]:
    """The submissions in ``folder`` (plain folder of dirs/zips, or a Gradescope export)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SubmissionError(f"{folder}: not a folder of submissions")
    meta: dict[str, dict[str, str]] = {}
    metadata = folder / GRADESCOPE_METADATA
    if metadata.is_file():
        meta = parse_gradescope_metadata(metadata.read_text(encoding="utf-8", errors="replace"))
    items: list[BatchItem] = []
    seen: set[str] = set()
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.name == GRADESCOPE_METADATA:
            continue
        if path.is_dir():
            name = path.name
        elif path.is_file() and path.suffix.lower() == ".zip":
            name = path.stem
        else:
            continue
        ident = base = _safe_id(name)
        n = 2
        while ident in seen:
            ident = f"{base}-{n}"
            n += 1
        seen.add(ident)
        items.append(BatchItem(ident, path, dict(meta.get(name, {}))))
    return items


# --------------------------------------------------------------------------- running


@dataclass
class BatchSummary:
    """What a batch run did; ``rows`` feed scores.csv."""

    total: int = 0
    skipped: int = 0
    graded: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (id, why) with no result
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    scores_csv: Path | None = None
    results: dict[str, dict[str, Any] | None] = field(default_factory=dict)


def load_valid_result(path: Path) -> dict[str, Any] | None:
    """A previously written result if it is valid JSON matching the schema, else None."""
    from .gradescope import validate_results

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        validate_results(doc)
    except (OSError, ValueError):
        return None
    return doc


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def prune_orphans(client) -> int:
    """Remove grading containers left by a batch process that no longer exists (killed)."""
    from .docker_runner import LABEL

    host = socket.gethostname()
    removed = 0
    try:
        containers = client.containers.list(all=True, filters={"label": f"{LABEL}.owner"})
    except Exception:  # an engine hiccup here must not stop a batch
        return 0
    for container in containers:
        owner = container.labels.get(f"{LABEL}.owner", "")
        owner_host, _, pid = owner.rpartition(":")
        if owner_host != host or not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # still alive: another batch's container
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        try:
            container.remove(v=True, force=True)
            removed += 1
        except Exception:
            pass
    return removed


def _kill_own_containers(client) -> None:
    """Kill the containers this process started (Ctrl-C): their runs are not results."""
    from .docker_runner import LABEL

    try:
        for container in client.containers.list(filters={"label": f"{LABEL}.owner={_owner()}"}):
            try:
                container.kill()
            except Exception:
                pass
    except Exception:
        pass


def run_batch(
    submissions: Path,
    assignment: Assignment,
    out: Path,
    *,
    jobs: int = 1,
    force: bool = False,
    image: str | None = None,
    timeout: float | None = None,
    memory_mb: int | None = None,
    console=None,
    progress: bool = True,
) -> BatchSummary:
    """Grade every submission in ``submissions`` into ``out``; see the module docstring."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from .docker_runner import docker_client, ensure_image, grade_in_container, write_json_atomic
    from .exports import row_from_results, write_scores_csv

    console = console or Console(stderr=True, highlight=False)
    out = Path(out)
    results_dir = out / "results"
    logs_dir = out / "logs"
    results_dir.mkdir(parents=True, exist_ok=True)
    items = discover(submissions)
    summary = BatchSummary(total=len(items))
    start = time.monotonic()

    todo: list[BatchItem] = []
    for item in items:
        existing = None if force else load_valid_result(results_dir / f"{item.id}.json")
        if existing is not None:
            summary.skipped += 1
            summary.results[item.id] = existing
        else:
            todo.append(item)
    if summary.skipped:
        console.print(
            f"{summary.skipped} of {len(items)} submissions already graded in {results_dir} "
            "(skipped; --force regrades them)"
        )

    if todo:
        client = docker_client()
        prune_orphans(client)
        image = image or ensure_image(assignment, client=client, log=None)
        console.print(f"grading {len(todo)} submissions with {image}, {jobs} at a time")
        local = threading.local()

        def client_for_thread():
            if not hasattr(local, "client"):
                local.client = docker_client()
            return local.client

        stop = threading.Event()

        def grade_one(item: BatchItem) -> dict[str, Any]:
            doc = grade_in_container(
                item.path,
                assignment,
                None,
                image=image,
                timeout=timeout,
                memory_mb=memory_mb,
                client=client_for_thread(),
                logs_dir=logs_dir,
                labels={"owner": _owner(), "batch": str(out.resolve())[:200]},
                log_name=item.id,
            )
            if stop.is_set():  # killed by our Ctrl-C, not by the student: no result
                raise KeyboardInterrupt
            write_json_atomic(results_dir / f"{item.id}.json", doc)
            return doc

        columns = [
            TextColumn("[bold]grading"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[last]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        ]
        engine_down: DockerError | None = None
        with Progress(*columns, console=console, disable=not progress, transient=False) as bar:
            task = bar.add_task("grading", total=len(todo), last="")
            with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
                pending: dict[Future, BatchItem] = {}
                queue = list(todo)
                try:
                    while queue or pending:
                        while queue and len(pending) < max(1, jobs) and engine_down is None:
                            item = queue.pop(0)
                            pending[pool.submit(grade_one, item)] = item
                        if not pending:
                            break
                        done, _ = wait(pending, return_when=FIRST_COMPLETED)
                        for fut in done:
                            item = pending.pop(fut)
                            last = _record(fut, item, summary)
                            if isinstance(last, DockerError):
                                engine_down = engine_down or last
                                last = f"{item.id}: engine error"
                            bar.update(task, advance=1, last=last)
                except KeyboardInterrupt:
                    stop.set()
                    for fut in pending:
                        fut.cancel()
                    _kill_own_containers(client)
                    console.print(
                        "[yellow]interrupted: finished results are saved; rerun the same "
                        "command to grade the rest[/]"
                    )
                    raise
        if engine_down is not None:
            left = [i.id for i in todo if i.id not in summary.results]
            summary.failed.extend((i, "not graded: the Docker engine failed") for i in left)
            console.print(f"[red]stopped: {engine_down}[/]")

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
    print_summary(summary, rows, assignment, console)
    return summary


def _record(fut: Future, item: BatchItem, summary: BatchSummary) -> str | DockerError:
    """Store one finished future in the summary; returns a short line for the progress bar."""
    try:
        doc = fut.result()
    except DockerError as exc:
        summary.failed.append((item.id, f"Docker: {exc}"))
        summary.results[item.id] = None
        return exc
    except (GraderError, OSError, ValueError) as exc:
        summary.failed.append((item.id, f"{exc.__class__.__name__}: {exc}"))
        summary.results[item.id] = None
        return f"{item.id}: error"
    except Exception as exc:  # a bug must not cost the other 299 submissions
        summary.failed.append((item.id, f"unexpected {exc.__class__.__name__}: {exc}"))
        summary.results[item.id] = None
        return f"{item.id}: error"
    summary.graded += 1
    summary.results[item.id] = doc
    status = doc.get("extra_data", {}).get("container", {}).get("status", "ok")
    return f"{item.id}: {doc.get('score', 0):g}" + ("" if status == "ok" else f" ({status})")


def print_summary(summary: BatchSummary, rows, assignment: Assignment, console) -> None:
    """Counts per status, score statistics, and every submission that needs a human."""
    from rich.table import Table

    scores = [r.total for r in rows if r.total is not None]
    table = Table(title=f"{assignment.name}: {summary.total} submissions", title_justify="left")
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row("graded now", str(summary.graded))
    table.add_row("already graded (skipped)", str(summary.skipped))
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
    attention = [r for r in rows if r.status not in ("ok",)]
    for r in attention[:20]:
        console.print(f"  [red]{r.status}[/] {r.id}: {r.error[:160]}")
    if len(attention) > 20:
        console.print(f"  ... and {len(attention) - 20} more (see scores.csv, column 'status')")


# --------------------------------------------------------------------------- CLI


def _cmd_batch(args) -> int:
    assignment = load_assignment(args.assignment)
    summary = run_batch(
        Path(args.submissions),
        assignment,
        Path(args.out),
        jobs=args.jobs,
        force=args.force,
        image=args.image,
        timeout=args.timeout,
        progress=not args.no_progress,
    )
    return 1 if summary.failed else 0


def add_commands(subparsers) -> None:
    """Register ``batch``."""
    p = subparsers.add_parser(
        "batch",
        help="grade a folder of submissions in containers (resumable), write scores.csv",
        description=(
            "Grade every submission in SUBMISSIONS (a folder of submission folders or zips, "
            "or Gradescope's 'Export Submissions' folder) in its own container. Results go to "
            "OUT/results/<id>.json as they finish; rerunning skips the graded ones. Exit "
            "status 1 if some submission got no result at all (see the summary)."
        ),
    )
    p.add_argument("submissions", help="folder of submissions")
    p.add_argument("--assignment", "-a", required=True, help="assignment name, e.g. module1")
    p.add_argument("--out", "-o", required=True, help="output folder (results/, scores.csv)")
    p.add_argument("-j", "--jobs", type=int, default=1, help="containers at a time (default 1)")
    p.add_argument("--force", action="store_true", help="regrade submissions already graded")
    p.add_argument("--image", help="grading image (default: build it with 'grader image')")
    p.add_argument(
        "--timeout", type=float, help="wall-clock seconds per container (default: budget + 120)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    p.set_defaults(func=_cmd_batch)
