"""Start the worker and talk to it: the trusted side of the probe protocol.

``StudentClient.call(probe, *args, label=...)`` is all the tests see. Behind it a connection
runs the worker either in this process (students' ``make test``: fast, real tracebacks) or
in a separate, locked-down process (grading). Deadlines are enforced from this side: a call
that runs too long kills the worker, which restarts for the next call.

The sandboxed worker, when the grader runs as root:
- runs as an unprivileged uid that nothing else uses, so every process it leaves behind can
  be found and killed at the end;
- has rlimits on address space, CPU seconds, processes, file size and open files, no core;
- lives in its own session and, where the kernel allows, its own network namespace;
- sees a private view of the filesystem (bubblewrap) where that works: only the system's
  /usr, the staged submission and the worker's own files.
``defences()`` says which of these were active, for the report.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from . import protocol, worker
from .assignment import Limits
from .protocol import (
    BadValue,
    BudgetExhausted,
    Call,
    ProbeTimeout,
    Reply,
    StudentError,
    WorkerCrashed,
)
from .skeleton import strip_grader_only

__all__ = [
    "Problem",
    "SandboxConfig",
    "StudentClient",
    "WORKER_UID",
    "defences",
    "keep_private",
    "kill_uid",
    "open_to_worker",
    "share_with_worker",
]

#: The first of the uids the worker drops to. Dedicated (not ``nobody``) so that "kill every
#: process of this uid" hits only the worker and what it spawned; one uid per concurrent
#: grading run (``UidLease``), so parallel grades never kill each other's workers.
WORKER_UID = int(os.environ.get("GRADER_WORKER_UID", "64100"))
UID_SLOTS = 64
_LOCK_DIR = Path(os.environ.get("GRADER_UID_LOCK_DIR", "/tmp/.minitorch-grader-uids"))
_CLONE_NEWNET = 0x40000000
_CGROUP_ROOT = Path("/sys/fs/cgroup")
#: bubblewrap's /tmp and /dev/shm are tmpfs: files there are memory, so they get a size.
_TMPFS_BYTES = 64 * 1024 * 1024
_PR_SET_PDEATHSIG = 1
_MAX_RESTARTS = 40
_GAVE_UP = "grading stopped running your code"
#: The wall clock a grade may take, as a multiple of its CPU budget (for code that sleeps).
_WALL_FACTOR = 3


@dataclass(frozen=True)
class SandboxConfig:
    root: Path  # the folder holding the student's minitorch/
    probes: Path
    mode: str = "sandbox"  # "inprocess" | "sandbox"
    limits: Limits = field(default_factory=Limits)  # from assignment.toml, the one source
    uid: int = WORKER_UID
    call_log: Path | None = None  # JSON lines of every call and its answer (grader audit)
    runtime: tuple[str, ...] = ("numpy", "typing_extensions")  # assignment.toml [runtime]
    hide: tuple[Path, ...] = ()  # course folders the worker must not see (Assignment.secret_dirs)


# --------------------------------------------------------------------------- host facts
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


@functools.cache
def _can_unshare_net() -> bool:
    """Whether a child can get its own (empty) network namespace here."""
    if os.geteuid() != 0:
        return False
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        ok = _libc().unshare(_CLONE_NEWNET) == 0
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_REC, _MS_PRIVATE = 1, 2, 4, 1 << 14, 1 << 18


def _hide_folders(folders: tuple[Path, ...], as_root: bool) -> None:
    """Put this process in its own mount (and network) namespace where ``folders`` are empty.

    The fallback for machines without bubblewrap: an empty read-only tmpfs is mounted over
    each course folder, so the worker sees nothing there whatever the files' modes are. Not
    as root this needs an unprivileged user namespace (Debian and Ubuntu allow them).
    Raises OSError when the kernel refuses.
    """
    libc = _libc()
    flags = _CLONE_NEWNS | _CLONE_NEWNET | (0 if as_root else _CLONE_NEWUSER)
    if libc.unshare(flags) != 0:
        raise OSError(ctypes.get_errno(), "unshare")
    if libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "mount --make-rprivate /")
    for folder in folders:
        if not folder.is_dir():
            continue
        target = str(folder).encode()
        flags = _MS_RDONLY | _MS_NOSUID | _MS_NODEV
        if libc.mount(b"tmpfs", target, b"tmpfs", flags, b"size=4k") != 0:
            raise OSError(ctypes.get_errno(), f"mount tmpfs on {folder}")


@functools.cache
def _can_hide(folders: tuple[Path, ...]) -> bool:
    """Whether ``_hide_folders`` works here (tried once, in a throwaway child)."""
    if not folders:
        return False
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            _hide_folders(folders, os.geteuid() == 0)
            hidden = all(not any(f.iterdir()) for f in folders if f.is_dir())
            os._exit(0 if hidden else 1)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def _succeeds_as(cmd: list[str], uid: int) -> bool:
    """Whether ``cmd`` exits 0 when run as ``uid`` (as the worker will be run)."""
    try:
        result = subprocess.run(
            cmd,
            preexec_fn=(lambda: _drop_privileges(uid)) if os.geteuid() == 0 else None,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=20,
            cwd="/",
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


@functools.cache
def _runs_as(python: str, uid: int) -> bool:
    """Whether ``python`` starts when run as ``uid`` (it may live under a private /root)."""
    return _succeeds_as([python, "-s", "-S", "-c", "import json, ast, importlib.util"], uid)


@functools.cache
def _worker_python(uid: int) -> str:
    """An interpreter of this Python version that the unprivileged worker can execute."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    base = getattr(sys, "_base_executable", None) or sys.executable
    candidates = [
        os.path.realpath(base),
        f"/usr/bin/python{version}",
        f"/usr/local/bin/python{version}",
    ]
    for candidate in candidates:
        if os.path.exists(candidate) and (os.geteuid() != 0 or _runs_as(candidate, uid)):
            return candidate
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(candidate) and _runs_as(candidate, uid):
            return candidate
    raise RuntimeError(
        "no Python interpreter can be run by the unprivileged worker user "
        f"(uid {uid}); install python3 system-wide (e.g. apt-get install python3)"
    )


