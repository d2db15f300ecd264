"""Shared set-up for the tests that need a real Docker engine (test_docker, test_batch).

In CI (``CI=true``) a missing engine or base image is a failure, not a skip: these tests are
the only proof that containers work. Locally, the engine is started with
docker/start-dockerd.sh when we are root, and the tests skip when that is impossible.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from grader.course.assignment import repo_root
from grader.platforms.images import OFFLINE_BASE_IMAGE

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(message: str):
    if IN_CI:
        pytest.fail(f"Docker is required in CI: {message}", pytrace=False)
    pytest.skip(message)


def docker_client():
    """A client to a running engine (started here if needed and possible)."""
    script = repo_root() / "docker" / "start-dockerd.sh"
    if os.geteuid() == 0 and script.exists():
        proc = subprocess.run(["bash", str(script)], capture_output=True, text=True)
        if proc.returncode != 0:
            _unavailable(f"start-dockerd.sh failed: {proc.stderr.strip()[-800:]}")
    try:
        import docker

        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as exc:
        _unavailable(f"no Docker engine: {exc}")
    return client


def base_image(client) -> str:
    """The base for grading images: $GRADER_BASE_IMAGE, built offline here if it is missing."""
    import docker.errors

    tag = os.environ.get("GRADER_BASE_IMAGE") or OFFLINE_BASE_IMAGE
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    if tag != OFFLINE_BASE_IMAGE:
        _unavailable(f"base image {tag} is missing (no registry here)")
    script = repo_root() / "docker" / "build-base-image.sh"
    proc = subprocess.run(["bash", str(script), tag], capture_output=True, text=True)
    if proc.returncode != 0:
        _unavailable(f"building the base image failed: {proc.stderr.strip()[-1500:]}")
    return tag


STANDIN_RUN_AUTOGRADER = r'''#!/usr/bin/env python3
"""Stand-in grader: behaves as /autograder/submission/behaviour.txt says."""
import json, pathlib, sys, time

sub = pathlib.Path("/autograder/submission")
what = (sub / "behaviour.txt").read_text().split() if (sub / "behaviour.txt").exists() else []
what = what or ["score", "50"]
out = pathlib.Path("/autograder/results/results.json")
if what[0] == "hang":
    time.sleep(3600)
if what[0] == "oom":
    blocks = []
    while True:
        blocks.append(b"x" * (32 << 20))
if what[0] == "crash":
    sys.exit(3)
if what[0] == "garbage":
    out.write_text("{not json")
    sys.exit(0)
if what[0] == "sleep":
    time.sleep(float(what[1]))
    what = ["score", what[2] if len(what) > 2 else "50"]
score = float(what[1])
files = sorted(p.relative_to(sub).as_posix() for p in sub.rglob("*") if p.is_file())
out.write_text(json.dumps({
    "score": score, "execution_time": 0.1, "output": "stand-in", "visibility": "visible",
    "stdout_visibility": "hidden",
    "extra_data": {"max_score": 100.0, "files": files, "tasks": [
        {"id": "1.1", "title": "t", "score": score, "max_score": 100.0, "passed": 1, "total": 1}]},
    "tests": [],
}))
'''


def standin_image(client, base: str) -> str:
    """A tiny image whose run_autograder obeys behaviour.txt (hang, oom, crash, score N).

    It tests the container plumbing (limits, timeouts, copying, resume) in a second per
    submission, where the real grader would take far longer.
    """
    import docker.errors

    dockerfile = (
        f"FROM {base}\n"
        "COPY run_autograder /autograder/run_autograder\n"
        "RUN chmod 755 /autograder/run_autograder && mkdir -p /autograder/submission "
        "/autograder/results\n"
        'CMD ["/autograder/run_autograder"]\n'
    )
    base_id = client.images.get(base).id
    digest = hashlib.sha256(f"{base_id}\n{dockerfile}\n{STANDIN_RUN_AUTOGRADER}".encode())
    tag = f"minitorch-grader/standin:{digest.hexdigest()[:12]}"
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in (("Dockerfile", dockerfile), ("run_autograder", STANDIN_RUN_AUTOGRADER)):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    client.images.build(fileobj=buf, custom_context=True, tag=tag, rm=True, pull=False)
    return tag


def make_submission(folder: Path, behaviour: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "behaviour.txt").write_text(behaviour + "\n")
    (folder / "minitorch").mkdir(exist_ok=True)
    (folder / "minitorch" / "autodiff.py").write_text("# student code\n")
    return folder
