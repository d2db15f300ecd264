"""Cluster throughput, side by side in one run: the same batch on one Dask worker, then two.

A real scheduler and workers started with the ``dask`` command line on this machine
(loopback, ephemeral ports, one thread per worker), grading through
``grader batch --scheduler`` in sandbox mode at the assignment's own hypothesis budget
(``--max-examples`` to change it). Prints each run's wall time and rate, the mean time of
one grade on a worker (for sizing: about that much CPU per submission), and the ratio of
the two rates. On a 2-core machine the target is a ratio of at least 1.6; the load average
is printed too, since other work on a shared machine takes cores from the second worker.

Submissions are the reference and buggy entries of the corpus (grader/tests/corpus).

    python bench/bench_cluster.py [--assignment module1] [--submissions 8] [--max-examples N]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grader.batch import run_batch  # noqa: E402
from grader.course.assignment import load_assignment  # noqa: E402
from grader.evidence.mutations import apply_mutations, load_corpus  # noqa: E402

RATIO_TARGET = 1.6
DASK = Path(sys.executable).parent / "dask"


def _submissions(assignment, dest: Path, n: int) -> Path:
    corpus = load_corpus(Path(__file__).resolve().parent.parent / "grader/tests/corpus/buggy.toml")
    entries = [e for e in corpus if "without_visited" not in e.name][:: max(1, len(corpus) // n)]
    subs = dest / "subs"
    made = [("reference", [])] + [(e.name, e.edits) for e in entries]
    for name, edits in made[:n]:
        apply_mutations(assignment.reference_dir, edits, subs / name)
    return subs


class Dask:
    """``dask scheduler`` and ``dask worker`` processes, each in its own process group."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.procs = tmp, []
        self.file = tmp / "scheduler.json"

    def _start(self, *argv: str) -> None:
        log = open(self.tmp / f"dask-{len(self.procs)}.log", "wb")  # noqa: SIM115
        self.procs.append(
            subprocess.Popen(
                [str(DASK), *argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        )

    def scheduler(self) -> str:
        self._start("scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(self.file))  # fmt: skip
        for _ in range(600):
            try:
                return json.loads(self.file.read_text())["address"]
            except (OSError, ValueError, KeyError):
                time.sleep(0.1)
        raise SystemExit("the Dask scheduler did not start")

    def worker(self, client, count: int) -> None:
        self._start("worker", "--scheduler-file", str(self.file), "--host", "127.0.0.1",
                    "--nworkers", "1", "--nthreads", "1", "--no-dashboard")  # fmt: skip
        client.wait_for_workers(count, timeout=120)

    def close(self) -> None:
        for proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", default="module1")
    parser.add_argument("--submissions", type=int, default=8, help="batch size (default 8)")
    parser.add_argument("--max-examples", type=int, help="hypothesis budget (default: grading)")
    args = parser.parse_args(argv)

    from distributed import Client
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    assignment = load_assignment(args.assignment)
    load_before = os.getloadavg()[0]
    walls: dict[int, float] = {}
    grade_seconds: dict[int, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-cluster.") as tmp:
        tmp_path = Path(tmp)
        subs = _submissions(assignment, tmp_path, args.submissions)
        n = len(list(subs.iterdir()))
        dask = Dask(tmp_path)
        try:
            address = dask.scheduler()
            client = Client(address, timeout=30, set_as_default=False)
            for workers in (1, 2):
                dask.worker(client, workers)
                out = tmp_path / f"out-{workers}"
                t0 = time.monotonic()
                summary = run_batch(
                    subs,
                    assignment,
                    out,
                    mode="sandbox",
                    max_examples=args.max_examples,
                    scheduler=address,
                    console=Console(stderr=True, quiet=True),
                    progress=False,
                )
                walls[workers] = time.monotonic() - t0
                if summary.failed or summary.graded != n:
                    console.print(f"[red]{workers} worker(s): {summary.failed}[/]")
                grade_seconds[workers] = [
                    json.loads(p.read_text())["extra_data"]["process"]["seconds"]
                    for p in (out / "results").glob("*.json")
                ]
            client.close()
        finally:
            dask.close()

    ratio = walls[1] / walls[2]
    table = Table(
        title=f"cluster: {assignment.name}, {n} submissions, {os.cpu_count()} cores, "
        f"budget {args.max_examples or assignment.max_examples} examples",
        title_justify="left",
    )
    for col in ("measure", "1 worker", "2 workers", "target", ""):
        table.add_column(col, justify="right" if col != "measure" else "left")
    table.add_row(
        "load average (1 min) before, after",
        f"{load_before:.2f}",
        f"{os.getloadavg()[0]:.2f}",
        "",
        "",
    )
    table.add_row("batch wall", f"{walls[1]:.1f} s", f"{walls[2]:.1f} s", "", "")
    table.add_row(
        "throughput", f"{n / walls[1] * 60:.1f}/min", f"{n / walls[2] * 60:.1f}/min", "", ""
    )
    table.add_row(
        "one grade on a worker (mean)",
        f"{statistics.mean(grade_seconds[1]):.2f} s",
        f"{statistics.mean(grade_seconds[2]):.2f} s",
        "",
        "",
    )
    good = ratio >= RATIO_TARGET
    table.add_row(
        "ratio 2 / 1 workers",
        "",
        f"{ratio:.2f}x",
        f">= {RATIO_TARGET}x",
        "[green]ok[/]" if good else "[red]missed[/]",
    )
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
