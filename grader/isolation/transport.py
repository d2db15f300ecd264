"""The connections to a worker: in this process, or a locked-down subprocess.

Both offer one ``request(call, timeout)``; a call that outlives its deadline is ended from
this side (SIGALRM in process, a kill of the whole worker otherwise).
"""

from __future__ import annotations

import contextlib
import os
import resource
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grader.isolation import protocol, worker
from grader.isolation.config import SandboxConfig, probe_uid
from grader.isolation.host import (
    CLONE_NEWNET,
    can_unshare_net,
    drop_privileges,
    libc,
    runtime_site,
    share_with_worker,
    worker_python,
)
from grader.isolation.processes import (
    UidLease,
    kill_uid,
    memory_cgroup,
    remove_cgroup,
    remove_files_of,
    tree_cpu_seconds,
)
from grader.isolation.protocol import (
    Call,
    Reply,
)
from grader.isolation.view import NamespaceView, bwrap_args, view_kind, view_steps

_PR_SET_PDEATHSIG = 1
_CPU_EVERY = 0.5  # seconds between two measurements of a worker's CPU time
START_ATTEMPTS = 3  # tries to start a worker process before the grade calls it a crash


# --------------------------------------------------------------------------- connections
class Deadline(Exception):
    """A call ran out of time (raised by the connection, never seen by tests)."""


class Oversized(Exception):
    """The worker sent a frame over the size limits (the stream cannot be trusted after it)."""


class Died(Exception):
    """The worker process went away mid-call."""


Notes = Callable[[str, str], None]


class InProcess:
    """Runs the worker's code in this process; deadlines by SIGALRM when possible."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.runtime = Path(tempfile.mkdtemp(prefix="grader-inprocess-"))
        self.on_note: Notes = lambda event, name: None
        self.worker: worker.Worker | None = None
        self.started_cpu = time.process_time()

    def cpu_seconds(self) -> float:
        """CPU time of this process since the client started (the tests' share included)."""
        return time.process_time() - self.started_cpu

    @property
    def alive(self) -> bool:
        return self.worker is not None

    def start(self) -> None:
        self.worker = worker.Worker(
            self.config.root,
            lambda e, n: self.on_note(e, n),
            self.config.runtime,
            self.config.python,
        )
        self.worker.start()

    def request(self, call: Call, timeout: float) -> Reply:
        assert self.worker is not None
        use_alarm = (
            hasattr(signal, "setitimer")
            and timeout > 0
            and __import__("threading").current_thread() is __import__("threading").main_thread()
        )
        if not use_alarm:
            reply = self.worker.handle(call)
        else:

            def on_alarm(signum: int, frame: Any) -> None:
                raise worker.DeadlineExceeded()

            previous = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, timeout)
            try:
                reply = self.worker.handle(call)
            except worker.DeadlineExceeded:
                running = self.worker.executor.running
                if running is not None:  # as the sandboxed worker's watcher would tell
                    self.on_note("running", str(running))
                raise Deadline() from None
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
        # The same strictness as the pipe: plain data only, then a JSON round trip.
        frame = protocol.encode_frame(reply.to_json())
        return Reply.from_json(protocol.FrameReader().feed(frame)[0])

    def kill(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        self.worker = None

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.runtime, ignore_errors=True)


class _OutputTail:
    """Drains the worker's stderr (student prints included), keeping only its last bytes.

    A pipe read by a thread rather than a file: any amount of printing costs nothing (no
    file-size limit to hit, no pipe to fill and block the worker), and when the worker dies
    its last words are still here to explain why.
    """

    def __init__(self, fd: int, keep: int = 8192) -> None:
        self._fd = fd
        self._keep = keep
        self._data = bytearray()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain, name="worker-stderr", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        try:
            while True:
                chunk = os.read(self._fd, 1 << 16)
                if not chunk:
                    return
                with self._lock:
                    self._data += chunk
                    if len(self._data) > 2 * self._keep:
                        del self._data[: len(self._data) - self._keep]
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                os.close(self._fd)

    def text(self, limit: int) -> str:
        self._thread.join(timeout=0.2)  # what a dying worker wrote last, if it comes soon
        with self._lock:
            return bytes(self._data[-limit:]).decode("utf-8", "replace")


