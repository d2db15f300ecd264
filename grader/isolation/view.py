"""The worker's view of the filesystem: an allowlist, built by bubblewrap or by namespaces.

The worker sees an allowlist of the filesystem, never the host's with some folders covered:
a folder nobody thought of (a second checkout, a copy of the course under out/ or dist/) is
simply not there. bubblewrap builds the view where it can (``bwrap_args``), the kernel's
namespaces where it cannot (``NamespaceView``), both from one list of steps (``view_steps``).
``view_kind`` says which of the two works here, or ``"none"`` (inside a container).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from grader.isolation.host import (
    CLONE_NEWNET,
    drop_privileges,
    libc,
    share_with_worker,
    succeeds_as,
)

_TMPFS_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class _Step:
    """One entry of the worker's view, at the same path as on the host."""

    kind: str  # "ro-bind" | "symlink" | "dev" | "tmpfs"
    path: str
    source: str = ""  # ro-bind: the host's path; symlink: its target


def view_steps(python: str, binds: list[Path]) -> list[_Step]:
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


def bwrap_args(python: str, binds: list[Path]) -> list[str]:
    """bubblewrap's command line for the view (new pid, ipc, uts, net namespaces too)."""
    args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session"]
    for step in view_steps(python, binds):
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
    return succeeds_as([*bwrap_args(python, []), python, "-s", "-S", "-c", "pass"], uid)


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


class NamespaceView:
    """The view of ``view_steps`` built from the kernel's namespaces (no bubblewrap).

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
        self.libc = libc()
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
            libc.unshare(_CLONE_NEWNS | CLONE_NEWNET | (0 if self.as_root else _CLONE_NEWUSER)),
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
            view = NamespaceView(view_steps(python, [stage]), mountpoint, stage, as_root)
        except OSError:
            return False

        def preexec() -> None:  # pragma: no cover - runs in the child
            view.enter()
            if as_root:
                drop_privileges(uid)

        return succeeds_as([python, "-s", "-S", "-c", _VIEW_CHECK], uid, preexec)


def view_kind(python: str, uid: int) -> str:
    """Which view of the filesystem the worker gets here: "bubblewrap", "namespaces" (the
    same allowlist, without bubblewrap) or "none" (neither works: inside a container, whose
    setup made every file of the grader's root-only)."""
    if _bwrap_works(python, uid):
        return "bubblewrap"
    if _namespaces_work(python, uid):
        return "namespaces"
    return "none"
