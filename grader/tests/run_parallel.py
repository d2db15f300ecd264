"""Run the project's test files in three pytest processes at once (`make test`, `make test-all`).

Two tiers, chosen with ``--tier``: ``fast`` (`make test`: everything not marked
``evidence``: unit tests and one real grade of each kind) and ``evidence`` (`make test-all`:
the tests marked ``evidence``: the bug corpus, attacks, malformed inputs, audits, containers
side by side, the cluster with a killed worker). A file whose ``pytestmark`` holds
``evidence`` takes no part in the fast tier at all (not even its collection), and a file
that marks nothing ``evidence`` none in the evidence tier.

pytest-xdist is not a dependency; the suite's heavy fixtures already grade two submissions
at a time, but they leave the cores idle between them (collection, image builds, hung
calls waiting for their deadline, containers starting). Three processes over disjoint
files keep both cores of this machine busy.

Files that build or run containers stay in one process, so no two processes build the same
image at once; the other files go to whichever process has less work, by the seconds each
file's tests of that tier took on this machine (a new file counts as 10 s).

    python grader/tests/run_parallel.py [--tier fast|evidence] [pytest options ...]

Exit status: 0 when every process passed (a process whose files hold no test of the tier
counts as passed), else the first non-zero status.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent.parent

#: Seconds each file's tests of a tier took (2 cores, 2026-12-06, three processes at once:
#: the figures include waiting for a loaded machine, alike for every file).
SECONDS = {
    "fast": {
        "test_sandbox.py": 60,
        "test_handout.py": 45,
        "test_batch.py": 25,
        "test_batch_sandbox.py": 25,
        "test_cli.py": 18,
        "test_docker.py": 15,
        "test_bundle.py": 12,
        "test_authoring.py": 20,
        "test_handles.py": 12,
        "test_cluster.py": 10,
        "test_grading.py": 6,
        "test_secret.py": 4,
    },
    "evidence": {
        "test_corpus_inprocess.py": 1300,
        "test_attacks.py": 760,
        "test_handout.py": 240,
        "test_audit.py": 230,
        "test_grading.py": 150,
        "test_malformed.py": 135,
        "test_batch_sandbox.py": 110,
        "test_docker.py": 92,
        "test_cluster.py": 88,
        "test_authoring.py": 80,
        "test_secret.py": 85,
        "test_styles.py": 110,
        "test_bundle.py": 21,
    },
}
TIERS = {"fast": "not evidence", "evidence": "evidence"}
#: pytest processes at once. Three on two cores: the grades these tests run wait a good part
#: of the time (hung calls, containers starting, workers restarting), and a third process
#: fills those waits (measured: see the README).
PROCESSES = 3
#: Files that use the Docker engine: all in the first process.
DOCKER = {
    "test_attacks.py",
    "test_authoring.py",
    "test_batch_sandbox.py",
    "test_docker.py",
    "test_styles.py",
    "test_batch.py",
}
#: A file marked ``evidence`` as a whole (``pytestmark = ... evidence ...``).
_ALL_EVIDENCE = re.compile(r"^pytestmark = .*\bevidence\b", re.M)
#: pytest's exit status when the selection left no test to run.
NO_TESTS = 5


def files_of(tier: str) -> list[str]:
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(TESTS.glob("test_*.py"))}
    if tier == "fast":
        return [name for name, text in files.items() if not _ALL_EVIDENCE.search(text)]
    return [name for name, text in files.items() if "mark.evidence" in text]


def groups(tier: str, n: int = PROCESSES) -> list[list[str]]:
    seconds = SECONDS[tier]
    out: list[list[str]] = [[] for _ in range(n)]
    load = [0] * n
    for name in sorted(files_of(tier), key=lambda f: -seconds.get(f, 10)):
        k = 0 if name in DOCKER else min(range(n - 1, -1, -1), key=lambda i: load[i])
        out[k].append(name)
        load[k] += seconds.get(name, 10)
    return [files for files in out if files]


def main(argv: list[str]) -> int:
    tier = "fast"
    if argv[:1] == ["--tier"] and len(argv) > 1:
        tier, argv = argv[1], argv[2:]
    if tier not in TIERS:
        print(f"--tier must be one of {', '.join(TIERS)}, not {tier!r}", file=sys.stderr)
        return 2
    start = time.monotonic()
    procs = []
    logs = []
    for files in groups(tier):
        log = tempfile.TemporaryFile(mode="w+")
        cmd = [sys.executable, "-m", "pytest", "-m", TIERS[tier], *argv]
        cmd += [str(TESTS / f) for f in files]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
        logs.append((files, log))
    codes = [p.wait() for p in procs]
    for (files, log), code in zip(logs, codes, strict=True):
        log.seek(0)
        print(f"==== pytest over {len(files)} files: {' '.join(files)}")
        print(log.read(), end="")
        print(f"==== exit status {code}\n")
    took = time.monotonic() - start
    print(f"{tier} tier: {len(procs)} pytest processes, exit statuses {codes}, {took:.0f} s in all")
    return next((c for c in codes if c not in (0, NO_TESTS)), 0)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