@functools.cache
def runtime_packages(names: tuple[str, ...]) -> tuple[Path, ...]:
    """The installed files of the runtime packages ``names`` (numpy, typing_extensions, ...).

    Each is a top-level entry of this environment's site-packages (``numpy/``,
    ``numpy.libs/``, ``typing_extensions.py``), found through the distribution's file list,
    so the worker can be given exactly these and nothing else of the grader's environment
    (pytest, hypothesis and the grader stay unimportable there).
    """
    from importlib import metadata

    found: dict[Path, None] = {}
    for name in names:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise RuntimeError(
                f"the runtime package {name!r} (assignment.toml [runtime]) is not installed "
                f"in the grader's environment: pip install {name}"
            ) from None
        for file in dist.files or ():
            top = file.parts[0] if file.parts else ""
            if not top or top == ".." or top.endswith(".dist-info") or top == "__pycache__":
                continue
            path = Path(dist.locate_file(top)).resolve()
            if path.exists():
                found.setdefault(path, None)
    return tuple(found)


def runtime_site(folder: Path, names: tuple[str, ...]) -> tuple[Path, list[Path]]:
    """A folder under ``folder`` that holds only the runtime packages, for the worker's path.

    Returns the folder and what the worker must be able to read for it to work. Where the
    installed files are readable by everyone the folder holds symbolic links to them (and
    bubblewrap binds each target read-only); where they are not (an environment under a
    private /root), a copy is made.
    """
    site = folder / "site"
    site.mkdir(exist_ok=True)
    targets = list(runtime_packages(names))
    for target in targets:
        link = site / target.name
        if readable_by_others(target):
            link.symlink_to(target)
        elif target.is_dir():
            shutil.copytree(target, link, symlinks=True)
        else:
            shutil.copyfile(target, link)
    readable = [t for t in targets if readable_by_others(t)]
    return site, readable


