"""What a worker is started with (``SandboxConfig``) and which defences it gets here."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from grader.course.assignment import Limits
from grader.isolation.host import can_unshare_net, worker_python
from grader.isolation.processes import UID_SLOTS, WORKER_UID, memory_cgroups_work
from grader.isolation.view import view_kind


@dataclass(frozen=True)
class SandboxConfig:
    root: Path  # the folder holding the student's minitorch/
    mode: str = "sandbox"  # "inprocess" | "sandbox"
    limits: Limits = field(default_factory=Limits)  # from assignment.toml, the one source
    uid: int = WORKER_UID
    call_log: Path | None = None  # JSON lines of every call and its answer (grader audit)
    runtime: tuple[str, ...] = ("numpy", "typing_extensions")  # assignment.toml [runtime]
    python: str = ""  # the Python the course grades with ([runtime] python), for messages


def probe_uid(config: SandboxConfig) -> int:
    """The uid that capability checks run as: outside the leased range, so no sweep hits them."""
    return config.uid + UID_SLOTS


def defences(config: SandboxConfig) -> dict[str, bool | str]:
    """Which protections the worker gets on this machine (reported in results.json)."""
    if config.mode == "inprocess":
        return {"separate_process": False}
    root = os.geteuid() == 0
    python = worker_python(probe_uid(config))
    view = view_kind(python, probe_uid(config))
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
        "no_network": view != "none" or can_unshare_net(),
        "memory_cgroup": memory_cgroups_work(probe_uid(config)),
    }
