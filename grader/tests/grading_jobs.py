"""Grade many submissions through the real CLI, two at a time (this machine has 2 cores).

Each job is a real `python -m grader grade` process: staging, the sandboxed worker,
pytest and hypothesis at the assignment's grading budget, scoring and the results.json
writer, exactly as a TA would run it.
"""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.cli import grade_command


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


def grade_all(jobs: list[Job], out: Path, workers: int = 2) -> dict[str, Graded]:
    out.mkdir(parents=True, exist_ok=True)

    def run(job: Job) -> Graded:
        target = out / f"{job.name}.json"
        cmd = grade_command(job.submission, job.assignment, target, mode=job.mode, extra=job.extra)
        start = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        wall = time.monotonic() - start
        results = json.loads(target.read_text()) if target.exists() else {}
        return Graded(job, results, proc.returncode, wall, proc.stderr)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return {g.job.name: g for g in pool.map(run, jobs)}