def readable_by_others(path: Path) -> bool:
    """Whether another user can read ``path``: o+r on it and o+x on every parent folder."""
    import stat

    try:
        if not path.stat().st_mode & stat.S_IROTH:
            return False
        return all(p.stat().st_mode & stat.S_IXOTH for p in path.parents)
    except OSError:
        return False


def _bwrap_args(python: str, binds: list[Path]) -> list[str]:
    prefix = Path(os.path.realpath(python)).parent.parent
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session"]
    args += ["--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "sbin"):
        target = os.path.realpath(f"/{link}")
        if os.path.islink(f"/{link}"):
            args += ["--symlink", os.readlink(f"/{link}"), f"/{link}"]
        elif os.path.isdir(target):
            args += ["--ro-bind", target, f"/{link}"]
    if not str(prefix).startswith("/usr"):
        args += ["--ro-bind", str(prefix), str(prefix)]
    args += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--size", str(_TMPFS_BYTES), "--tmpfs", "/tmp"]
    args += ["--size", str(_TMPFS_BYTES), "--tmpfs", "/dev/shm"]
    for path in binds:
        args += ["--ro-bind", str(path), str(path)]
    return args


@functools.cache
def _bwrap_works(python: str, uid: int) -> bool:
    """Whether bubblewrap can build a private view here, run as the worker user."""
    if shutil.which("bwrap") is None or os.environ.get("GRADER_NO_BWRAP"):
        return False
    return _succeeds_as([*_bwrap_args(python, []), python, "-s", "-S", "-c", "pass"], uid)


def memory_cgroup(uid: int, limit_mb: int) -> Path | None:
    """A memory cgroup (v2, or v1's memory controller) for the worker of ``uid``.

    RLIMIT_AS bounds one process; the cgroup bounds the worker, everything it forks and the
    tmpfs pages it writes, together. None where cgroups cannot be written (not root, or a
    container that mounts them read-only): rlimits are then all there is.
    """
    if os.geteuid() != 0:
        return None
    limit = str(limit_mb * 1024 * 1024)
    try:
        if (_CGROUP_ROOT / "cgroup.controllers").is_file():  # v2
            parent = _CGROUP_ROOT / "minitorch-grader"
            parent.mkdir(exist_ok=True)
            (_CGROUP_ROOT / "cgroup.subtree_control").write_text("+memory")
            (parent / "cgroup.subtree_control").write_text("+memory")
            group = parent / str(uid)
            group.mkdir(exist_ok=True)
            (group / "memory.max").write_text(limit)
            swap = group / "memory.swap.max"
            if swap.exists():
                swap.write_text("0")
        elif (_CGROUP_ROOT / "memory").is_dir():  # v1
            group = _CGROUP_ROOT / "memory" / "minitorch-grader" / str(uid)
            group.mkdir(parents=True, exist_ok=True)
            (group / "memory.limit_in_bytes").write_text(limit)
        else:
            return None
        (group / "cgroup.procs").read_text()
    except OSError:
        return None
    return group


def _probe_uid(config: SandboxConfig) -> int:
    """The uid that capability checks run as: outside the leased range, so no sweep hits them."""
    return config.uid + UID_SLOTS


def defences(config: SandboxConfig) -> dict[str, bool]:
    """Which protections the worker gets on this machine (reported in results.json)."""
    if config.mode == "inprocess":
        return {"separate_process": False}
    root = os.geteuid() == 0
    python = _worker_python(_probe_uid(config))
    bwrap = _bwrap_works(python, _probe_uid(config))
    hiding = not bwrap and _can_hide(config.hide)
    return {
        "separate_process": True,
        "rlimits": True,
        "own_session": True,
        "unprivileged_uid": root,
        "kill_leftover_processes": root,
        "private_filesystem": bwrap,
        # bubblewrap shows the worker none of them; without it a mount namespace hides them
        "hidden_course_files": bwrap or hiding,
        "no_network": bwrap or hiding or _can_unshare_net(),
        "memory_cgroup": memory_cgroup(_probe_uid(config), config.limits.memory_mb) is not None,
    }


def open_to_worker(root: Path) -> None:
    """Make the tree under ``root`` readable by the worker's uid (folders 755, files 644).

    Everything the worker reads (a staged submission, its own runtime files) is written by
    root; symbolic links are left alone, since chmod would change what they point at.
    """
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)


