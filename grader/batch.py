"""Regrade a whole class, N submissions at a time, resumable, keyed on what made each result.

Input is a folder of submission folders or zips (the id is the file name), or Gradescope's
"Export Submissions" folder (``submission_metadata.yml`` plus one ``submission_<id>`` folder
each; names, SIDs and e-mails come from the yml). Each submission is graded in its own
container (``--mode docker``) or by its own ``grader grade --mode sandbox`` process
(``--mode sandbox``, at most one per CPU core); ``auto`` takes docker when an engine answers.

Every result is written atomically to ``OUT/results/<id>.json`` as soon as it exists, with
the key of what made it (``extra_data.batch``): the content of the files the grader takes
from the submission, the assignment, tests and reference, the grader's version and the
runner (image id, or sandbox and the Python version), and the grading options. A rerun
(a batch killed halfway, a test fixed, a student's new zip) regrades exactly the submissions
whose key changed and says why; ``--force`` regrades all. One submission failing never stops
the batch; only a machine fault does (the engine down, a sandbox that cannot start), after
recording which submissions are left. At the end: ``OUT/scores.csv``, a summary table, and
every student whose score changed since the results OUT held before (or ``--diff OLD_OUT``).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .assignment import Assignment, load_assignment
from .errors import ConfigError, DockerError, GraderError, SubmissionError

__all__ = [
    "BatchItem",
    "BatchSummary",
    "ProgressLine",
    "discover",
    "key_parts",
    "parse_gradescope_metadata",
    "run_batch",
    "add_commands",
]

MODES = ("auto", "docker", "sandbox")

GRADESCOPE_METADATA = "submission_metadata.yml"


@dataclass(frozen=True)
class BatchItem:
    """One submission of a batch: a stable id (file-name safe), its path, who submitted it."""

    id: str
    path: Path
    meta: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- discovery


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


def parse_gradescope_metadata(text: str) -> dict[str, dict[str, str]]:
    """Submitters per submission from Gradescope's ``submission_metadata.yml``.

    Reads only the shape Gradescope writes (so no YAML dependency)::

        submission_123:
          :submitters:
          - :name: Jane Doe
            :sid: '12345'
            :email: jane@example.edu

    Returns ``{"submission_123": {"name": ..., "sid": ..., "email": ...}}``; a group's
    members are joined with "; " in each field.
    """
    out: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    in_submitters = False
    member: dict[str, str] = {}

    def flush() -> None:
        nonlocal member
        if current is not None and member:
            for key in ("name", "sid", "email"):
                current.setdefault(key, []).append(member.get(key, ""))
        member = {}

    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        line = raw.strip()
        if indent == 0 and line.endswith(":"):
            flush()
            current = out.setdefault(_unquote(line[:-1]), {})
            in_submitters = False
            continue
        if current is None:
            continue
        if line.startswith("- "):
            if in_submitters:
                flush()
            line = line[2:].strip()
            if not in_submitters:
                continue
        elif line.startswith(":") and indent <= 2:
            flush()
            in_submitters = line.startswith(":submitters:")
            continue
        if in_submitters and line.startswith(":") and ":" in line[1:]:
            key, _, value = line[1:].partition(":")
            if key in ("name", "sid", "email"):
                member[key] = _unquote(value)
    flush()
    return {sub: {k: "; ".join(v) for k, v in fields.items()} for sub, fields in out.items()}


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: Files of a submissions folder taken as submissions (anything else: notes, a CSV, ...).
_SUBMISSION_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar")


def _safe_id(name: str) -> str:
    return _SAFE.sub("_", name).strip("._") or "submission"


def discover(folder: Path) -> list[BatchItem]:
    """The submissions in ``folder`` (plain folder of dirs/zips, or a Gradescope export)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SubmissionError(f"{folder}: not a folder of submissions")
    meta: dict[str, dict[str, str]] = {}
    metadata = folder / GRADESCOPE_METADATA
    if metadata.is_file():
        meta = parse_gradescope_metadata(metadata.read_text(encoding="utf-8", errors="replace"))
    items: list[BatchItem] = []
    seen: set[str] = set()
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.name == GRADESCOPE_METADATA:
            continue
        if path.is_dir():
            name = path.name
        elif path.is_file() and path.suffix.lower() in _SUBMISSION_SUFFIXES:
            # Not only zips: a tarball or a lone .py is a submission the grader refuses with
            # a reason (status bad-submission), never one the batch silently leaves out.
            name = path.name
            while Path(name).suffix.lower() in _SUBMISSION_SUFFIXES and Path(name).stem:
                name = Path(name).stem
        else:
            continue
        ident = base = _safe_id(name)
        n = 2
        while ident in seen:
            ident = f"{base}-{n}"
            n += 1
        seen.add(ident)
        items.append(BatchItem(ident, path, dict(meta.get(name, {}))))
    return items


