"""Grade many submissions through the real CLI, two at a time (this machine has 2 cores).

Each job is a real `python -m grader grade` process: staging, the sandboxed worker,
pytest and hypothesis at the assignment's grading budget, scoring and the results.json
writer, exactly as a TA would run it.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.grading.runner import grade_command


@dataclass(frozen=True)
class Job:
    name: str
    submission: Path
    assignment: str
    mode: str = "sandbox"
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class Graded:
    job: Job
    results: dict[str, Any]
    exit_code: int
    wall: float
    stderr: str
    #: The uids of the grade's sandboxed workers, seen while it ran (``grade_all(watch=...)``).
    worker_uids: frozenset[int] = field(default_factory=frozenset)

    def task(self, task_id: str) -> dict[str, Any]:
        for t in self.results["extra_data"]["tasks"]:
            if t["id"] == task_id:
                return t
        raise KeyError(task_id)

    def full(self, task_id: str) -> bool:
        t = self.task(task_id)
        return t["score"] == t["max_score"]

    def outputs(self) -> str:
        return "\n".join(t["output"] for t in self.results["tests"]) + self.results["output"]


def _descendant_uids(root: int, uids: range) -> set[int]:
    """The uids in ``uids`` of the live processes below process ``root`` (one scan of /proc)."""
    parents: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
            parents[int(entry)] = (int(fields["PPid"]), int(fields["Uid"].split()[0]))
        except (OSError, KeyError, ValueError):
            continue
    found = set()
    for ppid, uid in parents.values():
        if uid not in uids:
            continue
        for _ in range(6):  # the worker, or bubblewrap's child of it, or a fork of either
            if ppid == root:
                found.add(uid)
                break
            ppid = parents.get(ppid, (0, 0))[0]
    return found


def grade_all(
    jobs: list[Job],
    out: Path,
    workers: int = 2,
    env: Mapping[str, str] | None = None,
    watch: range | None = None,
) -> dict[str, Graded]:
    """Grade ``jobs``, ``workers`` at a time, with ``env`` as the grading processes'
    environment (default: this one's). With ``watch`` (a range of worker uids), each
    grade's processes are looked at while it runs to record which uids its workers used."""
    out.mkdir(parents=True, exist_ok=True)

    def run(job: Job) -> Graded:
        target = out / f"{job.name}.json"
        cmd = grade_command(job.submission, job.assignment, target, mode=job.mode, extra=job.extra)
        start = time.monotonic()
        seen: set[int] = set()
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(env) if env is not None else None,
        )
        done = threading.Event()

        def look() -> None:
            while not done.wait(0.2):
                seen.update(_descendant_uids(proc.pid, watch))

        watcher = threading.Thread(target=look, daemon=True) if watch is not None else None
        if watcher is not None:
            watcher.start()
        try:
            _, stderr = proc.communicate(timeout=900)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
        finally:
            done.set()
            if watcher is not None:
                watcher.join()
        wall = time.monotonic() - start
        results = json.loads(target.read_text()) if target.exists() else {}
        return Graded(job, results, proc.returncode, wall, stderr, frozenset(seen))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return {g.job.name: g for g in pool.map(run, jobs)}
