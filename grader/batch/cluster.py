"""Grade a batch on a Dask cluster: one task per submission, on whichever worker is free.

``grader batch SUBMISSIONS -a NAME --out DIR --scheduler tcp://HOST:8786`` runs the batch
exactly as on one machine (keys, resume, results written as they finish, progress,
scores.csv, the summary: ``grader.batch.run_batch``), with ``ClusterExecutor`` in place of
the local threads. A Dask worker grades its submission as the local sandbox batch does, by
running ``grader grade --mode sandbox`` in a subprocess (or in a container of the course's
image, as that machine has bubblewrap or Docker), and returns the results.json as JSON text.

What crosses the wire, and why it is safe:
- to the worker: the submission as bytes (a zip or other file as it is; a folder as a zip of
  the files ``grader.grading.submission.locate`` takes from it), never a path the worker must share;
- back: a JSON string (Dask pickles the ``str`` between the trusted client, scheduler and
  worker processes); the client parses it and validates it again with
  ``grader.grading.results.validate_results``. Student code only ever runs inside the sandbox
  child of the worker's grade, never in a process that talks to Dask.

A worker must prove, when it joins, that it grades as the client would (``GraderCheck``, a
Dask ``WorkerPlugin`` that runs on every worker, including those that join later): the same
grader version (with the hash of the grading modules), the same course files (assignment,
tests, reference) and course secret (an HMAC of a fresh nonce, so the secret itself never
travels), Docker or a sandbox whose worker sees an allowlist view of the filesystem
(bubblewrap, or the kernel's namespaces), root (student code runs as a leased worker uid,
never as the Dask worker's own user) and a free worker uid. A worker that passes gets a Dask
resource named after this batch; every grade asks for it, so a refused worker never gets
one (its log says why) and the client prints each refusal.

A lost worker costs only the grades it was running: the scheduler gives them to another
worker. A submission whose grade was lost with more workers than the scheduler's
``distributed.scheduler.allowed-failures`` (default 3) becomes a ``crashed`` result, and the
batch goes on.
"""

from __future__ import annotations

import io
import json
import platform
import socket
import tempfile
import threading
import time
import uuid
import zipfile
from concurrent.futures import CancelledError, Future
from pathlib import Path
from typing import Any

from grader.batch.admission import GraderCheck, expectation, resource_name, worker_verdict
from grader.batch.discovery import BatchItem
from grader.course.assignment import Assignment, load_assignment
from grader.errors import ClusterError, ConfigError, SubmissionError

__all__ = [
    "ClusterExecutor",
    "grade_on_worker",
    "pack_submission",
    "require_distributed",
]

INSTALL_HINT = "pip install 'minitorch-grader[cluster]'"
#: A submission file larger than this travels as a zip of the files the grader takes from it.
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
#: A worker's answer (results.json plus the log tail) larger than this is refused.
MAX_ANSWER_CHARS = 16 * 1024 * 1024
_LOG_CHARS = 64 * 1024


