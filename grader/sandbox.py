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
- starts in an empty memory cgroup of its own (a new one for every start of the worker);
- sees an allowlist view of the filesystem: the system's /usr, the staged submission, the
  worker's own files and the runtime packages, read-only, and private sized /tmp, /var/tmp
  and /dev/shm. bubblewrap builds it where it can; without it, the kernel's namespaces build
  the same one (``_NamespaceView``); where neither works (inside a container) there is none.
``defences()`` says which of these were active, for the report.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import functools
import os
import platform
import resource
import secrets
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
#: The worker's /tmp, /var/tmp and /dev/shm are tmpfs: files there are memory, so they get a size.
_TMPFS_BYTES = 64 * 1024 * 1024
_PR_SET_PDEATHSIG = 1
_MAX_RESTARTS = 40
_MAX_IMPORT_DEPTH = 32  # nested student imports the client keeps track of
_START_ATTEMPTS = 3  # tries to start a worker process before the grade calls it a crash
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


def _drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def _succeeds_as(cmd: list[str], uid: int, preexec: Callable[[], None] | None = None) -> bool:
    """Whether ``cmd`` exits 0 when run as ``uid`` (as the worker will be run); ``preexec``
    replaces the plain drop to ``uid`` in the child when given."""
    if preexec is None and os.geteuid() == 0:
        preexec = lambda: _drop_privileges(uid)  # noqa: E731 - runs in the child
    try:
        result = subprocess.run(
            cmd,
            preexec_fn=preexec,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=20,
            cwd="/",
        )
    except (OSError, subprocess.SubprocessError):
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


# --------------------------------------------------------------------------- the view
# The worker sees an allowlist of the filesystem, never the host's with some folders covered:
# a folder nobody thought of (a second checkout, a copy of the course under out/ or dist/) is
# simply not there. bubblewrap builds the view where it can (_bwrap_args), the kernel's
# namespaces where it cannot (_NamespaceView), both from one list of steps (_view_steps).


@dataclass(frozen=True)
class _Step:
    """One entry of the worker's view, at the same path as on the host."""

    kind: str  # "ro-bind" | "symlink" | "dev" | "tmpfs"
    path: str
    source: str = ""  # ro-bind: the host's path; symlink: its target


def _view_steps(python: str, binds: list[Path]) -> list[_Step]:
    """The worker's view, in the order it is built.

    The system's /usr, read-only; /bin, /lib, /lib64 and /sbin as the symbolic links or
    folders they are; the Python prefix when it lives outside /usr; the loader's cache; a
    minimal /dev; private tmpfs on /tmp, /var/tmp and /dev/shm; then ``binds`` (the staged
    submission, the worker's own files, the runtime packages), each read-only at its path.
    """
    steps = [_Step("ro-bind", "/usr", "/usr")]
    for link in ("bin", "lib", "lib64", "sbin"):
        path = f"/{link}"
        if os.path.islink(path):
            steps.append(_Step("symlink", path, os.readlink(path)))
        elif os.path.isdir(path):
            steps.append(_Step("ro-bind", path, os.path.realpath(path)))
    prefix = Path(os.path.realpath(python)).parent.parent
    if not str(prefix).startswith("/usr"):
        steps.append(_Step("ro-bind", str(prefix), str(prefix)))
    if os.path.isfile("/etc/ld.so.cache"):
        steps.append(_Step("ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"))
    steps.append(_Step("dev", "/dev"))
    steps += [_Step("tmpfs", place) for place in ("/tmp", "/var/tmp", "/dev/shm")]
    steps += [_Step("ro-bind", str(path), str(path)) for path in binds]
    return steps


def _bwrap_args(python: str, binds: list[Path]) -> list[str]:
    """bubblewrap's command line for the view (new pid, ipc, uts, net namespaces too)."""
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session"]
    for step in _view_steps(python, binds):
        if step.kind == "ro-bind":
            args += ["--ro-bind", step.source, step.path]
        elif step.kind == "symlink":
            args += ["--symlink", step.source, step.path]
        elif step.kind == "dev":
            # In bubblewrap's own pid namespace, /proc shows the worker's processes only.
            args += ["--proc", "/proc", "--dev", "/dev"]
        else:
            args += ["--size", str(_TMPFS_BYTES), "--tmpfs", step.path]
    return args


def _bwrap_works(python: str, uid: int) -> bool:
    """Whether bubblewrap can build the view here, run as the worker user."""
    if shutil.which("bwrap") is None or os.environ.get("GRADER_NO_BWRAP"):
        return False
    return _bwrap_runs(python, uid)


