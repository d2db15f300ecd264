"""Time grows with wrongness? Grade the reference and every module-1 buggy corpus entry.

Each grade is a full `grader grade` process in sandbox mode at the assignment's grading
budget; CPU is user+sys of the grade and everything it waited for (the worker too). Prints
the reference, the median buggy entry and the slowest one side by side, with the ratios.

Targets (issue 14): the slowest buggy entry at most 2x the reference's CPU; the reference
at most the course's own module-1 tests on a correct submission (4.0 s of CPU, measured on
this machine with the course's pytest suite; that suite is not part of the project).

    python bench/bench_feedback.py [--assignment module1] [--only NAME ...] [--jobs 1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_modes import measure  # noqa: E402

from grader.assignment import load_assignment  # noqa: E402
from grader.cli import grade_command  # noqa: E402
from grader.mutations import apply_mutations, load_corpus  # noqa: E402
from grader.submission import copy_reference_submission  # noqa: E402

COURSE_TESTS_CPU = 4.0  # the course's own module-1 tests on a correct submission, here
MODULE_OF_TASK = {"0": "module0", "1": "module1"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="module1")
    parser.add_argument("--only", nargs="*", default=None, help="corpus entries to grade")
    parser.add_argument("--jobs", type=int, default=1, help="grades at once (1: least noise)")
    args = parser.parse_args()
    assignment = load_assignment(args.assignment)
    corpus = load_corpus(ROOT / "grader" / "tests" / "corpus" / "buggy.toml")
    entries = [
        e
        for e in corpus
        if MODULE_OF_TASK[e.task.split(".")[0]] == assignment.name
        and (args.only is None or e.name in args.only)
    ]
    with tempfile.TemporaryDirectory(prefix="bench-feedback-") as tmp:
        subs = {"(reference)": copy_reference_submission(assignment, Path(tmp) / "reference")}
        for e in entries:
            subs[e.name] = apply_mutations(ROOT / "reference", e.edits, Path(tmp) / e.name)

        def grade(name: str) -> tuple[str, float, float]:
            out = Path(tmp) / f"{name}.json"
            wall, cpu = measure(grade_command(subs[name], assignment.name, out))
            print(f"{name:<40} wall {wall:6.2f} s   cpu {cpu:6.2f} s", flush=True)
            return name, wall, cpu

        # The reference first and alone, so that its figure is not shared with a neighbour.
        figures = [grade("(reference)")]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            figures += list(pool.map(grade, [e.name for e in entries]))
    _, ref_wall, ref_cpu = figures[0]
    buggy = sorted(figures[1:], key=lambda f: f[2])
    if not buggy:
        raise SystemExit("no buggy corpus entry matched")
    slowest = buggy[-1]
    median_cpu = statistics.median(f[2] for f in buggy)
    median_wall = statistics.median(f[1] for f in buggy)
    print(f"\n{assignment.name}, sandbox mode, grading budget, {len(buggy)} buggy entries")
    print(f"{'submission':<40} {'wall s':>8} {'cpu s':>8} {'cpu / reference':>16}")
    print(f"{'reference':<40} {ref_wall:8.2f} {ref_cpu:8.2f} {1.0:15.2f}x")
    ratio = median_cpu / ref_cpu
    print(f"{'median buggy':<40} {median_wall:8.2f} {median_cpu:8.2f} {ratio:15.2f}x")
    name = f"slowest buggy ({slowest[0]})"
    print(f"{name:<40} {slowest[1]:8.2f} {slowest[2]:8.2f} {slowest[2] / ref_cpu:15.2f}x")
    if assignment.name == "module1":
        print(
            f"reference / course's own tests ({COURSE_TESTS_CPU} s cpu): "
            f"{ref_cpu / COURSE_TESTS_CPU:.2f}x (target <= 1x); slowest buggy / reference: "
            f"{slowest[2] / ref_cpu:.2f}x (target <= 2x)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
