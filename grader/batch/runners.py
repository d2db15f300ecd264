"""The two ways one submission of a batch is graded: a container, or a sandbox process.

Both take a ``BatchItem`` and give a schema-valid results dict, never raising for a
student's fault; only a machine fault (the engine down, a sandbox that cannot start)
raises. The local executor and the Dask cluster's workers use the same runners.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grader.batch.discovery import BatchItem
from grader.course.assignment import Assignment
from grader.errors import DockerError, SandboxError


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def prune_orphans(client) -> int:
    """Remove grading containers left by a batch process that no longer exists (killed)."""
    from grader.platforms.images import LABEL

    host = socket.gethostname()
    removed = 0
    try:
        containers = client.containers.list(all=True, filters={"label": f"{LABEL}.owner"})
    except Exception:  # an engine hiccup here must not stop a batch
        return 0
    for container in containers:
        owner = container.labels.get(f"{LABEL}.owner", "")
        owner_host, _, pid = owner.rpartition(":")
        if owner_host != host or not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue  # still alive: another batch's container
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        try:
            container.remove(v=True, force=True)
            removed += 1
        except Exception:
            pass
    return removed


def _kill_own_containers(client) -> None:
    """Kill the containers this process started (Ctrl-C): their runs are not results."""
    from grader.platforms.images import LABEL

    try:
        for container in client.containers.list(filters={"label": f"{LABEL}.owner={_owner()}"}):
            try:
                container.kill()
            except Exception:
                pass
    except Exception:
        pass


class DockerRunner:
    """One container per submission (``grader.platforms.containers.grade_in_container``)."""

    mode = "docker"

    def __init__(
        self,
        assignment: Assignment,
        out: Path,
        *,
        image: str | None,
        timeout: float | None,
        memory_mb: int | None,
        max_examples: int | None,
        client=None,
    ) -> None:
        from grader.platforms.images import docker_client, ensure_image

        self.assignment, self.out = assignment, out
        self.timeout, self.memory_mb = timeout, memory_mb
        self.client = client or docker_client()
        prune_orphans(self.client)
        self.image = image or ensure_image(assignment, client=self.client, log=None)
        try:
            image_id = self.client.images.get(self.image).id
        except Exception as exc:
            raise DockerError(f"image {self.image} not found: {exc}") from exc
        self.runner = f"docker {image_id}"
        # The in-container grader is the bundle's run_autograder, which takes no options:
        # a reduced budget reaches its pytest run through PYTEST_ADDOPTS.
        self.environment = (
            {"PYTEST_ADDOPTS": f"--max-examples={max_examples}"} if max_examples else {}
        )
        self.stop = threading.Event()
        self._local = threading.local()

    def describe(self) -> str:
        return f"in containers of {self.image}"

    def _client(self):
        from grader.platforms.images import docker_client

        if not hasattr(self._local, "client"):
            self._local.client = docker_client()
        return self._local.client

    def grade(self, item: BatchItem, logs_dir: Path) -> dict[str, Any]:
        from grader.platforms.containers import grade_in_container

        doc = grade_in_container(
            item.path,
            self.assignment,
            None,
            image=self.image,
            timeout=self.timeout,
            memory_mb=self.memory_mb,
            client=self._client(),
            logs_dir=logs_dir,
            labels={"owner": _owner(), "batch": str(self.out.resolve())[:200]},
            log_name=item.id,
            environment=self.environment,
        )
        if self.stop.is_set():  # killed by our Ctrl-C, not by the student: no result
            raise KeyboardInterrupt
        return doc

    def interrupt(self) -> None:
        self.stop.set()
        _kill_own_containers(self.client)


_LOG_TAIL = 8000


class SandboxRunner:
    """One ``grader grade --mode sandbox`` process per submission, in its own session.

    The very command a TA would type (``grader.grading.runner.grade_command``), so a batch
    grades as a single grade does: staging, the sandboxed worker under a leased uid,
    bubblewrap where it runs. A process that outlives the wall-clock limit is interrupted
    (its sandbox cleans up), then killed; one that dies leaves a zero report that says so
    (status crashed).
    Exit status 2 is a fault of the machine or the command (every grade would fail alike),
    so it stops the batch like a dead Docker engine.
    """

    mode = "sandbox"

    def __init__(
        self,
        assignment: Assignment,
        out: Path,
        *,
        timeout: float | None,
        max_examples: int | None,
        die_with_parent: bool = False,
    ) -> None:
        self.assignment, self.out = assignment, out
        # On a Dask worker: a grade must not outlive the worker that runs it (SIGKILLed, its
        # task rescheduled elsewhere), or an orphan would grade on for nobody.
        self.die_with_parent = die_with_parent
        self.timeout = timeout if timeout is not None else assignment.limits.budget + 120.0
        self.extra = ["--max-examples", str(max_examples)] if max_examples else []
        self.runner = f"sandbox python {platform.python_version()}"
        self.scratch = out / ".incoming"
        self.stop = threading.Event()
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.Lock()

    def describe(self) -> str:
        return "in sandboxes (grader grade --mode sandbox)"

    def grade(self, item: BatchItem, logs_dir: Path) -> dict[str, Any]:
        from grader.files import write_atomic
        from grader.grading.results import error_results, validate_results
        from grader.grading.runner import grade_command

        self.scratch.mkdir(parents=True, exist_ok=True)
        target = self.scratch / f"{item.id}.json"
        target.unlink(missing_ok=True)
        cmd = grade_command(
            item.path, str(self.assignment.folder), target, mode="sandbox", extra=self.extra
        )
        env = {**os.environ, "GRADER_ROOT": str(self.assignment.root)}
        env.pop("PYTEST_ADDOPTS", None)  # the options are in the key; nothing else may steer
        start = time.monotonic()
        timed_out = False
        with tempfile.TemporaryFile() as output:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # a terminal's Ctrl-C reaches the batch, not the grade
                preexec_fn=_die_with_parent() if self.die_with_parent else None,
            )
            with self._lock:
                self._procs[item.id] = proc
            try:
                code = proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                _stop_process(proc)
                code = proc.returncode
            finally:
                with self._lock:
                    self._procs.pop(item.id, None)
            output.seek(0, os.SEEK_END)
            output.seek(max(0, output.tell() - _LOG_TAIL))
            log = output.read().decode("utf-8", "replace")
        seconds = time.monotonic() - start
        if self.stop.is_set():
            raise KeyboardInterrupt
        if log:
            write_atomic(logs_dir / f"{item.id}.log", log)
        last = (log.strip().splitlines() or [""])[-1][:300]
        process = {"status": "ok", "seconds": round(seconds, 3), "exit_code": code}
        doc: dict[str, Any] | None = None
        if timed_out:
            process["status"] = "timeout"
            message = (
                f"Grading timed out after {self.timeout:g} s and was stopped, so no score could "
                "be given. Check for code that never finishes (an endless loop or recursion)."
            )
        elif code == 2:
            raise SandboxError(f"grader grade --mode sandbox cannot run here: {last}")
        else:
            message = ""
            try:
                doc = json.loads(target.read_text(encoding="utf-8"))
                validate_results(doc)
            except (OSError, ValueError) as exc:
                doc = None
                problem = "wrote no report" if isinstance(exc, OSError) else f"({exc})"
                process.update(status="crashed", problem=f"exit code {code}, {problem}: {last}")
                message = (
                    f"The grader failed on this submission (exit code {code}) and {problem}. "
                    "This is not a judgement of your code; please tell the course staff."
                )
            target.unlink(missing_ok=True)
        if doc is None:
            doc = error_results(self.assignment, message, execution_time=seconds)
        extra = doc["extra_data"] if isinstance(doc.get("extra_data"), dict) else {}
        extra["process"] = process
        doc["extra_data"] = extra
        return doc

    def interrupt(self) -> None:
        self.stop.set()
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            _stop_process(proc, grace=5.0)


def _die_with_parent() -> Callable[[], None]:
    """A ``preexec_fn`` that has the kernel SIGKILL the child when the thread that started
    it dies (the thread waits for the child, so only the death of its process ends it)."""
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(1)

    return preexec


def _stop_process(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGINT to the grade's process group (its sandbox cleans up), then SIGKILL."""
    for sig, wait_for in ((signal.SIGINT, grace), (signal.SIGKILL, 30.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=wait_for)
            return
        except subprocess.TimeoutExpired:
            continue