@functools.cache
def _bwrap_runs(python: str, uid: int) -> bool:
    return _succeeds_as([*_bwrap_args(python, []), python, "-s", "-S", "-c", "pass"], uid)


_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 32, 4096, 1 << 14, 1 << 18
_MS_NOATIME, _MS_NODIRATIME, _MS_RELATIME = 1024, 2048, 1 << 21
_MNT_DETACH = 2
#: pivot_root(2) has no libc wrapper: its system call number on the architectures known here.
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
#: The device nodes of the worker's /dev, bound from the host's.
_DEVICES = ("null", "zero", "full", "random", "urandom")
#: A mount's flags that a bind of it carries and a read-only remount of the bind must repeat:
#: in a user namespace they are locked, and a remount that drops one fails with EPERM.
_LOCKED_FLAGS = (
    (os.ST_NOSUID, _MS_NOSUID),
    (os.ST_NODEV, _MS_NODEV),
    (os.ST_NOEXEC, _MS_NOEXEC),
    (os.ST_NOATIME, _MS_NOATIME),
    (os.ST_NODIRATIME, _MS_NODIRATIME),
    (os.ST_RELATIME, _MS_RELATIME),
)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


class _NamespaceView:
    """The view of ``_view_steps`` built from the kernel's namespaces (no bubblewrap).

    Prepared in the grader: everything that reads the host (which paths exist, what is a
    folder, each source mount's flags) is looked up here, so the child does no imports and
    no lookups. Entered by the worker's Popen child before it execs (``enter``):

    - unshare a mount and a network namespace; not as root, a user namespace too, whose
      identity uid/gid map keeps the user who it is (its capabilities in it are gone at
      exec: the worker is a non-setuid program run by a non-zero uid);
    - make every mount private, so nothing done here reaches the host;
    - mount a small tmpfs as the new root on an empty folder made beforehand; make each
      step's mount point in it; bind each allowed path at its own path and remount it
      read-only (keeping the source's locked flags); mount private sized tmpfs on /tmp,
      /var/tmp and /dev/shm; bind five device nodes;
    - pivot_root into it and detach the old root, so nothing else of the host is reachable;
      remount the new root read-only; chdir to the stage (Popen's cwd was the host's).

    No /proc is mounted: without a pid namespace of its own (the worker must stay a child
    the grader can wait for and kill), a new proc would list the host's processes, and
    /proc/<pid>/root of any process of the same uid leads back to the host's root (not as
    root, the grader itself is such a process). Python and numpy run without one.
    """

    def __init__(self, steps: list[_Step], mountpoint: Path, cwd: Path, as_root: bool) -> None:
        self.libc = _libc()
        self.pivot_root = _SYS_PIVOT_ROOT[platform.machine()]
        self.root = os.fsencode(mountpoint)
        self.cwd = os.fsencode(cwd)
        self.as_root = as_root
        uid, gid = os.getuid(), os.getgid()
        self.maps = (
            (b"/proc/self/setgroups", b"deny"),
            (b"/proc/self/uid_map", f"{uid} {uid} 1\n".encode()),
            (b"/proc/self/gid_map", f"{gid} {gid} 1\n".encode()),
        )
        #: (kind, path, source, is a folder, flags to keep): kind is "bind" (read-only),
        #: "device" (a node, writable), "symlink" (source: its target) or "tmpfs".
        self.plan: list[tuple[str, bytes, bytes, bool, int]] = []
        folders: list[str] = []  # bound read-only: what lies below them is there already
        for step in steps:
            path = os.fsencode(step.path)
            if step.kind == "symlink":
                self.plan.append(("symlink", path, os.fsencode(step.source), False, 0))
            elif step.kind == "tmpfs":
                self.plan.append(("tmpfs", path, b"", True, 0))
            elif step.kind == "dev":
                self.plan.append(("folder", path, b"", True, 0))
                for node in _DEVICES:
                    if os.path.exists(f"/dev/{node}"):
                        device = os.fsencode(f"/dev/{node}")
                        self.plan.append(("device", device, device, False, 0))
            elif not any(step.path == f or step.path.startswith(f + "/") for f in folders):
                # Not recursive: a mount below the source stays out of the view (in a user
                # namespace such a bind fails, and the view is not used: fail closed).
                flags = os.statvfs(step.source).f_flag
                keep = sum(ms for st, ms in _LOCKED_FLAGS if flags & st)
                is_dir = os.path.isdir(step.source)
                self.plan.append(("bind", path, os.fsencode(step.source), is_dir, keep))
                if is_dir:
                    folders.append(step.path)

    def enter(self) -> None:  # pragma: no cover - runs in the worker's child, before exec
        libc, root = self.libc, self.root
        _check(
            libc.unshare(_CLONE_NEWNS | _CLONE_NEWNET | (0 if self.as_root else _CLONE_NEWUSER)),
            "unshare",
        )
        if not self.as_root:
            for name, data in self.maps:
                fd = os.open(name, os.O_WRONLY)
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
        _check(libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "make / private")
        tmpfs, sized = _MS_NOSUID | _MS_NODEV, b"mode=1777,size=%d" % _TMPFS_BYTES
        _check(libc.mount(b"tmpfs", root, b"tmpfs", tmpfs, b"mode=0755,size=1m"), "new root")
        for kind, path, source, is_dir, keep in self.plan:
            target = root + path
            if kind in ("folder", "tmpfs") or is_dir:
                os.makedirs(target, 0o755, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(target), 0o755, exist_ok=True)
            if kind == "symlink":
                os.symlink(source, target)
            elif kind == "tmpfs":
                _check(libc.mount(b"tmpfs", target, b"tmpfs", tmpfs, sized), f"tmpfs {path!r}")
            elif kind in ("bind", "device"):
                if not is_dir:
                    os.close(os.open(target, os.O_WRONLY | os.O_CREAT, 0o644))
                _check(libc.mount(source, target, None, _MS_BIND, None), f"bind {path!r}")
                if kind == "bind":
                    flags = _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | _MS_NODEV | keep
                    _check(libc.mount(None, target, None, flags, None), f"read-only {path!r}")
        os.chdir(root)
        dot = ctypes.c_char_p(b".")
        _check(libc.syscall(ctypes.c_long(self.pivot_root), dot, dot), "pivot_root")
        _check(libc.umount2(b".", _MNT_DETACH), "detach the old root")
        os.chdir(b"/")
        flags = _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | _MS_NODEV
        _check(libc.mount(None, b"/", None, flags, None), "read-only /")
        os.chdir(self.cwd)