def require_distributed():
    """The ``distributed`` package, or a ConfigError that says how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ConfigError(
            "grader batch --scheduler needs Dask's distributed package, which is not "
            f"installed: {INSTALL_HINT}"
        ) from exc
    return distributed


# --------------------------------------------------------------------------- payload


def pack_submission(item: BatchItem, assignment: Assignment) -> tuple[str, bytes]:
    """(file name, bytes) of a submission for the worker.

    A file (a zip, or a tarball the grader will refuse with its reason) travels as it is, so
    the worker's grader reads exactly what a local grade would. A folder travels as a zip of
    the files ``locate`` takes from it, at the places it found them, so the worker locates
    the same files (nothing else of the folder is read by a grade). A file over
    ``MAX_PAYLOAD_BYTES`` travels like a folder. Raises SubmissionError when such a file
    cannot be read.
    """
    from grader.grading.submission import locate

    path = Path(item.path)
    if path.is_file() and path.stat().st_size <= MAX_PAYLOAD_BYTES:
        return path.name, path.read_bytes()
    located = locate(path, assignment)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel in sorted(located.files):
            info = zipfile.ZipInfo(located.origins.get(rel, rel), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, located.files[rel])
    return f"{item.id}.zip", buf.getvalue()


def _safe_file_name(name: str) -> str:
    base = Path(str(name).replace("\\", "/")).name
    if base in ("", ".", "..") or base.startswith("."):
        raise ClusterError(f"refusing the submission file name {name!r}")
    return base


# --------------------------------------------------------------------------- worker side

_docker_runners: dict[tuple, Any] = {}
_docker_lock = threading.Lock()


def _docker_runner(assignment: Assignment, spec: dict[str, Any]):
    """One ``DockerRunner`` per worker process and options (it builds or finds the image)."""
    from grader.batch.runners import DockerRunner

    key = (str(assignment.folder), spec["image"], spec["timeout"], spec["max_examples"])
    with _docker_lock:
        if key not in _docker_runners:
            _docker_runners[key] = DockerRunner(
                assignment,
                Path(tempfile.gettempdir()),
                image=spec["image"],
                timeout=spec["timeout"],
                memory_mb=None,
                max_examples=spec["max_examples"],
            )
        return _docker_runners[key]


def grade_on_worker(spec_json: str, file_name: str, payload: bytes) -> str:
    """The Dask task: grade one submission here; returns ``{"results", "log", "worker"}`` as
    JSON text. A student's fault is a result (timeout, crashed, ...), as in a local batch;
    only a machine fault raises (SandboxError, DockerError, ClusterError)."""
    from distributed import get_worker

    from grader.batch.runners import SandboxRunner

    spec = json.loads(spec_json)
    worker = get_worker()
    plugin = worker.plugins.get(spec["plugin"])
    verdict = getattr(plugin, "verdict", {}) or {}
    if not verdict.get("ok"):
        raise ClusterError(f"worker {worker.address} has not passed the grader's check")
    assignment = load_assignment(spec["assignment"])
    with tempfile.TemporaryDirectory(prefix="minitorch-grade-") as tmp:
        scratch = Path(tmp)
        (scratch / "submission").mkdir()
        path = scratch / "submission" / _safe_file_name(file_name)
        path.write_bytes(payload)
        item = BatchItem(spec["id"], path)
        logs = scratch / "logs"
        if verdict["mode"] == "docker":
            doc = _docker_runner(assignment, spec).grade(item, logs)
        else:
            runner = SandboxRunner(
                assignment,
                scratch,
                timeout=spec["timeout"],
                max_examples=spec["max_examples"],
                die_with_parent=True,
            )
            doc = runner.grade(item, logs)
        log_file = logs / f"{item.id}.log"
        log = log_file.read_text(encoding="utf-8", errors="replace") if log_file.is_file() else ""
    where = {"worker": worker.address, "host": socket.gethostname(), "mode": verdict["mode"]}
    return json.dumps({"results": doc, "log": log[-_LOG_CHARS:], "worker": where})


# --------------------------------------------------------------------------- client side


def _crashed(assignment: Assignment, problem: str, message: str) -> dict[str, Any]:
    from grader.grading.results import error_results

    doc = error_results(assignment, message)
    doc["extra_data"]["process"] = {"status": "crashed", "problem": problem}
    return doc


class ClusterExecutor:
    """The cluster executor of ``run_batch`` (see ``grader.batch.run.LocalExecutor``).

    Connects to the scheduler, waits for a worker, checks every worker (``GraderCheck``),
    prints the refusals, and fails when no worker may grade. ``submit`` sends one task per
    submission; ``slots`` is the number of threads of the workers that passed, so the
    batch keeps every one busy and a worker that joins later is used at once.
    """

    def __init__(
        self,
        address: str,
        assignment: Assignment,
        *,
        mode: str = "auto",
        image: str | None = None,
        timeout: float | None = None,
        max_examples: int | None = None,
        logs_dir: Path,
        console,
        retries: int = 2,
        connect_timeout: float = 30.0,
        worker_timeout: float = 120.0,
    ) -> None:
        distributed = require_distributed()
        self.assignment, self.console, self.logs_dir = assignment, console, Path(logs_dir)
        self.address, self.retries = address, retries
        self.timeout, self.max_examples, self.image = timeout, max_examples, image
        self.expect = expectation(assignment, mode=mode, image=image, max_examples=max_examples)
        self.resource = resource_name(self.expect["token"])
        self.plugin_name = f"minitorch-grader-check-{self.expect['token']}"
        self._futures: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._slots = 1
        self.KilledWorker = distributed.KilledWorker
        try:
            self.client = distributed.Client(address, timeout=connect_timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"no Dask scheduler answered at {address}: {exc}") from exc
        try:
            self._admit(worker_timeout)
        except BaseException:
            self.client.close()
            raise
        if mode == "sandbox":
            # The very key of a local sandbox batch: its workers were checked to run this
            # Python, so local and cluster results of one course stand for each other.
            self.runner = f"sandbox python {platform.python_version()}"
        elif mode == "docker":
            self.runner = f"docker on a cluster ({image or 'each worker builds the bundle image'})"
        else:
            self.runner = "sandbox or docker on a cluster"
        self.mode = f"cluster {mode}"

    def _admit(self, worker_timeout: float) -> None:
        try:
            self.client.wait_for_workers(1, timeout=worker_timeout)
        except (TimeoutError, OSError) as exc:
            raise ClusterError(
                f"no Dask worker joined {self.address} within {worker_timeout:g} s"
            ) from exc
        self.client.register_plugin(GraderCheck(self.expect), name=self.plugin_name)
        verdicts = self.client.run(worker_verdict, name=self.plugin_name)
        admitted = {w: v for w, v in verdicts.items() if v.get("ok")}
        refused = {w: v for w, v in verdicts.items() if not v.get("ok")}
        for worker, verdict in sorted(refused.items()):
            self.console.print(f"[red]refused[/] worker {worker}: {verdict.get('reason')}")
        if not admitted:
            why = "; ".join(f"{w}: {v.get('reason')}" for w, v in sorted(refused.items()))
            raise ClusterError(
                f"no worker of {self.address} may grade {self.assignment.name}: {why}"
            )
        modes = sorted({v["mode"] for v in admitted.values()})
        self.console.print(
            f"cluster {self.address}: {len(admitted)} of {len(verdicts)} workers admitted "
            f"({', '.join(modes)})"
        )
        self._slots = self._count_slots() or len(admitted)

    def _count_slots(self) -> int:
        info = self.client.scheduler_info(n_workers=-1)
        return sum(
            int(w.get("nthreads", 0))
            for w in info.get("workers", {}).values()
            if (w.get("resources") or {}).get(self.resource, 0) > 0
        )

    def describe(self) -> str:
        return f"on the Dask workers of {self.address}, one per free worker thread"

    def slots(self) -> int:
        try:
            self._slots = self._count_slots() or self._slots
        except Exception:  # the scheduler hiccuped: the futures will tell if it is gone
            pass
        return max(1, self._slots)

    def submit(self, item: BatchItem) -> Future:
        out: Future = Future()
        try:
            file_name, payload = pack_submission(item, self.assignment)
        except (SubmissionError, OSError) as exc:
            out.set_exception(SubmissionError(f"{item.path}: cannot be sent to a worker: {exc}"))
            return out
        spec = {
            "id": item.id,
            "assignment": self.assignment.name,
            "plugin": self.plugin_name,
            "timeout": self.timeout,
            "max_examples": self.max_examples,
            "image": self.image,
        }
        started = time.monotonic()
        task = self.client.submit(
            grade_on_worker,
            json.dumps(spec),
            file_name,
            payload,
            key=f"minitorch-grade-{item.id}-{uuid.uuid4().hex[:12]}",
            pure=False,
            retries=self.retries,
            resources={self.resource: 1},
        )
        with self._lock:
            self._futures[task.key] = task
        task.add_done_callback(lambda t: self._finish(t, item, out, started))
        return out

    def _finish(self, task, item: BatchItem, out: Future, started: float) -> None:
        try:
            try:
                text = task.result()
            except self.KilledWorker as exc:
                doc = _crashed(
                    self.assignment,
                    f"its grade was lost with every worker that ran it ({exc})",
                    "Grading this submission stopped the grading machines each time it was "
                    "tried, so no score could be given. This is not a judgement of your code; "
                    "please tell the course staff.",
                )
                doc["execution_time"] = round(time.monotonic() - started, 3)
            except CancelledError as exc:
                raise ClusterError(
                    f"the grade was cancelled (scheduler {self.address} lost?)"
                ) from exc
            else:
                doc = self._accept(text, item)
            if not out.done():
                out.set_result(doc)
        except BaseException as exc:
            if not out.done():
                out.set_exception(exc)
        finally:
            with self._lock:
                self._futures.pop(task.key, None)

    def _accept(self, text: Any, item: BatchItem) -> dict[str, Any]:
        """The worker's answer, parsed and validated here; a bad one is a crashed result."""
        from grader.files import write_atomic
        from grader.grading.results import validate_results

        try:
            if not isinstance(text, str) or len(text) > MAX_ANSWER_CHARS:
                raise ValueError("the answer is not JSON text of a sane size")
            answer = json.loads(text)
            if not isinstance(answer, dict):
                raise ValueError("the answer is not a JSON object")
            doc = answer.get("results")
            validate_results(doc)
        except ValueError as exc:
            return _crashed(
                self.assignment,
                f"the worker returned an invalid report ({str(exc)[:200]})",
                "The grader failed on this submission and wrote no valid report. This is not "
                "a judgement of your code; please tell the course staff.",
            )
        log = answer.get("log")
        if isinstance(log, str) and log:
            write_atomic(self.logs_dir / f"{item.id}.log", log[-_LOG_CHARS:])
        where = answer.get("worker")
        if isinstance(where, dict):
            doc["extra_data"]["cluster"] = {
                k: str(where.get(k, ""))[:200] for k in ("worker", "host", "mode")
            }
        return doc

    def interrupt(self) -> None:
        with self._lock:
            tasks = list(self._futures.values())
        try:
            self.client.cancel(tasks)
        except Exception:
            pass

    def close(self) -> None:
        try:
            self.client.unregister_worker_plugin(self.plugin_name)
        except Exception:  # a worker already gone, or the scheduler: nothing left to undo
            pass
        self.client.close()
