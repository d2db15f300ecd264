"""Run the project's test files in three pytest processes at once (what `make test` does).

pytest-xdist is not a dependency; the suite's heavy fixtures already grade two submissions
at a time, but they leave the cores idle between them (collection, image builds, hung
calls waiting for their deadline, containers starting). Three processes over disjoint
files keep both cores of this machine busy.

Files that build or run containers stay in one process, so no two processes build the same
image at once; the other files go to whichever process has less work, by the CPU seconds
each file took alone on this machine (a new file counts as 10 s).

    python grader/tests/run_parallel.py [pytest options ...]

Exit status: 0 when every process passed, else the first non-zero status.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent.parent

#: CPU seconds each file took when run alone (2 cores, 2026-12-04; containers included): the
#: processes are CPU-bound, so balancing CPU balances their wall times.
SECONDS = {
    "test_corpus_inprocess.py": 660,
    "test_attacks.py": 375,
    "test_batch_sandbox.py": 210,
    "test_cluster.py": 117,
    "test_audit.py": 115,
    "test_grading.py": 110,
    "test_malformed.py": 88,
    "test_docker.py": 71,
    "test_handout.py": 70,
    "test_styles.py": 68,
    "test_sandbox.py": 25,
    "test_batch.py": 22,
    "test_secret.py": 22,
    "test_bundle.py": 14,
    "test_cli.py": 12,
}
#: pytest processes at once. Three on two cores: the grades these tests run wait a good part
#: of the time (hung calls, containers starting, workers restarting), and a third process
#: fills those waits (measured: see the README).
PROCESSES = 3
#: Files that use the Docker engine: all in the first process.
DOCKER = {
    "test_attacks.py",
    "test_batch_sandbox.py",
    "test_docker.py",
    "test_styles.py",
    "test_batch.py",
}


def groups(n: int = PROCESSES) -> list[list[str]]:
    files = sorted(p.name for p in TESTS.glob("test_*.py"))
    out: list[list[str]] = [[] for _ in range(n)]
    load = [0] * n
    for name in sorted(files, key=lambda f: -SECONDS.get(f, 10)):
        k = 0 if name in DOCKER else min(range(n - 1, -1, -1), key=lambda i: load[i])
        out[k].append(name)
        load[k] += SECONDS.get(name, 10)
    return out


def main(argv: list[str]) -> int:
    start = time.monotonic()
    procs = []
    logs = []
    for files in groups():
        log = tempfile.TemporaryFile(mode="w+")
        cmd = [sys.executable, "-m", "pytest", *argv, *(str(TESTS / f) for f in files)]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
        logs.append((files, log))
    codes = [p.wait() for p in procs]
    for (files, log), code in zip(logs, codes, strict=True):
        log.seek(0)
        print(f"==== pytest over {len(files)} files: {' '.join(files)}")
        print(log.read(), end="")
        print(f"==== exit status {code}\n")
    took = time.monotonic() - start
    print(f"{len(procs)} pytest processes, exit statuses {codes}, {took:.0f} s in all")
    return next((c for c in codes if c != 0), 0)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
