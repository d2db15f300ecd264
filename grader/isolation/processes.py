"""The worker's uids, processes and memory: leases, CPU accounting, cgroups, clean-up.

Every grade runs its worker as a uid of its own (``UidLease``), so "kill every process of
this uid" and "delete every file of this uid" hit that worker and nothing else; every start
of a worker gets a new, empty memory cgroup.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import secrets
import shutil
import signal
import time
from pathlib import Path

#: The first of the uids the worker drops to. Dedicated (not ``nobody``) so that "kill every
#: process of this uid" hits only the worker and what it spawned; one uid per concurrent
#: grading run (``UidLease``), so parallel grades never kill each other's workers.
WORKER_UID = int(os.environ.get("GRADER_WORKER_UID", "64100"))
UID_SLOTS = 64
_LOCK_DIR = Path(os.environ.get("GRADER_UID_LOCK_DIR", "/tmp/.minitorch-grader-uids"))

_CGROUP_ROOT = Path("/sys/fs/cgroup")


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
def memory_cgroups_work(uid: int) -> bool:
    """Whether each worker start can get a memory cgroup here (one made and deleted)."""
    group = memory_cgroup(uid, 64)
    remove_cgroup(group)
    return group is not None


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
