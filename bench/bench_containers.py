"""Container benchmarks, side by side in one run: per-submission overhead and batch throughput.

- overhead: what a container adds to grading one submission, i.e. the wall time from
  container creation to its removal minus the grading time measured inside (results.json
  ``execution_time``). Target: at most 1.5 s.
- throughput: the same batch with -j 1 and -j 2 (on a 2-core machine). Target: -j 2 at
  least 1.7x faster than -j 1.

Submissions are the reference and the skeleton (as generated for students), alternating.
Needs a Docker engine and the base image ($GRADER_BASE_IMAGE, default the offline one).

    python bench/bench_containers.py [--assignment module1] [--submissions 6] [--overhead-runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from grader.batch import run_batch  # noqa: E402
from grader.course.assignment import load_assignment  # noqa: E402
from grader.platforms.containers import grade_in_container  # noqa: E402
from grader.platforms.images import OFFLINE_BASE_IMAGE, docker_client, ensure_image  # noqa: E402

OVERHEAD_TARGET = 1.5
SPEEDUP_TARGET = 1.7


def _submissions(assignment, dest: Path, n: int) -> list[Path]:
    from grader.course.handout import generate
    from grader.grading.submission import copy_reference_submission

    reference = copy_reference_submission(assignment, dest / "_reference")
    skeleton = generate(assignment, dest / "_skeleton")
    batch = dest / "batch"
    batch.mkdir()
    out = []
    for i in range(n):
        src = reference if i % 2 == 0 else skeleton
        target = batch / f"s{i:02d}-{'reference' if src is reference else 'skeleton'}"
        _copy(src, target)
        out.append(target)
    return out


def _copy(src: Path, dst: Path) -> None:
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".git", "__pycache__"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", default="module1")
    parser.add_argument("--submissions", type=int, default=6, help="batch size (default 6)")
    parser.add_argument("--overhead-runs", type=int, default=3)
    args = parser.parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    os.environ.setdefault("GRADER_BASE_IMAGE", OFFLINE_BASE_IMAGE)
    assignment = load_assignment(args.assignment)
    client = docker_client()
    start = time.monotonic()
    image = ensure_image(assignment, client=client)
    image_seconds = time.monotonic() - start
    console.print(f"image {image} ready in {image_seconds:.1f} s (0 s when cached)")

    with tempfile.TemporaryDirectory(prefix="bench-containers.") as tmp:
        tmp_path = Path(tmp)
        subs = _submissions(assignment, tmp_path, args.submissions)

        # 1. overhead, one container at a time
        overheads, totals, inside = [], [], []
        for i in range(args.overhead_runs):
            doc = grade_in_container(
                subs[i % len(subs)], assignment, None, image=image, client=client
            )
            c = doc["extra_data"]["container"]
            totals.append(c["total_seconds"])
            inside.append(doc["execution_time"])
            overheads.append(c["total_seconds"] - doc["execution_time"])

        # 2. throughput: -j 1 then -j 2 on the same batch
        walls = {}
        for jobs in (1, 2):
            out = tmp_path / f"out-j{jobs}"
            t0 = time.monotonic()
            summary = run_batch(
                tmp_path / "batch",
                assignment,
                out,
                jobs=jobs,
                force=True,
                image=image,
                console=Console(stderr=True, quiet=True),
                progress=False,
            )
            walls[jobs] = time.monotonic() - t0
            if summary.failed:
                console.print(f"[red]-j {jobs}: {len(summary.failed)} submissions failed[/]")

    n = args.submissions
    speedup = walls[1] / walls[2]
    mean_overhead = statistics.mean(overheads)
    table = Table(
        title=f"containers: {assignment.name}, {os.cpu_count()} cores", title_justify="left"
    )
    for col in ("measure", "value", "target", ""):
        table.add_column(col, justify="right" if col != "measure" else "left")
    ok = lambda good: "[green]ok[/]" if good else "[red]missed[/]"  # noqa: E731
    table.add_row("container wall per submission", f"{statistics.mean(totals):.2f} s", "", "")
    table.add_row("grading inside (execution_time)", f"{statistics.mean(inside):.2f} s", "", "")
    table.add_row(
        "overhead mean (max)",
        f"{mean_overhead:.2f} s ({max(overheads):.2f} s)",
        f"<= {OVERHEAD_TARGET} s",
        ok(mean_overhead <= OVERHEAD_TARGET),
    )
    table.add_row("batch -j 1", f"{walls[1]:.1f} s ({n / walls[1] * 60:.1f}/min)", "", "")
    table.add_row("batch -j 2", f"{walls[2]:.1f} s ({n / walls[2] * 60:.1f}/min)", "", "")
    table.add_row(
        "speedup -j 2 / -j 1",
        f"{speedup:.2f}x",
        f">= {SPEEDUP_TARGET}x",
        ok(speedup >= SPEEDUP_TARGET),
    )
    console.print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
