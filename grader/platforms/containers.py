"""Grade one submission in a local container built from the Gradescope bundle.

The image is the bundle's own ``setup.sh`` run on a base image (``grader image``), so a
container grades exactly as Gradescope does. One container per submission, created with no
network, memory/CPU/pids limits, a read-only root (writable: a tmpfs /tmp and two anonymous
volumes for the submission and the results), no new privileges, and a wall-clock limit after
which it is killed.

Only bytes cross the boundary: the submission goes in as a tar built here, results.json comes
out with ``get_archive`` and is parsed as JSON (size-capped) and validated against the schema.
Nothing from a container is unpickled, imported or executed. Whatever a submission does
(hang, exhaust memory, crash the grader), ``grade_in_container`` returns a valid report;
it raises only ``DockerError`` for faults of the machine (engine down, image missing).
"""

from __future__ import annotations

import io
import json
import os
import stat
import tarfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from grader.course.assignment import Assignment
from grader.errors import DockerError, SubmissionError
from grader.files import write_atomic
from grader.grading.submission import refuse_crowded_zip
from grader.platforms.images import LABEL, add_tar_bytes, docker_client, ensure_image

__all__ = ["ContainerLimits", "grade_in_container", "submission_tar"]

_MAX_RESULTS_BYTES = 8 * 1024 * 1024
_MAX_SUBMISSION_BYTES = 64 * 1024 * 1024
_MAX_SUBMISSION_FILES = 5000
_LOG_TAIL = 4000


@dataclass(frozen=True)
class ContainerLimits:
    """Outer limits of one grading container (the in-container sandbox has its own)."""

    memory_mb: int = 2048
    cpus: float = 1.0
    pids: int = 256
    timeout: float = 420.0
    tmpfs_mb: int = 512

    @classmethod
    def for_assignment(
        cls, assignment: Assignment, timeout: float | None = None
    ) -> ContainerLimits:
        """The worker gets ``memory_mb``; pytest and hypothesis on the trusted side need more."""
        lim = assignment.limits
        return cls(
            memory_mb=lim.memory_mb + 1024,
            pids=max(256, lim.processes * 2 + 64),
            timeout=timeout if timeout is not None else lim.budget + 120.0,
        )


# --------------------------------------------------------------------------- submission tar


