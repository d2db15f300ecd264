"""Mechanism 3 of the fail-closed issues: replaying the examples grading draws.

Grading draws its examples deterministically. ``record_table`` plays a student who has seen
them: it grades a submission in-process against a copy of the course (with or without its
secret), logging every call, and turns the backward calls it saw (handle operations
``Fn.forward(ctx, *args)`` then ``Fn.backward(ctx, d)`` on the same ``ctx``) into
``(name, saved values, d_output) -> correct gradients``, computed by the reference. Two
attacks bake such a table into their submission: ``m3_replay_local_examples`` (a local run
of the tests without the course secret) and ``m3_replay_other_submissions`` (a classmate's
grade with the secret, collected through a leak). The seed mixes in a digest of each
submission's graded files, so neither table matches what the attack's own files draw.

    python grader/tests/attacks/replay.py COURSE_COPY SUBMISSION LOG [pytest args ...]

(run as a subprocess: it imports the reference's minitorch to compute the answers).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def course_without_secret(dest: Path) -> Path:
    """A copy of the course's files with no course secret (what a student's run amounts to)."""
    from grader.course.secret import SECRET_FILE

    for name in ("reference", "tests", "assignments"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns(SECRET_FILE))
    shutil.copyfile(ROOT / "pyproject.toml", dest / "pyproject.toml")  # the hand-out's pins
    return dest


def record_table(course: Path, submission: Path, work: Path, extra: tuple[str, ...]) -> str:
    """The table literal (a list of (key, value) pairs) for the attack's placeholder."""
    log = work / "calls.jsonl"
    proc = subprocess.run(
        [sys.executable, str(Path(__file__)), str(course), str(submission), str(log), *extra],
        capture_output=True,
        text=True,
        env={**os.environ, "GRADER_ROOT": str(course)},
        timeout=600,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"recording the local examples failed:\n{proc.stderr[-3000:]}")
    return proc.stdout.strip()


def _callee(ops: dict[int, list], ref: object) -> list[str]:
    """``["Mul", "backward"]`` for a handle to ``minitorch.Mul.backward``; [] otherwise."""
    names: list[str] = []
    while isinstance(ref, dict) and "$h" in ref and len(names) < 4:
        op = ops.get(ref["$h"])
        if op is None or op[1] not in ("getattr", "root"):
            return []
        if op[1] == "root":
            return names[::-1]
        names.append(op[3])
        ref = op[2]
    return []


def _backward_cases(log: Path) -> list[tuple[str, list[float], float]]:
    """Each ``Fn.backward(ctx, d)`` with a plain ``d`` whose ``ctx`` went through
    ``Fn.forward(ctx, *args)`` with plain args: ``(Fn, args, d)``."""
    ops: dict[int, list] = {}  # handle numbers grow over the whole session
    forwards: dict[int, tuple[str, list]] = {}  # ctx number -> (Fn, args)
    cases = []
    for line in log.read_text(encoding="utf-8").splitlines():
        call = json.loads(line)
        if call.get("op") != "run" or "value" not in call:
            continue
        for op in call["args"][0].get("ops", []):
            ops[op[0]] = op
            if op[1] != "call" or len(op) < 4 or not op[3]:
                continue
            names, (ctx, *args) = _callee(ops, op[2]), op[3]
            if len(names) != 2 or not isinstance(ctx, dict) or "$h" not in ctx:
                continue
            plain = all(type(a) in (int, float) for a in args)
            if names[1] == "forward" and plain:
                forwards[ctx["$h"]] = (names[0], args)
            elif names[1] == "backward" and plain and len(args) == 1:
                name, forward_args = forwards.get(ctx["$h"], ("", []))
                if name == names[0]:
                    cases.append((name, forward_args, args[0]))
    return cases


def main(course: Path, submission: Path, log: Path, extra: list[str]) -> None:
    from grader.course.assignment import load_assignment
    from grader.grading.runner import grade

    grade(
        submission,
        load_assignment("module1", root=course),
        mode="inprocess",
        extra_args=["--call-log", str(log), *extra],
    )
    sys.path.insert(0, str(course / "reference"))
    import minitorch

    table = {}
    for name, args, d in _backward_cases(log):
        fn = getattr(minitorch, name)
        ctx = minitorch.Context()
        fn.forward(ctx, *args)
        grads = fn.backward(ctx, d)
        table[(name, tuple(ctx.saved_values), d)] = grads
    print(repr(sorted(table.items(), key=repr)))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4:])
