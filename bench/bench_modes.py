"""Cost of the sandbox: grade the reference in-process and sandboxed, side by side.

Each grade is a full `grader grade` process (staging, pytest + hypothesis at the grading
budget, scoring, results.json). Rounds alternate the two modes so that machine noise hits
both alike; CPU is user+sys of the grade and everything it waited for (the worker too).

Targets (issues 3 and 4): sandbox wall time at most 1.5x in-process; a module-1 grade at
most 20 s of CPU on the 2-core reference machine.

    python bench/bench_modes.py [--rounds 3] [--assignment module1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grader.course.assignment import load_assignment  # noqa: E402
from grader.grading.runner import grade_command  # noqa: E402
from grader.grading.submission import copy_reference_submission  # noqa: E402


def measure(
    cmd: list[str],
    *,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    ok: tuple[int, ...] = (0,),
) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user+sys, descendants included) of one command; any
    exit status outside ``ok`` stops the benchmark."""
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in ok:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--assignment", default="module1")
    args = parser.parse_args()
    assignment = load_assignment(args.assignment)
    figures: dict[str, list[tuple[float, float]]] = {"inprocess": [], "sandbox": []}
    with tempfile.TemporaryDirectory(prefix="bench-modes-") as tmp:
        sub = copy_reference_submission(assignment, Path(tmp) / "reference")
        for r in range(args.rounds):
            for mode in ("inprocess", "sandbox"):
                out = Path(tmp) / f"{mode}-{r}.json"
                cmd = grade_command(sub, assignment.name, out, mode=mode)
                wall, cpu = measure(cmd)
                figures[mode].append((wall, cpu))
                print(f"round {r + 1} {mode:<9} wall {wall:6.2f} s   cpu {cpu:6.2f} s", flush=True)
    med = {
        m: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
        for m, v in figures.items()
    }
    (wi, ci), (ws, cs) = med["inprocess"], med["sandbox"]
    print(f"\n{assignment.name}, reference, grading budget, median of {args.rounds} rounds")
    print(f"{'mode':<10} {'wall s':>8} {'cpu s':>8}")
    print(f"{'inprocess':<10} {wi:8.2f} {ci:8.2f}")
    print(f"{'sandbox':<10} {ws:8.2f} {cs:8.2f}")
    print(f"sandbox / inprocess: wall {ws / wi:.2f}x (target <= 1.5x), cpu {cs / ci:.2f}x")
    print(f"CPU per {assignment.name} grade (sandbox): {cs:.1f} s (target <= 20 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
