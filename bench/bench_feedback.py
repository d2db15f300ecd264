"""Time grows with wrongness? Grade the reference and every buggy corpus entry of a module.

Each grade is a full `grader grade` process in sandbox mode at the assignment's grading
budget; CPU is user+sys of the grade and everything it waited for (the worker too). Prints
the reference, the median buggy entry and the slowest one side by side, with the ratios.

Targets (issue 14): the slowest buggy entry at most 2x the reference's CPU; the reference
at most the course's own tests on a correct submission. With ``--course-repo`` (a checkout
of the course's Module-1 or Module-2 repository, kept outside this project) those tests run
on the reference's files in the same run, alternating with grades of the reference;
without it the module-1 figure recorded below stands in. For module 2 the whole reference
package replaces the checkout's: the template's given tensor.py already imports names of
later modules (MatMul), so only the course's tests are the course's.

    python bench/bench_feedback.py [--assignment module1] [--only NAME ...] [--jobs 1]
                                   [--course-repo PATH] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_modes import measure  # noqa: E402

from grader.course.assignment import Assignment, load_assignment  # noqa: E402
from grader.evidence.mutations import apply_mutations, load_corpus  # noqa: E402
from grader.grading.runner import grade_command  # noqa: E402
from grader.grading.submission import copy_reference_submission  # noqa: E402

#: The course's own module-1 tests on a correct submission (CPU s), measured on the machine
#: of 2026-11-27 (before --course-repo existed); used when no checkout is given.
COURSE_TESTS_CPU = 4.0
#: How a student of the course runs a module's tests: every test marked for one of its tasks.
COURSE_SELECTION = {
    "module1": ["-m", "task1_1 or task1_2 or task1_3 or task1_4", "tests"],
    "module2": ["-m", "task2_1 or task2_2 or task2_3 or task2_4", "tests"],
}
MODULE_OF_TASK = {"0": "module0", "1": "module1", "2": "module2"}


def course_tests_cpu(repo: Path, assignment: Assignment, work: Path) -> tuple[float, float]:
    """Wall and CPU seconds of the course's own tests on the reference's files.

    The template asserts that forward returns a float, and a few of the course's tests pass
    ints, so some tests fail on any template-faithful solution: exit status 1 (tests failed)
    counts as a run, anything else (no tests, a collection error) stops the benchmark. Run
    once first (compiling and hypothesis' example database), then measured.
    """
    course = work / "course"
    selection = COURSE_SELECTION[assignment.name]
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *selection]
    env = {**os.environ, "PYTHONPATH": str(course)}
    if not course.exists():
        shutil.copytree(repo, course, ignore=shutil.ignore_patterns(".git", ".hypothesis"))
        files = [*assignment.editable, *assignment.fallback]
        if assignment.reference_layer:
            files += [*assignment.provided, *assignment.solved]
        for rel in files:
            shutil.copyfile(assignment.reference_file(rel), course / rel)
        measure(cmd, cwd=course, env=env, ok=(0, 1))
    return measure(cmd, cwd=course, env=env, ok=(0, 1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="module1")
    parser.add_argument("--only", nargs="*", default=None, help="corpus entries to grade")
    parser.add_argument("--jobs", type=int, default=1, help="grades at once (1: least noise)")
    parser.add_argument(
        "--course-repo", type=Path, help="a checkout of the course's repository of the module"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="reference / course-tests pairs (--course-repo)"
    )
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
            subs[e.name] = apply_mutations(
                ROOT / "reference", e.edits, Path(tmp) / e.name, assignment.reference_layer
            )

        def grade(name: str) -> tuple[str, float, float]:
            out = Path(tmp) / f"{name}.json"
            wall, cpu = measure(grade_command(subs[name], assignment.name, out))
            print(f"{name:<40} wall {wall:6.2f} s   cpu {cpu:6.2f} s", flush=True)
            return name, wall, cpu

        # The reference first and alone, so that its figure is not shared with a neighbour.
        figures = [grade("(reference)")]
        course_cpu = COURSE_TESTS_CPU
        if args.course_repo is not None and assignment.name in COURSE_SELECTION:
            # Side by side: the reference's grade and the course's tests, alternating.
            ours, theirs = [figures[0][2]], []
            for _ in range(args.rounds):
                wall, cpu = course_tests_cpu(args.course_repo, assignment, Path(tmp))
                label = "(the course's own tests)"
                print(f"{label:<40} wall {wall:6.2f} s   cpu {cpu:6.2f} s", flush=True)
                theirs.append(cpu)
                ours.append(grade("(reference)")[2])
            course_cpu = statistics.median(theirs)
            figures[0] = ("(reference)", figures[0][1], statistics.median(ours))
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
    if assignment.name == "module1" or args.course_repo is not None:
        how = "measured above, median" if args.course_repo else "recorded, no --course-repo"
        print(
            f"reference / course's own tests ({course_cpu:.2f} s cpu, {how}): "
            f"{ref_cpu / course_cpu:.2f}x (target <= 1x); slowest buggy / reference: "
            f"{slowest[2] / ref_cpu:.2f}x (target <= 2x)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