# --------------------------------------------------------------------------- keys

#: Folders never part of a content hash (caches that tools write beside the sources).
_CACHE_DIRS = frozenset({"__pycache__", ".hypothesis", ".pytest_cache", ".git", ".ruff_cache"})
#: Why a submission is regraded, by the first part of its key that changed (in this order).
PART_REASONS = {
    "submission": "new submission content",
    "tests": "tests changed",
    "reference": "reference changed",
    "assignment": "assignment changed",
    "grader": "grader changed",
    "runner": "runner changed",
    "options": "grading options changed",
}
NEW = "not graded before"
FORCED = "--force"
NO_KEY = "no key (graded by an older grader)"


def _file_digest(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.digest()


def tree_digest(folder: Path, *, skip_dirs: frozenset[str] = frozenset(), docs: bool = True) -> str:
    """sha256 of every regular file under ``folder`` (relative path and content), in order.

    Caches (``__pycache__``, ``.hypothesis``, ...) and ``*.pyc`` are left out; so are
    ``*.md`` files when ``docs`` is false (an assignment's README does not grade).
    """
    h = hashlib.sha256()
    if not folder.is_dir():
        return hashlib.sha256(b"missing").hexdigest()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in _CACHE_DIRS | skip_dirs)
        for name in sorted(filenames):
            if name.endswith(".pyc") or (not docs and name.endswith(".md")):
                continue
            path = Path(dirpath, name)
            h.update(path.relative_to(folder).as_posix().encode("utf-8", "surrogateescape"))
            h.update(b"\0")
            try:
                h.update(_file_digest(path))
            except OSError as exc:
                h.update(f"unreadable {exc.errno}".encode())
    return h.hexdigest()


#: Modules of the package that take no part in grading one submission (batch plumbing,
#: exports, hand-outs, audits): editing them does not make a result stale. A new module
#: counts until it is listed here.
_NOT_GRADING = frozenset(
    {
        "batch.py",
        "canvas.py",
        "exports.py",
        "audit.py",
        "mutations.py",
        "handout.py",
        "student_plugin.py",
        "bundle.py",
        "demo.py",
        "cluster.py",
    }
)


def grader_version() -> str:
    """The package version plus a hash of the sources that grade (a fix without a bump counts)."""
    from . import __version__

    package = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package)
        if rel.parts[0] in ("tests", "__pycache__") or rel.name in _NOT_GRADING:
            continue
        if path.is_file() and path.suffix in (".py", ".json"):
            h.update(rel.as_posix().encode() + b"\0" + _file_digest(path))
    return f"{__version__}+{h.hexdigest()[:16]}"


def course_parts(assignment: Assignment) -> dict[str, str]:
    """Hashes of what the course contributes to a grade: assignment, tests, reference."""
    return {
        "assignment": tree_digest(assignment.folder, docs=False),
        "tests": tree_digest(assignment.tests_dir),
        "reference": tree_digest(assignment.reference_dir),
    }


