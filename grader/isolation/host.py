"""Facts about the host the worker runs on, and the file modes that let it read its files.

Which interpreter the unprivileged worker can execute, whether a child can get its own
network namespace, the runtime packages' files (bound read-only into the worker's view),
and the modes that share a staged submission with exactly one worker uid.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

CLONE_NEWNET = 0x40000000


# --------------------------------------------------------------------------- host facts
def libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


@functools.cache
def can_unshare_net() -> bool:
    """Whether a child can get its own (empty) network namespace here."""
    if os.geteuid() != 0:
        return False
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        ok = libc().unshare(CLONE_NEWNET) == 0
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def succeeds_as(cmd: list[str], uid: int, preexec: Callable[[], None] | None = None) -> bool:
    """Whether ``cmd`` exits 0 when run as ``uid`` (as the worker will be run); ``preexec``
    replaces the plain drop to ``uid`` in the child when given."""
    if preexec is None and os.geteuid() == 0:
        preexec = lambda: drop_privileges(uid)  # noqa: E731 - runs in the child
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
    return succeeds_as([python, "-s", "-S", "-c", "import json, ast, importlib.util"], uid)


@functools.cache
def worker_python(uid: int) -> str:
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