#: What the capability check runs in the view: its stage, a private /tmp and /dev/shm, no /proc.
_VIEW_CHECK = (
    "import os\n"
    "assert os.listdir('.') == ['seen'], os.listdir('.')\n"
    "assert not os.path.exists('/proc/self') and os.listdir('/dev/shm') == []\n"
    "open('/tmp/x', 'w').close()\n"
)


@functools.cache
def _namespaces_work(python: str, uid: int) -> bool:
    """Whether the namespace view can be built here and ``python`` runs in it as ``uid``
    (the worker's way: as root, built then dropped to ``uid``; not as root, through a user
    namespace). Tried once, in a throwaway child."""
    if platform.machine() not in _SYS_PIVOT_ROOT:
        return False
    as_root = os.geteuid() == 0
    with tempfile.TemporaryDirectory(prefix="grader-view-check-") as tmp:
        stage, mountpoint = Path(tmp) / "stage", Path(tmp) / "root"
        stage.mkdir()
        mountpoint.mkdir()
        (stage / "seen").write_text("")
        share_with_worker(stage, uid)
        try:
            view = _NamespaceView(_view_steps(python, [stage]), mountpoint, stage, as_root)
        except OSError:
            return False

        def preexec() -> None:  # pragma: no cover - runs in the child
            view.enter()
            if as_root:
                _drop_privileges(uid)

        return _succeeds_as([python, "-s", "-S", "-c", _VIEW_CHECK], uid, preexec)


def _view_kind(python: str, uid: int) -> str:
    """Which view of the filesystem the worker gets here: "bubblewrap", "namespaces" (the
    same allowlist, without bubblewrap) or "none" (neither works: inside a container, whose
    setup made every file of the grader's root-only)."""
    if _bwrap_works(python, uid):
        return "bubblewrap"
    if _namespaces_work(python, uid):
        return "namespaces"
    return "none"