def keep_private(root: Path) -> None:
    """Make the tree under ``root`` readable by this process's user only (700/600)."""
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o700 if path.is_dir() else 0o600)


def share_with_worker(root: Path, uid: int) -> None:
    """Let exactly one worker read the tree under ``root``, and nobody else.

    As root: owner root, group the worker's leased uid (its gid too), folders 750 and files
    640, so a concurrent grade's worker (another uid) can read nothing of this submission,
    and the worker itself can read but not change it. Not as root the worker runs as this
    very user, so the tree is simply private.
    """
    if os.geteuid() != 0:
        keep_private(root)
        return
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        os.chown(path, 0, uid)
        path.chmod(0o750 if path.is_dir() else 0o640)


_CPU_EVERY = 0.5  # seconds between two measurements of a worker's CPU time
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_cpu(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of ``pid`` and its reaped children), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            raw = fh.read()
    except OSError:
        return None
    fields = raw[raw.rfind(")") + 2 :].split()  # the name in parentheses may hold spaces
    try:
        return int(fields[1]), sum(int(x) for x in fields[11:15]) / _TICKS  # utime..cstime
    except (IndexError, ValueError):
        return None


def _children(pid: int) -> list[int] | None:
    """The live children of ``pid`` from /proc/<pid>/task/*/children, [] if it is gone, or
    None where the kernel has no such file (then the caller scans every process)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as fh:
                found += [int(x) for x in fh.read().split()]
        except FileNotFoundError:
            if os.path.isdir(f"/proc/{pid}/task/{task}"):
                return None  # the task is there, its children file is not: no support
        except (OSError, ValueError):
            continue
    return found


def _scan_children() -> dict[int, list[int]]:
    """Every process's children, from a scan of /proc (kernels without children files)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (stat := _stat_cpu(int(entry))) is not None:
            children.setdefault(stat[0], []).append(int(entry))
    return children


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used by process ``pid`` and its descendants (their reaped children too).

    What a concurrent neighbour does cannot show up here, unlike in wall-clock time, so a
    budget counted this way is the same on an idle machine and a loaded one. Walks the tree
    from ``pid`` down (a few files per worker process), not every process of the machine.
    """
    total, todo, seen = 0.0, [pid], set()
    scanned: dict[int, list[int]] | None = None
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        stat = _stat_cpu(current)
        if stat is None:
            continue
        total += stat[1]
        kids = _children(current) if scanned is None else scanned.get(current, [])
        if kids is None:
            scanned = _scan_children()
            kids = scanned.get(current, [])
        todo.extend(kids)
    return total


def kill_uid(uid: int) -> int:
    """SIGKILL every process whose real uid is ``uid``; returns how many were signalled.

    Repeats until none is left, so a fork bomb racing the sweep is still emptied.
    """
    total = 0
    for _ in range(50):
        found = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/status", encoding="ascii", errors="replace") as fh:
                    fields = dict(line.split(":", 1) for line in fh if ":" in line)
                if fields.get("State", "").strip().startswith("Z"):
                    continue  # already dead, only waiting for its parent to reap it
                if int(fields.get("Uid", "-1").split()[0]) == uid:
                    os.kill(int(entry), signal.SIGKILL)
                    found += 1
            except (OSError, ValueError):
                continue
        total += found
        if not found:
            break
        time.sleep(0.01)
    return total


class UidLease:
    """Holds one worker uid for the life of a client (an flock'd file per uid).

    The lock dies with the process, so a crashed grader never leaks its uid; leftovers of
    such a run are killed when the uid is taken again.
    """

    def __init__(self, first: int = WORKER_UID, slots: int = UID_SLOTS) -> None:
        import fcntl

        _LOCK_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        for uid in range(first, first + slots):
            fh = open(_LOCK_DIR / str(uid), "a+")  # noqa: SIM115 - held until release()
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.close()
                continue
            self.uid = uid
            self._fh = fh
            kill_uid(uid)
            return
        raise RuntimeError(f"all {slots} worker uids from {first} are in use")

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


# --------------------------------------------------------------------------- connections
class _Deadline(Exception):
    """A call ran out of time (raised by the connection, never seen by tests)."""


class _Oversized(Exception):
    """The worker sent a frame over the size limits (the stream cannot be trusted after it)."""


class _Died(Exception):
    """The worker process went away mid-call."""


Notes = Callable[[str, str], None]


def worker_probes(source: Path, folder: Path) -> Path:
    """Write the probes a worker loads into ``folder``: ``source`` without its grader-only
    blocks (as the hand-out has it), so no grader solution or closed form sits where
    student code can read it (the stack, the file, the module's globals)."""
    target = folder / "probes.py"
    text = strip_grader_only(source.read_text(encoding="utf-8"), source)
    target.write_text(text, encoding="utf-8")
    return target


class _InProcess:
    """Runs the worker's code in this process; deadlines by SIGALRM when possible."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.runtime = Path(tempfile.mkdtemp(prefix="grader-inprocess-"))
        self.probes = worker_probes(config.probes, self.runtime)
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
        self.worker = worker.Worker(self.config.root, self.probes, lambda e, n: self.on_note(e, n))
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
                raise _Deadline() from None
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


class _Subprocess:
    """Runs the worker in a separate, limited process and talks length-prefixed JSON."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.on_note: Notes = lambda event, name: None
        self.proc: subprocess.Popen[bytes] | None = None
        self.stderr: _OutputTail | None = None
        self.reader = protocol.FrameReader()
        self.spent = 0.0  # CPU seconds of the workers this connection has already stopped
        self._live_cpu, self._measured_at = 0.0, float("-inf")  # see cpu_seconds
        self.as_root = os.geteuid() == 0
        self.lease = UidLease(config.uid) if self.as_root else None
        self.uid = self.lease.uid if self.lease else os.getuid()
        self.python = _worker_python(_probe_uid(config))
        self.bwrap = _bwrap_works(self.python, _probe_uid(config))
        self.hiding = not self.bwrap and _can_hide(config.hide)
        self.netns = not self.bwrap and not self.hiding and _can_unshare_net()
        self.cgroup = memory_cgroup(self.uid, config.limits.memory_mb) if self.as_root else None
        # The worker's own files live outside the submission, readable by the worker user.
        self.runtime = Path(tempfile.mkdtemp(prefix="grader-worker-"))
        for src in (Path(worker.__file__), Path(protocol.__file__)):
            shutil.copyfile(src, self.runtime / src.name)
        worker_probes(config.probes, self.runtime)
        self.site, self.site_targets = runtime_site(self.runtime, config.runtime)
        # This worker, and no other grade's, may read the submission and its own files.
        share_with_worker(self.runtime, self.uid)
        share_with_worker(config.root.resolve(), self.uid)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _preexec(self) -> None:  # pragma: no cover - runs in the child
        os.setsid()
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
        libc = _libc()
        if self.cgroup is not None:  # before the uid drop: only root may move a process
            try:
                (self.cgroup / "cgroup.procs").write_text(str(os.getpid()))
            except OSError:
                pass
        if self.hiding:
            _hide_folders(self.config.hide, self.as_root)
        if self.as_root:
            if self.netns:
                libc.unshare(_CLONE_NEWNET)
            _drop_privileges(self.uid)
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
            "--probes",
            str(self.runtime / "probes.py"),
            "--site",
            str(self.site),
            "--runtime",
            ",".join(self.config.runtime),
        ]
        if self.bwrap:
            binds = [root, self.runtime, *self.site_targets]
            cmd = [*_bwrap_args(self.python, binds), "--chdir", str(root), *cmd]
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
        except BaseException:
            os.close(err_read)
            raise
        finally:
            os.close(err_write)
        self.stderr = _OutputTail(err_read)

    def request(self, call: Call, timeout: float) -> Reply:
        proc = self.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        try:
            protocol.write_frame(proc.stdin.fileno(), call.to_json())
        except (BrokenPipeError, OSError):
            raise _Died() from None
        deadline = time.monotonic() + timeout
        fd = proc.stdout.fileno()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _Deadline()
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise _Died()
            try:
                frames = self.reader.feed(chunk)
            except protocol.OversizedFrame:
                raise _Oversized() from None
            except (ValueError, UnicodeDecodeError):
                raise _Died() from None
            for frame in frames:
                if frame.get("type") == "note":
                    self.on_note(str(frame.get("event")), str(frame.get("module")))
                    continue
                try:
                    reply = Reply.from_json(frame)
                except (ValueError, KeyError, TypeError):
                    raise _Died() from None
                if reply.id == call.id:
                    return reply

    def exit_description(self) -> str:
        if self.proc is None:
            return "it was not running"
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
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
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
        if self.lease is not None:
            self.lease.release()


# --------------------------------------------------------------------------- the client
@dataclass(frozen=True)
class Problem:
    """Something that stopped student code from running, for the report's first lines.

    ``kind`` is the submission-level status it leads to (``import-error``, ``timeout``,
    ``crashed``); ``key`` names the cause (a file, a function); ``message`` says what happened.
    """

    kind: str
    key: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "key": self.key, "message": self.message}


