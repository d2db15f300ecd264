"""Admission to a batch's cluster: a Dask worker proves it grades as the client would.

``GraderCheck`` runs ``check_worker`` on every worker as it joins, later ones too: the same
grader version (with the hash of the grading modules), the same course files and course
secret (an HMAC of a fresh nonce, so the secret itself never travels), Docker or a sandbox
whose worker sees an allowlist view, root, and a free worker uid. A worker that passes gets
the batch's Dask resource (``resource_name``); every grade asks for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import platform
import secrets
import socket
from pathlib import Path
from typing import Any

from grader.batch.keys import grader_version
from grader.course.assignment import Assignment, load_assignment
from grader.errors import ConfigError, DockerError

try:  # the optional extra: the module imports without it, the executor says what to install
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError:  # pragma: no cover - exercised by the missing-extra message only
    WorkerPlugin = object  # type: ignore[assignment,misc]

logger = logging.getLogger("distributed.worker.minitorch_grader")


# --------------------------------------------------------------------------- the check


def secret_mac(assignment: Assignment, nonce: str) -> str | None:
    """HMAC of ``nonce`` under the course secret (None without one): proves the secret is the
    same on both sides without sending it, and cannot be replayed for another nonce."""
    from grader.course.secret import course_secret

    secret = course_secret(assignment)
    if secret is None:
        return None
    return hmac.new(secret, f"cluster-check:{nonce}".encode(), hashlib.sha256).hexdigest()


def expectation(
    assignment: Assignment, *, mode: str, image: str | None, max_examples: int | None
) -> dict[str, Any]:
    """What the client requires of a worker (plain data: it travels inside the plugin)."""
    from grader.batch.keys import course_parts

    nonce = secrets.token_hex(16)
    expect = {
        "assignment": assignment.name,
        "grader": grader_version(),
        "course": course_parts(assignment),
        "python": platform.python_version(),
        "mode": mode,
        "image": image,
        "max_examples": max_examples,
        "nonce": nonce,
        "secret_mac": secret_mac(assignment, nonce),
    }
    # The batch's own token: concurrent batches never share (or tear down) each other's.
    expect["token"] = hashlib.sha256(json.dumps(expect, sort_keys=True).encode()).hexdigest()[:20]
    return expect


def _docker_usable() -> str:
    """ "" when a Docker engine answers here, else why not."""
    from grader.platforms.images import docker_client

    try:
        docker_client()
    except DockerError as exc:
        return str(exc)[:200]
    return ""


def check_worker(expect: dict[str, Any]) -> dict[str, Any]:
    """Whether this machine grades as the client would; the verdict is plain data.

    ``{"ok", "reason", "mode" ("sandbox" | "docker"), "host"}``; the first failed check gives
    the reason, written for the person who starts workers.
    """
    from grader.batch.keys import course_parts
    from grader.course.secret import course_secret, secret_path
    from grader.isolation import WORKER_UID, SandboxConfig, UidLease, defences

    verdict: dict[str, Any] = {
        "ok": False,
        "reason": "",
        "mode": None,
        "host": socket.gethostname(),
    }

    def refuse(reason: str) -> dict[str, Any]:
        verdict["reason"] = reason
        return verdict

    mine = grader_version()
    if mine != expect["grader"]:
        return refuse(
            f"grader version {mine} here, {expect['grader']} on the client: install the same "
            "grader (same sources) on every worker"
        )
    name = expect["assignment"]
    try:
        assignment = load_assignment(name)
    except (ConfigError, OSError) as exc:
        return refuse(
            f"assignment {name!r} not found here ({exc}); set GRADER_ROOT to a copy of the "
            "course files"
        )
    try:
        secret = course_secret(assignment)
    except ConfigError as exc:
        return refuse(str(exc))
    theirs = expect["secret_mac"]
    if secret is None or theirs is None:
        if (secret is None) != (theirs is None):
            where = "here but not on the client" if theirs is None else "on the client, not here"
            return refuse(
                f"different course secret: {secret_path(assignment)} exists {where}; copy the "
                "client's course secret to every worker (the grading examples depend on it)"
            )
    elif not hmac.compare_digest(secret_mac(assignment, expect["nonce"]) or "", theirs):
        return refuse(
            f"different course secret in {secret_path(assignment)}: copy the client's course "
            "secret to every worker (the grading examples depend on it)"
        )
    parts = course_parts(assignment)
    for part, folder in (
        ("assignment", assignment.folder),
        ("tests", assignment.tests_dir),
        ("reference", assignment.reference_dir),
    ):
        if parts[part] != expect["course"][part]:
            return refuse(
                f"different course files: {folder} differs from the client's; give every "
                "worker the same course files"
            )

    want = expect["mode"]
    if want in ("auto", "docker"):
        why = _docker_usable()
        if not why:
            verdict.update(ok=True, mode="docker")
            return verdict
        if want == "docker":
            return refuse(f"--mode docker, but no Docker engine answers here: {why}")
    if platform.python_version() != expect["python"]:
        return refuse(
            f"Python {platform.python_version()} here, {expect['python']} on the client: "
            "sandbox results are keyed on the Python version, use the same one"
        )
    if os.geteuid() != 0:
        return refuse(
            "sandbox grading on a cluster needs root: student code must run as a leased "
            f"worker uid (from {WORKER_UID}), never as the Dask worker's own user, which "
            "holds the cluster's connections; run `dask worker` as root, or give it Docker"
        )
    config = SandboxConfig(
        root=Path("/"),
        limits=assignment.limits,
        runtime=assignment.runtime,
    )
    try:
        active = defences(config)
    except (RuntimeError, OSError) as exc:
        return refuse(f"the sandbox cannot start here: {exc}")
    if not active.get("hidden_course_files"):
        return refuse(
            "neither bubblewrap nor the kernel's namespaces can give student code a view of "
            "its own here, so it could read the course files: install bubblewrap "
            "(apt-get install bubblewrap)"
        )
    try:
        UidLease().release()
    except (RuntimeError, OSError) as exc:
        return refuse(f"no worker uid can be leased here: {exc}")
    verdict.update(ok=True, mode="sandbox", defences=active)
    return verdict


def resource_name(token: str) -> str:
    return f"minitorch-grader-{token}"


class GraderCheck(WorkerPlugin):
    """Runs ``check_worker`` on each worker as it joins; a worker that passes gets this
    batch's resource (one unit per thread), one that does not is left without it and logs
    why. Never raises: a refusal must not stop the other workers' checks."""

    def __init__(self, expect: dict[str, Any]) -> None:
        self.expect = expect
        self.verdict: dict[str, Any] = {"ok": False, "reason": "not checked yet"}

    async def setup(self, worker) -> None:
        try:
            verdict = await asyncio.to_thread(check_worker, self.expect)
        except Exception as exc:  # a bug in a check refuses the worker, loudly
            verdict = {"ok": False, "reason": f"the check failed: {exc.__class__.__name__}: {exc}"}
        verdict["worker"] = worker.address
        self.verdict = verdict
        if verdict["ok"]:
            await worker.set_resources(
                **{resource_name(self.expect["token"]): worker.state.nthreads}
            )
            logger.info(
                "minitorch-grader: grading %s here (%s)", self.expect["assignment"], verdict["mode"]
            )
        else:
            logger.error(
                "minitorch-grader: this worker is refused for %s: %s",
                self.expect["assignment"],
                verdict["reason"],
            )

    async def teardown(self, worker) -> None:
        if self.verdict.get("ok"):
            try:
                await worker.set_resources(**{resource_name(self.expect["token"]): 0})
            except Exception:  # the scheduler may be gone already
                pass


def worker_verdict(dask_worker, name: str) -> dict[str, Any]:
    plugin = dask_worker.plugins.get(name)
    if plugin is None:
        return {"ok": False, "reason": "the grader's check did not run here", "worker": ""}
    return dict(plugin.verdict)
