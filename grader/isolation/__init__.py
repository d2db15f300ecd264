"""Isolation: the worker that runs student code, and everything that keeps it contained.

The trusted side sees this package's public names only. ``StudentClient`` sends batches of
handle operations (``handles``) to a worker (``transport``: in this process, or a
locked-down subprocess; ``executor`` applies them there) and turns whatever the worker does
into a reply or a fault (``protocol``). The subprocess runs as a leased uid
(``processes``), in an allowlist view of the filesystem (``view``), with the interpreter and
file modes the host allows (``host``); ``defences`` reports which of these were active.
``worker.py``, ``protocol.py``, ``absent.py`` and ``newsyntax.py`` use the standard library
only: they are copied, alone, into the worker's folder.
"""

from grader.isolation.client import Problem, StudentClient
from grader.isolation.config import SandboxConfig, defences
from grader.isolation.host import (
    keep_private,
    open_to_worker,
    readable_by_others,
    share_with_worker,
    worker_python,
)
from grader.isolation.processes import (
    UID_SLOTS,
    WORKER_UID,
    UidLease,
    kill_uid,
    remove_files_of,
    tree_cpu_seconds,
)

__all__ = [
    "UID_SLOTS",
    "WORKER_UID",
    "Problem",
    "SandboxConfig",
    "StudentClient",
    "UidLease",
    "defences",
    "keep_private",
    "kill_uid",
    "open_to_worker",
    "readable_by_others",
    "remove_files_of",
    "share_with_worker",
    "tree_cpu_seconds",
    "worker_python",
]