def submission_digest(path: Path, assignment: Assignment) -> str:
    """sha256 of what the grader takes from a submission: its located files and notes.

    Only the editable (and fallback) files ``grader.submission.locate`` picks count, with
    where they were found and the notes about them (a file ignored as too large, a symlink),
    so a re-zipped copy of the same files keeps its result and a changed file does not. An
    unreadable submission is keyed on its bytes and the reason it cannot be read.
    """
    from .submission import locate

    h = hashlib.sha256()
    try:
        located = locate(Path(path), assignment)
    except (SubmissionError, OSError) as exc:
        h.update(f"unreadable\0{exc}\0".encode("utf-8", "surrogateescape"))
        try:
            if Path(path).is_file():
                h.update(_file_digest(Path(path)))
        except OSError:
            pass
        return h.hexdigest()
    for rel in sorted(located.files):
        h.update(f"{rel}\0{located.origins.get(rel, '')}\0".encode("utf-8", "surrogateescape"))
        h.update(hashlib.sha256(located.files[rel]).digest())
    for note in located.notes:
        h.update(f"note\0{note}\0".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def key_parts(
    submission: Path,
    assignment: Assignment,
    runner: str,
    options: dict[str, Any] | None = None,
    *,
    course: dict[str, str] | None = None,
    grader: str | None = None,
) -> dict[str, str]:
    """Everything a result depends on, each part hashed or named (see ``PART_REASONS``)."""
    return {
        "submission": submission_digest(submission, assignment),
        **(course if course is not None else course_parts(assignment)),
        "grader": grader if grader is not None else grader_version(),
        "runner": runner,
        "options": json.dumps(options or {}, sort_keys=True),
    }


def result_key(parts: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def regrade_reason(stored: dict[str, Any] | None, parts: dict[str, str], force: bool) -> str | None:
    """Why a submission must be graded again, or None when its stored result still holds."""
    if stored is None:
        return NEW
    if force:
        return FORCED
    extra = stored.get("extra_data") if isinstance(stored.get("extra_data"), dict) else {}
    batch = extra.get("batch") if isinstance(extra.get("batch"), dict) else {}
    old = batch.get("parts") if isinstance(batch.get("parts"), dict) else None
    if old is None or batch.get("key") != result_key(old):
        return NO_KEY
    for part, reason in PART_REASONS.items():
        if old.get(part) != parts.get(part):
            return reason
    return None


def describe_reasons(reasons: Counter, kept: int) -> str:
    """ "12 graded: 1 new submission content, 11 tests changed; 0 unchanged (kept)" """
    graded = sum(reasons.values())
    why = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
    return f"{graded} graded" + (f": {why}" if why else "") + f"; {kept} unchanged (kept)"


# --------------------------------------------------------------------------- results


@dataclass
class BatchSummary:
    """What a batch run did; ``rows`` feed scores.csv."""

    total: int = 0
    skipped: int = 0  # results kept: their key did not change
    graded: int = 0
    mode: str = ""
    reasons: Counter = field(default_factory=Counter)  # why each regraded submission was
    failed: list[tuple[str, str]] = field(default_factory=list)  # (id, why) with no result
    statuses: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    scores_csv: Path | None = None
    results: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    #: students whose score differs from the results OUT held before (see score_changes)
    changes: list[tuple[str, list[tuple[str, float | None, float | None]]]] = field(
        default_factory=list
    )


def load_valid_result(path: Path) -> dict[str, Any] | None:
    """A previously written result if it is valid JSON matching the schema, else None."""
    from .gradescope import validate_results

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        validate_results(doc)
    except (OSError, ValueError):
        return None
    return doc


# --------------------------------------------------------------------------- progress


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ProgressLine:
    """done/total, rate, ETA and the submissions in flight, for a terminal and for a log.

    Every finished submission prints one permanent line (readable in a non-TTY log). On a
    terminal a status line below it is redrawn every second with the names in flight and
    how long each has run. The ETA appears once ``eta_after`` submissions have finished and
    is an estimate from then on (mean time per submission, the work in flight, ``jobs`` at
    a time), never a placeholder.
    """

    def __init__(
        self,
        total: int,
        jobs: int,
        stream: IO[str],
        *,
        live: bool | None = None,
        eta_after: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.jobs, self.stream = total, max(1, jobs), stream
        self.live = stream.isatty() if live is None else live
        self.eta_after = max(1, min(eta_after, total))
        self.clock = clock
        self.start = clock()
        self.done = 0
        self.durations: list[float] = []
        self.in_flight: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if self.live:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left, or None before ``eta_after`` submissions have finished."""
        if self.done < self.eta_after or not self.durations:
            return None
        now = self.clock() if now is None else now
        mean = sum(self.durations) / len(self.durations)
        queued = self.total - self.done - len(self.in_flight)
        work = queued * mean + sum(max(mean - (now - t), 0.0) for t in self.in_flight.values())
        return work / min(self.jobs, max(1, queued + len(self.in_flight)))

    def status(self, now: float | None = None, *, names: bool = True) -> str:
        """``[done/total] | rate | ETA | grading <in flight>``."""
        now = self.clock() if now is None else now
        elapsed = max(now - self.start, 1e-9)
        width = len(str(self.total))
        parts = [f"[{self.done:>{width}}/{self.total}]"]
        if self.done:
            parts.append(f"{self.done / elapsed * 60:.1f}/min")
        eta = self.eta(now)
        if self.done >= self.total:
            parts.append(f"done in {_clock(elapsed)}")
        elif eta is None:
            parts.append(f"ETA after {self.eta_after} done")
        else:
            parts.append(f"ETA {_clock(eta)}")
        if self.in_flight and names:
            flying = ", ".join(f"{n} ({_clock(now - t)})" for n, t in self.in_flight.items())
            parts.append(f"grading {flying}")
        return " | ".join(parts)

    def started(self, ident: str) -> None:
        with self._lock:
            self.in_flight[ident] = self.clock()

    def finished(self, ident: str, text: str) -> None:
        with self._lock:
            now = self.clock()
            began = self.in_flight.pop(ident, now)
            self.durations.append(now - began)
            self.done += 1
            counter, _, rest = self.status(now).partition(" | ")
            line = f"{counter} {text} ({now - began:.1f} s) | {rest}"
            self._write(line, permanent=True)

    def _write(self, line: str, permanent: bool) -> None:
        if self.live:
            # The redrawn status line must fit on one line, or "\r" cannot erase it.
            width = max(20, shutil.get_terminal_size().columns - 1)
            status = self.status() if permanent else line
            self.stream.write("\r\x1b[K" + (line + "\n" if permanent else "") + status[:width])
        elif permanent:
            self.stream.write(line + "\n")
        self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                self._write(self.status(), permanent=False)

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        if self.live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


# --------------------------------------------------------------------------- runners


class SandboxError(GraderError):
    """``grader grade --mode sandbox`` cannot run here at all (the same for every submission)."""


class ClusterError(GraderError):
    """The Dask cluster cannot grade (no scheduler, no worker fit to grade, scheduler lost)."""


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def prune_orphans(client) -> int:
    """Remove grading containers left by a batch process that no longer exists (killed)."""
    from .docker_runner import LABEL

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
    from .docker_runner import LABEL

    try:
        for container in client.containers.list(filters={"label": f"{LABEL}.owner={_owner()}"}):
            try:
                container.kill()
            except Exception:
                pass
    except Exception:
        pass


class _DockerRunner:
    """One container per submission (``grader.docker_runner.grade_in_container``)."""

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
        from .docker_runner import docker_client, ensure_image

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
        from .docker_runner import docker_client

        if not hasattr(self._local, "client"):
            self._local.client = docker_client()
        return self._local.client

    def grade(self, item: BatchItem, logs_dir: Path) -> dict[str, Any]:
        from .docker_runner import grade_in_container

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


class _SandboxRunner:
    """One ``grader grade --mode sandbox`` process per submission, in its own session.

    The very command a TA would type (``grader.cli.grade_command``), so a batch grades as a
    single grade does: staging, the sandboxed worker under a leased uid, bubblewrap where it
    runs. A process that outlives the wall-clock limit is interrupted (its sandbox cleans
    up), then killed; one that dies leaves a zero report that says so (status crashed).
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
        from .cli import grade_command
        from .files import write_atomic
        from .gradescope import error_results, validate_results

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
    from .docker_runner import docker_client

    try:
        docker_client()
    except DockerError as exc:
        console.print(f"mode: sandbox (no Docker engine answered: {str(exc)[:120]})")
        return "sandbox"
    console.print("mode: docker (the engine answered; --mode sandbox grades without it)")
    return "docker"


# --------------------------------------------------------------------------- running

MachineError = (DockerError, SandboxError, ClusterError)


class LocalExecutor:
    """Grades on this machine: ``runner.grade`` in ``jobs`` threads.

    One of the two executors of a batch (the other is ``grader.cluster.ClusterExecutor``).
    An executor names the runner that goes into the results' key (``runner``), says where
    grading happens (``describe``), how many grades may be in flight now (``slots``), and
    turns a submission into a ``concurrent.futures.Future`` of its validated results dict
    (``submit``); ``interrupt`` stops what runs (Ctrl-C) and ``close`` waits for the rest.
    Everything else (keys, resume, writing results, progress, scores.csv, the summary) is
    ``run_batch``'s, the same for both.
    """

    def __init__(self, runner: _DockerRunner | _SandboxRunner, jobs: int, logs_dir: Path) -> None:
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


def _local_executor(
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
    runner: _DockerRunner | _SandboxRunner | None = None
    if mode == "docker":
        try:
            runner = _DockerRunner(
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
        runner = _SandboxRunner(assignment, out, timeout=timeout, max_examples=max_examples)
    jobs = max(1, jobs)
    if runner.mode == "sandbox" and jobs > cpu_cores():
        console.print(f"-j {jobs} capped at {cpu_cores()}: one sandbox per CPU core")
        jobs = cpu_cores()
    return LocalExecutor(runner, jobs, out / "logs")


def run_batch(
    submissions: Path,
    assignment: Assignment,
    out: Path,
    *,
    jobs: int = 1,
    force: bool = False,
    mode: str = "auto",
    image: str | None = None,
    timeout: float | None = None,
    memory_mb: int | None = None,
    max_examples: int | None = None,
    diff: Path | None = None,
    scheduler: str | None = None,
    console=None,
    progress: bool = True,
) -> BatchSummary:
    """Grade every submission in ``submissions`` into ``out``; see the module docstring.

    With ``scheduler`` (a Dask scheduler's address) the grades run on that cluster's workers
    (``grader.cluster``) instead of this machine; the rest is the same.
    """
    from rich.console import Console

    from .docker_runner import write_json_atomic
    from .exports import read_scores_csv, row_from_results, score_changes, write_scores_csv

    console = console or Console(stderr=True, highlight=False, soft_wrap=True)
    out = Path(out)
    results_dir = out / "results"
    logs_dir = out / "logs"
    results_dir.mkdir(parents=True, exist_ok=True)
    items = discover(submissions)
    start = time.monotonic()

    if mode not in MODES:
        raise ConfigError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    executor: Any
    if scheduler is not None:
        from .cluster import ClusterExecutor

        executor = ClusterExecutor(
            scheduler,
            assignment,
            mode=mode,
            image=image,
            timeout=timeout,
            max_examples=max_examples,
            logs_dir=logs_dir,
            console=console,
        )
    else:
        executor = _local_executor(
            assignment,
            out,
            mode=mode,
            jobs=jobs,
            image=image,
            timeout=timeout,
            memory_mb=memory_mb,
            max_examples=max_examples,
            console=console,
        )
    try:
        summary = BatchSummary(total=len(items), mode=executor.mode)

        course, grader = course_parts(assignment), grader_version()
        options = {"max_examples": max_examples}
        parts: dict[str, dict[str, str]] = {}
        previous: dict[str, dict[str, Any]] = {}  # what OUT held before, for the changes
        todo: list[tuple[BatchItem, str]] = []
        for item in items:
            parts[item.id] = key_parts(
                item.path, assignment, executor.runner, options, course=course, grader=grader
            )
            stored = load_valid_result(results_dir / f"{item.id}.json")
            if stored is not None:
                previous[item.id] = stored
            reason = regrade_reason(stored, parts[item.id], force)
            if reason is None:
                summary.skipped += 1
                summary.results[item.id] = stored
            else:
                summary.reasons[reason] += 1
                todo.append((item, reason))
        console.print(f"{len(items)} submissions in {submissions}: " + _plan(summary))

        def save(item: BatchItem, doc: dict[str, Any]) -> None:
            extra = doc["extra_data"]
            extra["batch"] = {"key": result_key(parts[item.id]), "parts": parts[item.id]}
            write_json_atomic(results_dir / f"{item.id}.json", doc)

        if todo:
            console.print(f"grading {len(todo)} {executor.describe()}")
            _grade_all(executor, [item for item, _ in todo], summary, save, console, progress)
    finally:
        executor.close()

    rows = []
    for item in items:
        doc = summary.results.get(item.id)
        meta = dict(item.meta)
        if doc is None:
            meta["error"] = next((why for i, why in summary.failed if i == item.id), "not graded")
        rows.append(row_from_results(item.id, doc, meta))
    summary.scores_csv = write_scores_csv(rows, assignment, out / "scores.csv")
    summary.seconds = time.monotonic() - start
    for row in rows:
        summary.statuses[row.status] += 1
    new_rows = {r.id: r for r in rows}
    if diff is not None:
        old_csv = Path(diff) / "scores.csv" if Path(diff).is_dir() else Path(diff)
        old_rows = {r.id: r for r in read_scores_csv(old_csv)}
        summary.changes = score_changes(old_rows, new_rows)
        against = str(old_csv)
    else:
        meta_of = {i.id: i.meta for i in items}
        old_rows = {
            ident: row_from_results(ident, doc, meta_of.get(ident))
            for ident, doc in previous.items()
        }
        summary.changes = score_changes(old_rows, {k: new_rows[k] for k in old_rows})
        against = "the results OUT held before" if previous else ""
    print_summary(summary, rows, assignment, console, against=against)
    return summary


def _grade_all(
    executor,
    queue: list[BatchItem],
    summary: BatchSummary,
    save: Callable[[BatchItem, dict[str, Any]], None],
    console,
    progress: bool,
) -> None:
    """Feed ``executor`` as it has room, record and save each result as it finishes."""
    bar = ProgressLine(len(queue), executor.slots(), console.file) if progress else None
    queue = list(queue)
    machine_down: GraderError | None = None
    pending: dict[Future, BatchItem] = {}
    try:
        while queue or pending:
            room = executor.slots() - len(pending)
            while queue and room > 0 and machine_down is None:
                item = queue.pop(0)
                if bar is not None:
                    bar.started(item.id)
                pending[executor.submit(item)] = item
                room -= 1
            if not pending:
                break
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                item = pending.pop(fut)
                last = _record(fut, item, summary, save)
                if isinstance(last, MachineError):
                    machine_down = machine_down or last
                    last = f"{item.id}: not graded ({last.__class__.__name__})"
                if bar is not None:
                    bar.finished(item.id, last)
    except KeyboardInterrupt:
        executor.interrupt()
        for fut in pending:
            fut.cancel()
        console.print(
            "[yellow]interrupted: finished results are saved; rerun the same "
            "command to grade the rest[/]"
        )
        raise
    finally:
        if bar is not None:
            bar.close()
    if machine_down is not None:
        left = [i for i in summary.results if summary.results[i] is None]
        left += [i.id for i in queue]
        why = f"not graded: {machine_down}"
        summary.failed.extend((i, why) for i in left if i not in dict(summary.failed))
        console.print(f"[red]stopped: {machine_down}[/]")


def _plan(summary: BatchSummary) -> str:
    return describe_reasons(summary.reasons, summary.skipped).replace(" graded", " to grade", 1)


def _record(
    fut: Future,
    item: BatchItem,
    summary: BatchSummary,
    save: Callable[[BatchItem, dict[str, Any]], None],
) -> str | GraderError:
    """Save one finished future's result and store it in the summary; returns a short line
    for the progress."""
    from .exports import submission_status

    try:
        doc = fut.result()
        save(item, doc)
    except MachineError as exc:
        summary.failed.append((item.id, f"{exc}"))
        summary.results[item.id] = None
        return exc
    except (GraderError, OSError, ValueError) as exc:
        summary.failed.append((item.id, f"{exc.__class__.__name__}: {exc}"))
        summary.results[item.id] = None
        return f"{item.id}: error ({exc.__class__.__name__})"
    except Exception as exc:  # a bug must not cost the other 299 submissions
        summary.failed.append((item.id, f"unexpected {exc.__class__.__name__}: {exc}"))
        summary.results[item.id] = None
        return f"{item.id}: error ({exc.__class__.__name__})"
    summary.graded += 1
    summary.results[item.id] = doc
    status, _ = submission_status(doc)
    return f"{item.id}: {doc.get('score', 0):g} {status}"


def _points(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def format_changes(changes, names: dict[str, str] | None = None) -> list[str]:
    """One line per student: ``alice (Alice Doe): total 100 -> 85; task 1.4 45 -> 30``."""
    names = names or {}
    lines = []
    for ident, diffs in changes:
        who = f"{ident} ({names[ident]})" if names.get(ident) else ident
        what = "; ".join(f"{w} {_points(a)} -> {_points(b)}" for w, a, b in diffs)
        lines.append(f"{who}: {what}")
    return lines


def print_summary(
    summary: BatchSummary, rows, assignment: Assignment, console, *, against: str = ""
) -> None:
    """Counts per status, score statistics, what changed, and every row that needs a human."""
    from rich.markup import escape
    from rich.table import Table

    scores = [r.total for r in rows if r.total is not None]
    table = Table(title=f"{assignment.name}: {summary.total} submissions", title_justify="left")
    table.add_column("")
    table.add_column("", justify="right")
    table.add_row("mode", summary.mode)
    table.add_row("graded now", str(summary.graded))
    for reason, count in summary.reasons.most_common():
        table.add_row(f"  {escape(reason)}", str(count))
    table.add_row("unchanged (kept)", str(summary.skipped))
    for status, count in sorted(summary.statuses.items()):
        style = "green" if status == "ok" else "red"
        table.add_row(f"status [{style}]{status}[/]", str(count))
    if scores:
        mean = sum(scores) / len(scores)
        table.add_row("mean / min / max", f"{mean:.1f} / {min(scores):g} / {max(scores):g}")
        table.add_row("full marks", f"{sum(s >= assignment.max_score for s in scores)}")
    table.add_row("wall time", f"{summary.seconds:.1f} s")
    if summary.scores_csv is not None:
        table.add_row("scores.csv", str(summary.scores_csv))
    console.print(table)
    console.print(describe_reasons(summary.reasons, summary.skipped))
    if against:
        names = {r.id: r.name for r in rows}
        if summary.changes:
            console.print(f"scores changed against {escape(against)} ({len(summary.changes)}):")
            for line in format_changes(summary.changes, names):
                console.print(f"  {escape(line)}")
        else:
            console.print(f"no score changed against {escape(against)}")
    attention = [r for r in rows if r.status != "ok"]
    for r in attention[:20]:
        console.print(f"  [red]{r.status}[/] {escape(r.id)}: {escape(r.error[:160])}")
    if len(attention) > 20:
        console.print(f"  ... and {len(attention) - 20} more (see scores.csv, column 'status')")


# --------------------------------------------------------------------------- CLI


def _cmd_batch(args) -> int:
    assignment = load_assignment(args.assignment)
    summary = run_batch(
        Path(args.submissions),
        assignment,
        Path(args.out),
        jobs=args.jobs,
        force=args.force,
        mode=args.mode,
        image=args.image,
        timeout=args.timeout,
        max_examples=args.max_examples,
        diff=Path(args.diff) if args.diff else None,
        scheduler=args.scheduler,
        progress=not args.no_progress,
    )
    return 1 if summary.failed else 0


def _cmd_batch_diff(args) -> int:
    from .exports import read_scores_csv, score_changes

    def rows(path: str):
        csv_path = Path(path) / "scores.csv" if Path(path).is_dir() else Path(path)
        return {r.id: r for r in read_scores_csv(csv_path)}

    old, new = rows(args.old), rows(args.new)
    changes = score_changes(old, new)
    names = {**{k: r.name for k, r in old.items()}, **{k: r.name for k, r in new.items()}}
    for line in format_changes(changes, names):
        print(line)
    print(f"{len(changes)} of {len(set(old) | set(new))} submissions changed")
    return 0


def add_commands(subparsers) -> None:
    """Register ``batch`` and ``batch-diff``."""
    p = subparsers.add_parser(
        "batch",
        help="grade a folder of submissions (containers or sandboxes; resumable), scores.csv",
        description=(
            "Grade every submission in SUBMISSIONS (a folder of submission folders or zips, "
            "or Gradescope's 'Export Submissions' folder), each in its own container or "
            "sandbox. Results go to OUT/results/<id>.json as they finish, keyed on what made "
            "them; a rerun regrades exactly the submissions whose submission, course files, "
            "grader, runner or options changed, and says why. Exit status 1 if some "
            "submission got no result at all (see the summary)."
        ),
    )
    p.add_argument("submissions", help="folder of submissions")
    p.add_argument("--assignment", "-a", required=True, help="assignment name, e.g. module1")
    p.add_argument("--out", "-o", required=True, help="output folder (results/, scores.csv)")
    p.add_argument(
        "--mode",
        choices=MODES,
        default="auto",
        help="docker: one container per submission (the Gradescope image); sandbox: one "
        "'grader grade --mode sandbox' process per submission, no Docker needed; auto "
        "(default): docker if an engine answers, else sandbox",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=1,
        help="submissions at a time (default 1; sandbox mode: at most one per CPU core)",
    )
    p.add_argument("--force", action="store_true", help="regrade every submission")
    p.add_argument("--image", help="grading image (docker; default: build it as 'grader image')")
    p.add_argument(
        "--timeout", type=float, help="wall-clock seconds per submission (default: budget + 120)"
    )
    p.add_argument(
        "--max-examples",
        type=int,
        help="hypothesis examples per test instead of the assignment's budget (smoke runs; "
        "part of the results' key)",
    )
    p.add_argument(
        "--diff",
        metavar="OLD_OUT",
        help="at the end, list every student whose score changed against OLD_OUT/scores.csv",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="grade on the workers of this Dask scheduler (tcp://HOST:8786) instead of this "
        "machine; each worker grades in sandbox or docker mode (--mode) and must have the "
        "same grader and course files (docs/cluster.md; needs minitorch-grader[cluster])",
    )
    p.add_argument("--no-progress", action="store_true", help="no per-submission progress lines")
    p.set_defaults(func=_cmd_batch)

    d = subparsers.add_parser(
        "batch-diff",
        help="list every student whose score differs between two batch outputs, per task",
    )
    d.add_argument("old", help="earlier batch output folder (or its scores.csv)")
    d.add_argument("new", help="later batch output folder (or its scores.csv)")
    d.set_defaults(func=_cmd_batch_diff)