def _safe_name(name: str) -> str | None:
    """A relative POSIX path without '..', or None for names that must not be extracted."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or any(part in ("..", "") for part in path.parts) or not path.parts:
        return None
    if path.parts[0] == "__MACOSX":
        return None
    return path.as_posix()


def submission_tar(submission: Path) -> bytes:
    """The submission (a folder or a zip) as an in-memory tar of regular files.

    Symlinks, devices and paths escaping the folder are dropped: inside the container they
    could point at the grader's own files. Size and file count are capped.
    """
    submission = Path(submission)
    buf = io.BytesIO()
    total = 0
    count = 0

    def account(size: int, name: str) -> None:
        nonlocal total, count
        total += size
        count += 1
        if total > _MAX_SUBMISSION_BYTES:
            raise SubmissionError(
                f"{submission}: larger than {_MAX_SUBMISSION_BYTES >> 20} MiB ({name} and more)"
            )
        if count > _MAX_SUBMISSION_FILES:
            raise SubmissionError(f"{submission}: more than {_MAX_SUBMISSION_FILES} files")

    with tarfile.open(fileobj=buf, mode="w") as tar:
        if submission.is_dir():
            for dirpath, dirnames, filenames in os.walk(submission):
                dirnames[:] = sorted(d for d in dirnames if not (Path(dirpath) / d).is_symlink())
                for name in sorted(filenames):
                    path = Path(dirpath) / name
                    st = path.lstat()
                    if not stat.S_ISREG(st.st_mode):
                        continue
                    rel = path.relative_to(submission).as_posix()
                    account(st.st_size, rel)
                    add_tar_bytes(tar, rel, path.read_bytes(), 0o644)
        elif submission.is_file() and zipfile.is_zipfile(submission):
            refuse_crowded_zip(submission)
            try:
                with zipfile.ZipFile(submission) as zf:
                    for info in zf.infolist():
                        rel = _safe_name(info.filename)
                        mode = (info.external_attr >> 16) & 0o170000
                        if info.is_dir() or rel is None or mode == stat.S_IFLNK:
                            continue
                        account(info.file_size, rel)
                        with zf.open(info) as fh:
                            data = fh.read(_MAX_SUBMISSION_BYTES + 1)
                        account(max(0, len(data) - info.file_size), rel)
                        add_tar_bytes(tar, rel, data, 0o644)
            except (zipfile.BadZipFile, OSError, RuntimeError, EOFError) as exc:
                raise SubmissionError(f"{submission}: unreadable zip ({exc})") from exc
        elif submission.exists():
            raise SubmissionError(f"{submission}: not a folder or a zip file")
        else:
            raise SubmissionError(f"{submission}: no such file or folder")
    return buf.getvalue()


# --------------------------------------------------------------------------- one run


@dataclass
class ContainerRun:
    """What happened to one container: the raw facts before they become a report."""

    status: str  # ok | timeout | oom | no-results | invalid-results | bad-submission
    seconds: float = 0.0
    exit_code: int | None = None
    oom_killed: bool = False
    results: dict[str, Any] | None = None
    problem: str = ""
    logs: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _worker_uid() -> int:
    """A worker uid unlikely to be in use by anything else on this host (100000-999999)."""
    import secrets

    return 100_000 + secrets.randbelow(900_000)


def _read_results(container) -> tuple[dict[str, Any] | None, str]:
    """results.json from the container as a dict, or (None, why not). JSON only, size-capped."""
    import docker.errors

    try:
        stream, info = container.get_archive("/autograder/results/results.json")
    except docker.errors.NotFound:
        return None, "wrote no results.json"
    except docker.errors.APIError as exc:
        return None, f"its results could not be copied out ({exc})"
    if int(info.get("size", 0)) > _MAX_RESULTS_BYTES:
        return None, f"wrote a results.json larger than {_MAX_RESULTS_BYTES >> 20} MiB"
    raw = bytearray()
    for chunk in stream:
        raw.extend(chunk)
        if len(raw) > _MAX_RESULTS_BYTES + 65536:
            return None, f"wrote a results.json larger than {_MAX_RESULTS_BYTES >> 20} MiB"
    try:
        with tarfile.open(fileobj=io.BytesIO(bytes(raw)), mode="r:") as tar:
            member = next((m for m in tar.getmembers() if m.isreg()), None)
            if member is None or member.size > _MAX_RESULTS_BYTES:
                return None, "wrote a results.json that is not a regular file"
            fh = tar.extractfile(member)
            data = fh.read() if fh is not None else b""
    except tarfile.TarError as exc:
        return None, f"its results archive is unreadable ({exc})"
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return None, f"wrote a results.json that is not valid JSON ({exc})"
    if not isinstance(doc, dict):
        return None, "wrote a results.json that is not a JSON object"
    return doc, ""


def run_container(
    client,
    image: str,
    submission: Path,
    limits: ContainerLimits,
    *,
    name_hint: str = "",
    labels: dict[str, str] | None = None,
    environment: dict[str, str] | None = None,
) -> ContainerRun:
    """Create, feed, start, wait for and remove one grading container."""
    import docker.errors
    import requests.exceptions
    from docker.types import Mount

    try:
        payload = submission_tar(submission)
    except SubmissionError as exc:
        return ContainerRun(status="bad-submission", problem=str(exc))
    container = None
    start = time.monotonic()
    try:
        try:
            container = client.containers.create(
                image,
                command=["/autograder/run_autograder"],
                network_mode="none",
                mem_limit=f"{limits.memory_mb}m",
                memswap_limit=f"{limits.memory_mb}m",
                nano_cpus=int(limits.cpus * 1e9),
                pids_limit=limits.pids,
                read_only=True,
                tmpfs={"/tmp": f"rw,exec,nosuid,nodev,size={limits.tmpfs_mb}m"},
                mounts=[
                    Mount("/autograder/submission", None, type="volume"),
                    Mount("/autograder/results", None, type="volume"),
                ],
                security_opt=["no-new-privileges"],
                cap_drop=["NET_RAW", "MKNOD", "AUDIT_WRITE", "SETFCAP", "NET_BIND_SERVICE"],
                init=True,
                working_dir="/autograder",
                # Without a user namespace a container's uids are the host's: give each
                # container its own worker uid, so neither a host sandbox's "kill every
                # process of the worker uid" nor a neighbour's RLIMIT_NPROC count reaches it.
                environment={**(environment or {}), "GRADER_WORKER_UID": str(_worker_uid())},
                labels={
                    LABEL: "grading",
                    f"{LABEL}.submission": name_hint[:200],
                    **{f"{LABEL}.{k}": v for k, v in (labels or {}).items()},
                },
                detach=True,
            )
            if not container.put_archive("/autograder/submission", payload):
                raise DockerError("the engine refused to copy the submission in")
            container.start()
        except docker.errors.ImageNotFound as exc:
            raise DockerError(f"image {image} not found; build it with 'grader image'") from exc
        except docker.errors.APIError as exc:
            raise DockerError(f"cannot start a grading container from {image}: {exc}") from exc
        timed_out = False
        exit_code: int | None = None
        try:
            reply = container.wait(timeout=limits.timeout)
            exit_code = int(reply.get("StatusCode", -1))
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
            if time.monotonic() - start < limits.timeout * 0.9:  # not our deadline: the engine
                raise DockerError(f"lost the Docker engine while grading: {exc}") from exc
            timed_out = True
            try:
                container.kill()
            except docker.errors.APIError:
                pass
        seconds = time.monotonic() - start
        try:
            container.reload()
            state = container.attrs.get("State", {})
        except docker.errors.APIError:
            state = {}
        oom = bool(state.get("OOMKilled"))
        if exit_code is None and not timed_out:
            exit_code = state.get("ExitCode")
        try:
            logs = container.logs(stdout=True, stderr=True, tail=200).decode("utf-8", "replace")
        except docker.errors.APIError:
            logs = ""
        logs = logs[-_LOG_TAIL:]
        if timed_out:
            return ContainerRun("timeout", seconds, exit_code, oom, logs=logs)
        results, problem = _read_results(container)
        status = "ok" if results is not None else "no-results"
        return ContainerRun(status, seconds, exit_code, oom, results, problem, logs)
    finally:
        if container is not None:
            try:
                container.remove(v=True, force=True)
            except docker.errors.APIError:
                pass


# --------------------------------------------------------------------------- reports


def _error_report(assignment: Assignment, message: str) -> dict[str, Any]:
    from grader.grading.results import error_results

    return error_results(assignment, message)


def _validate(doc: dict[str, Any]) -> None:
    from grader.grading.results import validate_results

    validate_results(doc)


def report_for(
    run: ContainerRun, assignment: Assignment, limits: ContainerLimits
) -> dict[str, Any]:
    """Turn a ``ContainerRun`` into a valid results.json dict (the grader's own when usable)."""
    status, doc = run.status, None
    fallback = None
    if run.results is not None:
        try:
            _validate(run.results)
        except ValueError as exc:
            status, run.problem = "invalid-results", f"wrote invalid results ({exc})"
        else:
            doc = run.results
            extra = doc.get("extra_data") if isinstance(doc.get("extra_data"), dict) else {}
            fallback = extra.get("autograder_fallback")
    if status == "timeout":
        message = (
            f"Grading timed out after {limits.timeout:g} s and was stopped, so no score could "
            "be given. Check for code that never finishes (an endless loop or recursion)."
        )
    elif run.oom_killed and (doc is None or fallback):
        message = (
            f"Grading ran out of memory (limit {limits.memory_mb} MiB) and was stopped. "
            "Check for code that builds huge lists or graphs without end."
        )
        status = "oom"
    elif status == "bad-submission":
        message = f"The submission could not be read: {run.problem}"
    elif doc is None:
        message = (
            f"The grading container finished (exit code {run.exit_code}) but {run.problem}. "
            "This is a fault of the grader, not of your code; please tell the course staff."
        )
    else:
        message = ""
        if fallback:
            status = "grader-failed"
    if message:
        doc = _error_report(assignment, message)
    assert doc is not None
    extra = doc.get("extra_data") if isinstance(doc.get("extra_data"), dict) else {}
    extra["container"] = {
        "status": status,
        "seconds": round(run.seconds, 3),
        "exit_code": run.exit_code,
        "oom_killed": run.oom_killed,
        "timeout": limits.timeout,
        "memory_mb": limits.memory_mb,
        "defences": ["network none", "read-only root", "memory/cpu/pids limits", "no new privs"],
        **({"problem": run.problem} if run.problem else {}),
        **run.extra,
    }
    doc["extra_data"] = extra
    _validate(doc)
    return doc


def write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    """Write JSON to ``path`` via a temporary file and ``os.replace``: never half-written."""
    write_atomic(path, json.dumps(doc, indent=2) + "\n")


def grade_in_container(
    submission: Path,
    assignment: Assignment,
    out: Path | None,
    *,
    image: str | None = None,
    timeout: float | None = None,
    memory_mb: int | None = None,
    client=None,
    logs_dir: Path | None = None,
    labels: dict[str, str] | None = None,
    log_name: str | None = None,
    environment: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Grade ``submission`` in a fresh container; write and return the validated results dict.

    Never raises for a student's fault: a hang, an exhausted memory limit, a grader crash or
    an unreadable submission all come back as a valid zero-score report that says so (with
    ``extra_data.container.status``). ``environment`` adds variables to the container's
    (batch passes a reduced hypothesis budget as ``PYTEST_ADDOPTS``). Raises ``DockerError``
    when the engine or image is unusable, since then no submission can be graded and the TA
    must act.
    """
    client = client or docker_client()
    image = image or ensure_image(assignment, client=client)
    limits = ContainerLimits.for_assignment(assignment, timeout)
    if memory_mb is not None:
        limits = ContainerLimits(memory_mb, limits.cpus, limits.pids, limits.timeout)
    start = time.monotonic()
    run = run_container(
        client,
        image,
        Path(submission),
        limits,
        name_hint=str(submission),
        labels=labels,
        environment=environment,
    )
    run.extra["image"] = image
    # create -> removed: what a submission costs a TA (``seconds`` stops when it exits)
    run.extra["total_seconds"] = round(time.monotonic() - start, 3)
    doc = report_for(run, assignment, limits)
    if logs_dir is not None and run.logs:
        write_atomic(logs_dir / f"{log_name or Path(submission).stem}.log", run.logs)
    if out is not None:
        write_json_atomic(Path(out), doc)
    return doc