def memory_cgroup(uid: int, limit_mb: int) -> Path | None:
    """A new, empty memory cgroup (v2, or v1's memory controller) for one start of the worker
    of ``uid``, under the grader's own group.

    RLIMIT_AS bounds one process; the cgroup bounds the worker, everything it forks and the
    tmpfs pages it writes, together. Every start gets a group of its own, named after the uid
    and a random suffix and never used again, so whatever an earlier worker left charged
    (files in a shared /dev/shm, say) cannot spend the next one's memory. ``remove_cgroup``
    deletes it once the worker is gone; groups of earlier workers of this uid still standing
    (a crashed grader's, or one a process still held) are deleted here when empty. None
    where cgroups cannot be written (not root, or a container that mounts them read-only):
    rlimits are then all there is.
    """
    if os.geteuid() != 0:
        return None
    limit = str(limit_mb * 1024 * 1024)
    group: Path | None = None
    try:
        if (_CGROUP_ROOT / "cgroup.controllers").is_file():  # v2
            parent = _CGROUP_ROOT / "minitorch-grader"
            parent.mkdir(exist_ok=True)
            (_CGROUP_ROOT / "cgroup.subtree_control").write_text("+memory")
            (parent / "cgroup.subtree_control").write_text("+memory")
            limits = [("memory.max", limit), ("memory.swap.max", "0")]
        elif (_CGROUP_ROOT / "memory").is_dir():  # v1
            parent = _CGROUP_ROOT / "memory" / "minitorch-grader"
            parent.mkdir(parents=True, exist_ok=True)
            limits = [("memory.limit_in_bytes", limit)]
        else:
            return None
        for stale in [parent / str(uid), *parent.glob(f"{uid}-*")]:
            remove_cgroup(stale, wait=False)
        while group is None:
            candidate = parent / f"{uid}-{secrets.token_hex(6)}"
            with contextlib.suppress(FileExistsError):
                candidate.mkdir()
                group = candidate
        for name, value in limits:
            if name == "memory.limit_in_bytes" or (group / name).exists():
                (group / name).write_text(value)
        (group / "cgroup.procs").read_text()
    except OSError:
        remove_cgroup(group, wait=False)
        return None
    return group


def remove_cgroup(group: Path | None, wait: bool = True) -> None:
    """Delete a worker's memory cgroup once its processes are gone.

    A group the kernel still counts a process in (EBUSY: one just killed, or one that got
    away) stays where it is, never used again; the next start of the same uid deletes it
    once it is empty.
    """
    if group is None:
        return
    for attempt in range(20 if wait else 1):
        if attempt:
            time.sleep(0.01)
        try:
            group.rmdir()
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                return


@functools.cache
def _memory_cgroups_work(uid: int) -> bool:
    """Whether each worker start can get a memory cgroup here (one made and deleted)."""
    group = memory_cgroup(uid, 64)
    remove_cgroup(group)
    return group is not None


def _probe_uid(config: SandboxConfig) -> int:
    """The uid that capability checks run as: outside the leased range, so no sweep hits them."""
    return config.uid + UID_SLOTS