class Subprocess:
    """Runs the worker in a separate, limited process and talks length-prefixed JSON."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.on_note: Notes = lambda event, name: None
        self.proc: subprocess.Popen[bytes] | None = None
        self.start_error = ""  # why the last start failed, for the crash message
        self.stderr: _OutputTail | None = None
        self.reader = protocol.FrameReader()
        self.spent = 0.0  # CPU seconds of the workers this connection has already stopped
        self._live_cpu, self._measured_at = 0.0, float("-inf")  # see cpu_seconds
        self.as_root = os.geteuid() == 0
        self.lease = UidLease(config.uid) if self.as_root else None
        self.uid = self.lease.uid if self.lease else os.getuid()
        self.python = worker_python(probe_uid(config))
        self.view = view_kind(self.python, probe_uid(config))
        self.netns = self.view == "none" and can_unshare_net()
        self.libc = libc()  # looked up here: the child must not load libraries
        #: Without bubblewrap: the empty folder each start's view is built on, and that view.
        self.mountpoint = (
            Path(tempfile.mkdtemp(prefix="grader-view-")) if self.view == "namespaces" else None
        )
        self.namespace_view: NamespaceView | None = None
        self.cgroup: Path | None = None  # a new, empty one for every start of the worker
        # The worker's own files live outside the submission, readable by the worker user.
        self.runtime = Path(tempfile.mkdtemp(prefix="grader-worker-"))
        for src in (Path(worker.__file__), *map(Path, worker.COMPANIONS)):
            shutil.copyfile(src, self.runtime / src.name)
        self.site, self.site_targets = runtime_site(self.runtime, config.runtime)
        # This worker, and no other grade's, may read the submission and its own files.
        share_with_worker(self.runtime, self.uid)
        share_with_worker(config.root.resolve(), self.uid)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _preexec(self) -> None:  # pragma: no cover - runs in the child
        os.setsid()
        libc = self.libc
        if self.cgroup is not None:  # before the uid drop: only root may move a process
            try:
                (self.cgroup / "cgroup.procs").write_text(str(os.getpid()))
            except OSError:
                pass
        if self.namespace_view is not None:  # raises when it cannot: no worker without it
            self.namespace_view.enter()
        # After the view: this child of the grader may already use more address space than
        # the worker is allowed, and building the view allocates a little.
        mb = 1024 * 1024
        c = self.config
        limits = [
            (resource.RLIMIT_AS, c.limits.memory_mb * mb),
            (resource.RLIMIT_CPU, c.limits.cpu_seconds),
            (resource.RLIMIT_FSIZE, c.limits.file_size_mb * mb),
            (resource.RLIMIT_NOFILE, c.limits.open_files),
            (resource.RLIMIT_CORE, 0),
        ]
        if self.as_root:
            limits.append((resource.RLIMIT_NPROC, c.limits.processes))
        for which, value in limits:
            try:
                resource.setrlimit(which, (value, value))
            except (ValueError, OSError):
                pass
        if self.as_root:
            if self.netns:
                libc.unshare(CLONE_NEWNET)
            drop_privileges(self.uid)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    def start(self) -> None:
        root = self.config.root.resolve()
        cmd = [
            self.python,
            "-s",
            "-S",
            "-B",
            str(self.runtime / "worker.py"),
            "--root",
            str(root),
            "--site",
            str(self.site),
            "--runtime",
            ",".join(self.config.runtime),
            "--python",
            self.config.python,
        ]
        binds = [root, self.runtime, *self.site_targets]
        if self.view == "bubblewrap":
            cmd = [*bwrap_args(self.python, binds), "--chdir", str(root), *cmd]
        elif self.view == "namespaces":
            assert self.mountpoint is not None
            steps = view_steps(self.python, binds)
            self.namespace_view = NamespaceView(steps, self.mountpoint, root, self.as_root)
        env = {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "HOME": "/tmp",
            "TMPDIR": "/tmp",
            # numpy's BLAS would start a thread per core, each counted against the process
            # limit and reserving address space; graded code needs none of them.
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        self.reader = protocol.FrameReader()
        if self.as_root:
            self.cgroup = memory_cgroup(self.uid, self.config.limits.memory_mb)
        self.start_error = ""
        for attempt in range(START_ATTEMPTS):
            err_read, err_write = os.pipe()
            try:
                self.proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=err_write,
                    cwd=str(root),
                    env=env,
                    preexec_fn=self._preexec,
                    close_fds=True,
                )
            except (OSError, subprocess.SubprocessError) as exc:
                # No process could be started (a neighbour's fork bomb, a full process
                # table, a view that could not be built): try again shortly, then report
                # it as the worker's death, leaving no cgroup behind.
                os.close(err_read)
                self.proc = None
                if attempt + 1 == START_ATTEMPTS:
                    remove_cgroup(self.cgroup)
                    self.cgroup = None
                    self.start_error = f"the grading machine could not start it: {exc}"
                    raise Died(self.start_error) from None
                time.sleep(0.5 * (attempt + 1))
                continue
            except BaseException:
                os.close(err_read)
                remove_cgroup(self.cgroup)
                self.cgroup = None
                raise
            finally:
                os.close(err_write)
            self.stderr = _OutputTail(err_read)
            return

    def request(self, call: Call, timeout: float) -> Reply:
        proc = self.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            protocol.write_frame(proc.stdin.fileno(), call.to_json())
        except (BrokenPipeError, OSError):
            raise Died() from None
        deadline = time.monotonic() + timeout
        fd = proc.stdout.fileno()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Deadline()
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise Died()
            try:
                frames = self.reader.feed(chunk)
            except protocol.OversizedFrame:
                raise Oversized() from None
            except (ValueError, UnicodeDecodeError):
                raise Died() from None
            for frame in frames:
                if frame.get("type") == "note":
                    self.on_note(str(frame.get("event")), str(frame.get("module")))
                    continue
                try:
                    reply = Reply.from_json(frame)
                except (ValueError, KeyError, TypeError):
                    raise Died() from None
                if reply.id == call.id:
                    return reply

    def exit_description(self) -> str:
        if self.proc is None:
            return self.start_error or "it was not running"
        try:
            code = self.proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return "it stopped answering"
        if code < 0:
            sig = signal.Signals(-code).name if -code in signal.valid_signals() else -code
            hint = ""
            if -code in (signal.SIGKILL, signal.SIGXCPU):
                hint = ": out of memory or CPU time"
            elif -code == signal.SIGSEGV:
                hint = ": a segmentation fault, often unbounded recursion"
            return f"killed by {sig}{hint}"
        last = self.last_words()
        return f"exit code {code}" + (f"; it printed: {last}" if last else "")

    def last_words(self, limit: int = 300) -> str:
        """The end of the worker's stderr (student prints included), for crash reports."""
        if self.stderr is None:
            return ""
        text = self.stderr.text(limit).strip()
        return " | ".join(text.splitlines()[-3:])

    def cpu_seconds(self) -> float:
        """CPU time of every worker this connection ran, the live one included.

        Measured at most every ``_CPU_EVERY`` seconds (in between, the last figure): the
        budget is minutes, a call is milliseconds, and reading /proc on every call cost a
        grade a fifth of its time.
        """
        now = time.monotonic()
        if self.proc is not None and now - self._measured_at >= _CPU_EVERY:
            self._live_cpu = tree_cpu_seconds(self.proc.pid)
            self._measured_at = now
        return self.spent + (self._live_cpu if self.proc is not None else 0.0)

    def kill(self) -> None:
        proc = self.proc
        if proc is None:
            return
        self.spent += tree_cpu_seconds(proc.pid)
        self._live_cpu, self._measured_at = 0.0, float("-inf")
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.kill()
        except ProcessLookupError:
            pass
        if self.as_root:
            kill_uid(self.uid)
            if self.view == "none":  # no private /tmp that dies with the worker
                remove_files_of(self.uid)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        remove_cgroup(self.cgroup)  # every process of the uid is gone: never used again
        self.cgroup = None
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        self.proc = None

    def close(self) -> None:
        self.kill()
        self.stderr = None
        shutil.rmtree(self.runtime, ignore_errors=True)
        if self.mountpoint is not None:
            with contextlib.suppress(OSError):
                self.mountpoint.rmdir()
        if self.lease is not None:
            self.lease.release()
