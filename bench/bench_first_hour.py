"""A student's first hour: `make test` in a fresh module-1 hand-out, untouched and nearly done.

One run generates the hand-out into a temporary folder and times the hand-out's own test
command (the Makefile's `test` target: `python -m pytest --grading-profile=student
--max-examples=<local budget>`) with this project's Python, nothing installed, on fresh
copies (no `.hypothesis` folder yet, as on a fresh checkout):

- untouched: the hand-out as generated, every student function a stub;
- one bug: the reference's files filled in, with one backward mistake (a corpus entry);
- reference: the reference's files filled in, all correct (what passing costs).

Wall and CPU seconds (user+sys, children included, as bench_feedback.py measures), the
lines of output, the failures, and the blocks of chained exceptions ("During handling of
the above exception" / "The above exception was the direct cause") in the output.

With ``--course-repo`` (a checkout of the course's Module-1 repository, kept outside this
project) the course's own module-1 tests run too, as bench_feedback.py runs them: on the
course's untouched template (the first run a student of the course sees, and the second,
which replays the failures hypothesis saved), and on the same untouched code as the
hand-out's (its minitorch files copied over the checkout's). The untouched hand-out gets a
second run too.
With ``--before DIR`` (a folder holding another student_plugin.py, e.g. main's
grader/course) the same cases run again with that plugin, side by side.

    python bench/bench_first_hour.py [--rounds 1] [--bug mul_backward_swapped]
                                     [--course-repo PATH] [--before DIR]
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_feedback import COURSE_SELECTION  # noqa: E402

from grader.course.assignment import Assignment, load_assignment  # noqa: E402
from grader.course.handout import generate  # noqa: E402
from grader.evidence.mutations import apply_mutations, load_corpus  # noqa: E402

COURSE_TEMPLATE = "course's tests, its untouched template"
COURSE_SAME = "course's tests, the untouched hand-out's code"
SECOND = ", second run"
CHAINED = ("During handling of the above exception", "The above exception was the direct cause")


@dataclass
class Run:
    wall: float
    cpu: float
    lines: int
    failed: int
    chained: int


def handout_command(assignment: Assignment) -> list[str]:
    """The hand-out Makefile's `make test`, with this project's Python."""
    return [
        sys.executable,
        "-m",
        "pytest",
        "--grading-profile=student",
        f"--max-examples={assignment.local_max_examples}",
    ]


def student_env() -> dict[str, str]:
    """A student's shell: no path or grader overrides from this run."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GRADER_ROOT")}