def _stands(fault: protocol.StudentFault) -> bool:
    """Whether ``fault`` fails every later call of its test alike, whatever the input."""
    if isinstance(fault, (ProbeTimeout, BudgetExhausted)):
        return True
    if isinstance(fault, StudentError):
        return fault.type_name == "ImportError"
    return isinstance(fault, WorkerCrashed) and fault.message.startswith(_GAVE_UP)


class StudentClient:
    """What the tests call. Owns one worker at a time and the rules for faults.

    - A call that hangs kills the worker; later calls of the same label fail at once with
      the same message (hypothesis would otherwise re-run a hanging call while shrinking).
    - A student module whose import hangs or kills the worker is blocked: every later
      import of it fails at once, so the tests that do not need it still run.
    - Once the submission's budget is spent (CPU time of its workers, or a generous wall
      clock), every call fails at once.
    """

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.started = time.monotonic()
        self._conn: _InProcess | _Subprocess = (
            _InProcess(config) if config.mode == "inprocess" else _Subprocess(config)
        )
        self._conn.on_note = self._on_note
        self._ids = 0
        self._importing: list[str] = []
        self._blocked: dict[str, str] = {}
        self._hung: dict[tuple[str, str], str] = {}
        #: The test now running (set by the plugin). A call that hung fails at once when the
        #: same test calls it again (hypothesis would re-run it while shrinking), but another
        #: test still gets to run it: one hang must not cost every test that shares a label.
        self.scope = ""
        self.restarts = 0
        self.calls = 0
        #: Whether the last call failed in a way that no other input changes: a file that does
        #: not import, a hung call (repeats fail at once), the budget, too many restarts. The
        #: plugin skips shrinking then: every smaller example would fail the same way, so
        #: shrinking could only spend time and end on an example that is not the trigger.
        self.fault_stands = False
        #: One entry per cause that stopped student code from running: a file that did not
        #: import, a call that timed out, a crash, the budget. Reported once, at the top.
        self.problems: dict[str, Problem] = {}

    # -- bookkeeping
    def _on_note(self, event: str, name: str) -> None:
        if event == "enter":
            self._importing.append(name)
        elif event == "exit" and self._importing:
            self._importing.pop()

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def defences(self) -> dict[str, bool]:
        return defences(self.config)

    @property
    def worker_uid(self) -> int | None:
        """The uid the sandboxed worker runs as (None in-process or when not root)."""
        lease = getattr(self._conn, "lease", None)
        return lease.uid if lease is not None else None

    # -- worker life
    def _ensure_worker(self) -> None:
        if self._conn.alive:
            return
        if self.restarts >= _MAX_RESTARTS:
            raise WorkerCrashed(
                f"{_GAVE_UP}: the worker process was restarted "
                f"{_MAX_RESTARTS} times after hangs or crashes"
            )
        self._conn.start()
        self.restarts += 1
        if self._blocked:
            self._conn.request(Call(self._next_id(), "init", [self._blocked], "init"), 10.0)
        self._preload()

    def _preload(self) -> None:
        """Import each student file once, with its own deadline, to find the ones that hang."""
        pkg = worker.StudentPackage(self.config.root)
        for name in pkg.module_names():
            if name in self._blocked:
                continue
            self._importing = []
            call = Call(self._next_id(), name, [], "import")
            try:
                self._conn.request(call, self.config.limits.import_timeout)
            except (_Deadline, _Died) as exc:
                culprit = self._importing[-1] if self._importing else name
                self._blocked[culprit] = self._import_fault(culprit, exc)
                self._restart_after_fault()
                self._conn.start()
                self._conn.request(Call(self._next_id(), "init", [self._blocked], "init"), 10.0)
        self._importing = []

    def _import_fault(self, name: str, exc: Exception) -> str:
        rel = f"minitorch/{name}.py"
        if isinstance(exc, _Deadline):
            return (
                f"{rel} could not be imported: it did not finish importing within "
                f"{self.config.limits.import_timeout:g} s (an infinite loop or a long computation "
                "at the top level of the file?)"
            )
        how = self._conn.exit_description() if isinstance(self._conn, _Subprocess) else ""
        return f"{rel} could not be imported: the process running it died ({how})"

    def _restart_after_fault(self) -> None:
        self._conn.kill()
        self.restarts += 1

    def import_problem(self, name: str) -> str | None:
        """Why ``minitorch/<name>.py`` does not import in the worker, or None when it does."""
        try:
            self._ensure_worker()
        except WorkerCrashed as exc:
            return str(exc)
        if name in self._blocked:
            return self._blocked[name]
        reply = self._conn.request(Call(self._next_id(), name, [], "import"), 10.0)
        if reply.ok:
            return None
        error = reply.error or {}
        return str(error.get("message") or error.get("type") or "it did not import")

    def _budget_exhausted(self) -> str | None:
        """Why no more student code may run, or None.

        The budget counts the CPU time of this grade's own workers, so a busy neighbour on
        the machine cannot cost anyone points; a wall clock of several times the budget still
        stops code that only sleeps.
        """
        budget = self.config.limits.budget
        if self._conn.cpu_seconds() > budget:
            return (
                f"grading stopped after your code used {budget:g} s of CPU time (the "
                "submission's budget), so the remaining checks were not run"
            )
        wall = _WALL_FACTOR * budget
        if self.elapsed > wall:
            return (
                f"grading stopped after {wall:g} s of wall-clock time (your code waited or slept "
                "for most of it), so the remaining checks were not run"
            )
        return None

    # -- the API the tests use
    def call(self, probe: str, *args: Any, label: str | None = None) -> Any:
        """Run one probe in the worker and return its plain-data value.

        Raises a ``StudentFault`` subclass when student code fails, hangs or crashes.
        """
        try:
            value = self._call(probe, args, label)
        except protocol.StudentFault as exc:
            self.fault_stands = _stands(exc)
            if self.config.call_log is not None:
                self._log(
                    {
                        "probe": probe,
                        "args": list(args),
                        "fault": type(exc).__name__,
                        "type": getattr(exc, "type_name", None),
                    }
                )
            raise
        self.fault_stands = False
        if self.config.call_log is not None:
            self._log({"probe": probe, "args": list(args), "value": value})
        return value

    def _log(self, entry: dict[str, Any]) -> None:
        import json

        assert self.config.call_log is not None
        with open(self.config.call_log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")

    def _call(self, probe: str, args: tuple[Any, ...], label: str | None) -> Any:
        what = label or probe
        if (self.scope, what) in self._hung:
            self._hang_again(what, label)
        exhausted = self._budget_exhausted()
        if exhausted:
            self._note("timeout", "budget", exhausted)
            raise BudgetExhausted(exhausted, label=label)
        protocol.check_plain(list(args), f"the arguments of probe {probe}")
        self.calls += 1
        reply: Reply | None
        try:
            self._ensure_worker()
            self._importing = []
            call = Call(self._next_id(), probe, list(args))
            reply = self._conn.request(call, self.config.limits.probe_timeout)
        except _Deadline:
            culprit = self._importing[-1] if self._importing else None
            self._restart_after_fault()
            if culprit is not None:
                self._blocked[culprit] = self._import_fault(culprit, _Deadline())
                self._note_import(self._blocked[culprit])
                raise StudentError("ImportError", self._blocked[culprit], label=label) from None
            limit = self.config.limits.probe_timeout
            message = (
                f"timed out after {limit:g} s in {what} (an infinite loop? "
                "the worker was stopped; later calls of it fail the same way without waiting)"
            )
            self._hung[self.scope, what] = message
            self._note("timeout", what, message)
            reply = None
        except _Oversized:
            self._restart_after_fault()
            raise BadValue(
                f"the value returned for {what} is too large to be checked (over "
                f"{protocol.MAX_FRAME // (1024 * 1024)} MiB or {protocol.MAX_WIRE_ITEMS} items)",
                label=label,
            ) from None
        except _Died:
            how = self._conn.exit_description() if isinstance(self._conn, _Subprocess) else ""
            culprit = self._importing[-1] if self._importing else None
            self._restart_after_fault()
            if culprit is not None:
                self._blocked[culprit] = self._import_fault(culprit, _Died())
                self._note_import(self._blocked[culprit])
                raise StudentError("ImportError", self._blocked[culprit], label=label) from None
            message = f"the process running your code died ({how}) in {what}"
            self._note("crashed", what, message)
            raise WorkerCrashed(message, label=label) from None
        if reply is None:
            self._hang_again(what, label)  # outside the except block: see _hang_again
        if not reply.ok and reply.error is not None:
            if reply.error.get("type") == "ImportError":
                self._note_import(str(reply.error.get("message", "")))
            if label and not reply.error.get("label"):
                reply = Reply(reply.id, False, error={**reply.error, "label": label})
        return reply.value

    def _hang_again(self, what: str, label: str | None) -> NoReturn:
        """Raise the timeout of ``what`` in this test, the first time and on every repeat alike.

        hypothesis tells failures apart by where they were raised and what they were raised
        during; the repeat of a hang (no call made) must look like the hang itself, or the
        replay of a failing example counts as another failure ("flaky")."""
        raise ProbeTimeout(self._hung[self.scope, what], label=label)

    def _note(self, kind: str, key: str, message: str) -> None:
        self.problems.setdefault(f"{kind}:{key}", Problem(kind, key, message))

    def _note_import(self, message: str) -> None:
        """A student file that did not import (its message starts with the file's name)."""
        import re

        found = re.match(r"(minitorch/\w+\.py)\b", message)
        if found:
            self._note("import-error", found.group(1), message)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> StudentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<StudentClient {self.config.mode} {self.config.root}>"