def defences(config: SandboxConfig) -> dict[str, bool | str]:
    """Which protections the worker gets on this machine (reported in results.json)."""
    if config.mode == "inprocess":
        return {"separate_process": False}
    root = os.geteuid() == 0
    python = _worker_python(_probe_uid(config))
    view = _view_kind(python, _probe_uid(config))
    return {
        "separate_process": True,
        "rlimits": True,
        "own_session": True,
        "unprivileged_uid": root,
        "kill_leftover_processes": root,
        # An allowlist view of the filesystem: the system, the stage, the worker's own files.
        "private_filesystem": view != "none",
        "view": view,  # who built it: "bubblewrap", "namespaces" or "none"
        # Nothing of the course is in the view (without one: the files' modes must do).
        "hidden_course_files": view != "none",
        "no_network": view != "none" or _can_unshare_net(),
        "memory_cgroup": _memory_cgroups_work(_probe_uid(config)),
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


#: Where a worker without a view of its own (inside a container) can leave files: shared with
#: the grader itself, and with the grades after it.
_SHARED_TMP = ("/tmp", "/var/tmp", "/dev/shm")


def remove_files_of(uid: int, places: tuple[str, ...] = _SHARED_TMP) -> int:
    """Delete what ``uid`` made at the top of ``places`` (files, links, whole folders);
    returns how many entries went.

    A worker without a view leaves its files in the shared /tmp, /var/tmp and /dev/shm,
    where they outlive it (a view's are private and die with it): one that fills /tmp would
    leave the grader no room for the next worker's files. Links are removed, never followed.
    """
    removed = 0
    for place in places:
        try:
            entries = list(os.scandir(place))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
                removed += 1
            except OSError:
                continue
    return removed


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
        self.start_error = ""  # why the last start failed, for the crash message
        self.stderr: _OutputTail | None = None
        self.reader = protocol.FrameReader()
        self.spent = 0.0  # CPU seconds of the workers this connection has already stopped
        self._live_cpu, self._measured_at = 0.0, float("-inf")  # see cpu_seconds
        self.as_root = os.geteuid() == 0
        self.lease = UidLease(config.uid) if self.as_root else None
        self.uid = self.lease.uid if self.lease else os.getuid()
        self.python = _worker_python(_probe_uid(config))
        self.view = _view_kind(self.python, _probe_uid(config))
        self.netns = self.view == "none" and _can_unshare_net()
        self.libc = _libc()  # looked up here: the child must not load libraries
        #: Without bubblewrap: the empty folder each start's view is built on, and that view.
        self.mountpoint = (
            Path(tempfile.mkdtemp(prefix="grader-view-")) if self.view == "namespaces" else None
        )
        self.namespace_view: _NamespaceView | None = None
        self.cgroup: Path | None = None  # a new, empty one for every start of the worker
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
        binds = [root, self.runtime, *self.site_targets]
        if self.view == "bubblewrap":
            cmd = [*_bwrap_args(self.python, binds), "--chdir", str(root), *cmd]
        elif self.view == "namespaces":
            assert self.mountpoint is not None
            steps = _view_steps(self.python, binds)
            self.namespace_view = _NamespaceView(steps, self.mountpoint, root, self.as_root)
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
        for attempt in range(_START_ATTEMPTS):
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
                if attempt + 1 == _START_ATTEMPTS:
                    remove_cgroup(self.cgroup)
                    self.cgroup = None
                    self.start_error = f"the grading machine could not start it: {exc}"
                    raise _Died(self.start_error) from None
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


# --------------------------------------------------------------------------- the client
@dataclass(frozen=True)
class Problem:
    """Something that stopped student code from running, for the report's first lines.

    ``kind`` is the submission-level status it leads to (``import-error``, ``timeout``,
    ``crashed``); ``key`` names the cause (a file, a function); ``message`` says what happened.
    ``hidden``: noticed only while tests shown after the due date ran, so the report's
    visible lines must not tell it (its own test's output does).
    """

    kind: str
    key: str
    message: str
    hidden: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "message": self.message, "hidden": self.hidden}


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
        self._conn: _InProcess | _Subprocess = (
            _InProcess(config) if config.mode == "inprocess" else _Subprocess(config)
        )
        # The wall clock of the budget starts once the connection is set up: what the host's
        # one-off checks (bubblewrap, namespaces, an interpreter for the worker uid) cost on
        # a loaded machine is not the submission's time.
        self.started = time.monotonic()
        self._conn.on_note = self._on_note
        self._ids = 0
        self._importing: list[str] = []
        self._blocked: dict[str, str] = {}
        self._hung: dict[tuple[str, str], str] = {}
        #: The test now running (set by the plugin). A call that hung fails at once when the
        #: same test calls it again (hypothesis would re-run it while shrinking), but another
        #: test still gets to run it: one hang must not cost every test that shares a label.
        self.scope = ""
        #: Whether the test now running is shown only after the due date (set by the
        #: plugin): what its calls run into stays in that test's own output.
        self.hidden_scope = False
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
        # Notes come from student-controlled memory: a module name is short, and imports
        # nest a few levels deep, so a flood of "enter" notes keeps only the latest few.
        if event == "enter":
            self._importing.append(name[:100])
            del self._importing[:-_MAX_IMPORT_DEPTH]
        elif event == "exit" and self._importing:
            self._importing.pop()

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def defences(self) -> dict[str, bool | str]:
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
        if isinstance(exc, _Oversized):
            return f"{rel} could not be checked: the process running it sent too much data"
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
        """Why ``minitorch/<name>.py`` does not import in the worker, or None when it does.

        A worker that dies or hangs at any point of the check (its imports, a restart, the
        answer itself) makes that the answer: the file is not usable as it is.
        """
        try:
            self._ensure_worker()
            if name in self._blocked:
                return self._blocked[name]
            reply = self._conn.request(
                Call(self._next_id(), name, [], "import"), self.config.limits.import_timeout
            )
        except WorkerCrashed as exc:
            return str(exc)
        except (_Deadline, _Died, _Oversized) as exc:
            message = self._import_fault(name, exc)  # before the restart: how it ended
            self._restart_after_fault()
            return message
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
        if reply.ok:
            # What the worker says is student-controlled: checked here, on the trusted side.
            try:
                protocol.check_plain(reply.value, f"the value returned for {what}")
            except BadValue as exc:
                raise BadValue(exc.message, label=label) from None
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
        known = self.problems.get(f"{kind}:{key}")
        if known is None or (known.hidden and not self.hidden_scope):
            message = protocol.clip(message, 2000)
            self.problems[f"{kind}:{key}"] = Problem(kind, key, message, self.hidden_scope)

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