def timed(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> Run:
    """Run ``cmd`` once: wall and CPU seconds (user+sys, children included) and what its
    output shows. Exit status 0 or 1 (tests failed) counts as a run; anything else stops."""
    with open(log, "w", encoding="utf-8") as out:
        start = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    text = log.read_text(encoding="utf-8", errors="replace")
    if code not in (0, 1):
        raise SystemExit(f"exit status {code}: {' '.join(cmd)} in {cwd}\n{text[-3000:]}")
    summary = re.findall(r"(\d+) failed", text.splitlines()[-1] if text else "")
    return Run(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        lines=len(text.splitlines()),
        failed=int(summary[0]) if summary else 0,
        chained=sum(text.count(c) for c in CHAINED),
    )


def fill(handout: Path, files: Path, rels: tuple[str, ...], dest: Path) -> Path:
    """A fresh copy of ``handout`` whose ``rels`` are ``files``' (none: untouched)."""
    shutil.copytree(handout, dest, ignore=shutil.ignore_patterns(".hypothesis", "__pycache__"))
    for rel in rels:
        shutil.copyfile(files / rel, dest / rel)
    return dest


def course_copy(repo: Path, handout: Path | None, assignment: Assignment, dest: Path) -> Path:
    """The course's checkout, as it is or with the untouched hand-out's minitorch files
    (the editable and fallback ones) over its own."""
    shutil.copytree(repo, dest, ignore=shutil.ignore_patterns(".git", ".hypothesis"))
    for rel in [*assignment.editable, *assignment.fallback] if handout is not None else []:
        shutil.copyfile(handout / rel, dest / rel)
    return dest


def median(runs: list[Run]) -> Run:
    return Run(
        wall=statistics.median(r.wall for r in runs),
        cpu=statistics.median(r.cpu for r in runs),
        lines=int(statistics.median(r.lines for r in runs)),
        failed=int(statistics.median(r.failed for r in runs)),
        chained=int(statistics.median(r.chained for r in runs)),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="module1")
    parser.add_argument("--rounds", type=int, default=1, help="runs per case (median)")
    parser.add_argument("--bug", default="mul_backward_swapped", help="corpus entry")
    parser.add_argument("--course-repo", type=Path, help="a checkout of the course's Module-1")
    parser.add_argument(
        "--before", type=Path, help="a folder holding another student_plugin.py to compare"
    )
    parser.add_argument("--keep", type=Path, help="copy each case's output here")
    args = parser.parse_args()
    assignment = load_assignment(args.assignment)
    corpus = {e.name: e for e in load_corpus(ROOT / "grader" / "tests" / "corpus" / "buggy.toml")}
    if args.bug not in corpus:
        raise SystemExit(f"no corpus entry {args.bug!r}")
    env = student_env()
    cmd = handout_command(assignment)
    with tempfile.TemporaryDirectory(prefix="bench-first-hour-") as name:
        tmp = Path(name)
        bug = apply_mutations(assignment.reference_dir, corpus[args.bug].edits, tmp / "bug")
        plugins = {"": None}
        if args.before is not None:
            plugins = {"before: ": args.before.resolve(), "": None}
        handouts = {
            label: generate(assignment, tmp / f"handout{k}", grader_dir=where)
            for k, (label, where) in enumerate(plugins.items())
        }
        runs = tmp / "runs"
        # case -> (command, environment, a function making its fresh folder)
        cases: dict[str, tuple[list[str], dict[str, str], Callable[[], Path]]] = {}
        for label, handout in handouts.items():
            for case, files, rels in (
                ("untouched", handout, ()),
                (f"one bug ({args.bug})", bug, assignment.editable),
                ("reference", assignment.reference_dir, assignment.editable),
            ):
                cases[label + case] = (
                    cmd,
                    env,
                    functools.partial(fill, handout, files, rels, runs / "handout"),
                )
        if args.course_repo is not None:
            course_cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
            for case, code in ((COURSE_TEMPLATE, None), (COURSE_SAME, handouts[""])):
                cases[case] = (
                    [*course_cmd, *COURSE_SELECTION],
                    {**env, "PYTHONPATH": str(runs / "course")},
                    functools.partial(
                        course_copy, args.course_repo, code, assignment, runs / "course"
                    ),
                )
        figures: dict[str, list[Run]] = {}
        for r in range(args.rounds):
            for key, (command, case_env, make) in cases.items():
                shutil.rmtree(runs, ignore_errors=True)
                runs.mkdir()
                folder = make()
                # A second run in the same folder replays the failures hypothesis saved in
                # .hypothesis: what a student sees from the second `make test` on.
                again = [key + SECOND] if key.endswith(("untouched", COURSE_TEMPLATE)) else []
                for name in [key, *again]:
                    log = tmp / "out.txt"
                    run = timed(command, folder, case_env, log)
                    if args.keep is not None:
                        args.keep.mkdir(parents=True, exist_ok=True)
                        safe = re.sub(r"[^A-Za-z0-9.-]+", "_", name)
                        shutil.copyfile(log, args.keep / f"{safe}.txt")
                    figures.setdefault(name, []).append(run)
                    print(
                        f"round {r + 1} {name:<50} wall {run.wall:7.2f} s  cpu {run.cpu:7.2f} s  "
                        f"{run.lines:5d} lines  {run.failed:3d} failed  {run.chained:3d} chained",
                        flush=True,
                    )
        results = {k: median(v) for k, v in figures.items()}
    print(f"\n{assignment.name} hand-out, `make test` (median of {args.rounds} round(s))")
    head = f"{'case':<50} {'wall s':>8} {'cpu s':>8} {'lines':>6} {'failed':>6} {'chained':>7}"
    print(head)
    for key, run in results.items():
        print(
            f"{key:<50} {run.wall:8.2f} {run.cpu:8.2f} {run.lines:6d} {run.failed:6d} "
            f"{run.chained:7d}"
        )
    reference = results["reference"]
    untouched = results["untouched"]
    one_bug = results[f"one bug ({args.bug})"]
    print(
        f"untouched / reference: wall {untouched.wall / reference.wall:.2f}x, "
        f"cpu {untouched.cpu / reference.cpu:.2f}x; one bug / reference: wall "
        f"{one_bug.wall / reference.wall:.2f}x, cpu {one_bug.cpu / reference.cpu:.2f}x"
    )
    for case in (COURSE_TEMPLATE, COURSE_TEMPLATE + SECOND, COURSE_SAME):
        course = results.get(case)
        if course is not None:
            print(
                f"untouched / {case}: wall {untouched.wall / course.wall:.2f}x, cpu "
                f"{untouched.cpu / course.cpu:.2f}x (target <= about 1x)"
            )
    if args.before is not None:
        for case in ("untouched", f"one bug ({args.bug})", "reference"):
            was, now = results["before: " + case], results[case]
            print(
                f"{case}: before / now: wall {was.wall / now.wall:.2f}x, cpu "
                f"{was.cpu / now.cpu:.2f}x, lines {was.lines} -> {now.lines}, chained "
                f"{was.chained} -> {now.chained}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
