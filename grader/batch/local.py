"""The local executor: a batch's grades on this machine, N at a time."""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from grader.batch.discovery import BatchItem
from grader.batch.runners import DockerRunner, SandboxRunner
from grader.course.assignment import Assignment
from grader.errors import ConfigError, DockerError

MODES = ("auto", "docker", "sandbox")


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _resolve_mode(mode: str, image: str | None, console) -> str:
    if mode not in MODES:
        raise ConfigError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode != "auto":
        return mode
    if image:
        return "docker"
    from grader.platforms.images import docker_client

    try:
        docker_client()
    except DockerError as exc:
        console.print(f"mode: sandbox (no Docker engine answered: {str(exc)[:120]})")
        return "sandbox"
    console.print("mode: docker (the engine answered; --mode sandbox grades without it)")
    return "docker"


class LocalExecutor:
    """Grades on this machine: ``runner.grade`` in ``jobs`` threads.

    One of the two executors of a batch (the other is ``grader.batch.cluster.ClusterExecutor``).
    An executor names the runner that goes into the results' key (``runner``), says where
    grading happens (``describe``), how many grades may be in flight now (``slots``), and
    turns a submission into a ``concurrent.futures.Future`` of its validated results dict
    (``submit``); ``interrupt`` stops what runs (Ctrl-C) and ``close`` waits for the rest.
    Everything else (keys, resume, writing results, progress, scores.csv, the summary) is
    ``run_batch``'s, the same for both.
    """

    def __init__(self, runner: DockerRunner | SandboxRunner, jobs: int, logs_dir: Path) -> None:
        self._runner, self.jobs, self.logs_dir = runner, max(1, jobs), logs_dir
        self.runner = runner.runner
        self.mode = runner.mode
        self._pool = ThreadPoolExecutor(max_workers=self.jobs)

    def describe(self) -> str:
        return f"{self._runner.describe()}, {self.jobs} at a time"

    def slots(self) -> int:
        return self.jobs

    def submit(self, item: BatchItem) -> Future:
        return self._pool.submit(self._runner.grade, item, self.logs_dir)

    def interrupt(self) -> None:
        self._runner.interrupt()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def local_executor(
    assignment: Assignment,
    out: Path,
    *,
    mode: str,
    jobs: int,
    image: str | None,
    timeout: float | None,
    memory_mb: int | None,
    max_examples: int | None,
    console,
) -> LocalExecutor:
    """Docker containers or sandbox processes on this machine, ``-j`` at a time."""
    asked = mode
    mode = _resolve_mode(mode, image, console)
    runner: DockerRunner | SandboxRunner | None = None
    if mode == "docker":
        try:
            runner = DockerRunner(
                assignment,
                out,
                image=image,
                timeout=timeout,
                memory_mb=memory_mb,
                max_examples=max_examples,
            )
        except DockerError as exc:
            if asked != "auto" or image:
                raise
            console.print(f"mode: sandbox after all (no grading image: {str(exc)[:160]})")
    if runner is None:
        runner = SandboxRunner(assignment, out, timeout=timeout, max_examples=max_examples)
    jobs = max(1, jobs)
    if runner.mode == "sandbox" and jobs > cpu_cores():
        console.print(f"-j {jobs} capped at {cpu_cores()}: one sandbox per CPU core")
        jobs = cpu_cores()
    return LocalExecutor(runner, jobs, out / "logs")
