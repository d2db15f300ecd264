"""The real grader in a real container, built from the very zip uploaded to Gradescope.

Must show: the bundle runs unchanged in the local container and scores the reference, the
skeleton and the buggy examples exactly as ``grader grade --mode sandbox`` does on the host;
the worker cannot read the course files; a grader that breaks, hangs or runs out of memory
still yields a valid report. In CI (CI=true) a missing engine fails these tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from grader.course.assignment import Assignment, load_assignment, repo_root
from grader.platforms.containers import grade_in_container
from grader.platforms.images import ensure_image

pytestmark = [pytest.mark.docker, pytest.mark.slow]

MAX_EXAMPLES = 2  # buggy examples graded both ways (each costs two full grading runs)


@pytest.fixture(scope="module")
def engine():
    from docker_env import base_image, docker_client

    client = docker_client()
    return client, base_image(client)


@pytest.fixture(scope="module")
def module1() -> Assignment:
    return load_assignment("module1")


@pytest.fixture(scope="module")
def image(engine, module1) -> str:
    client, base = engine
    return ensure_image(module1, base=base, client=client)


def _submissions(assignment: Assignment, dest: Path) -> dict[str, Path]:
    """reference, skeleton (from the hand-out generator) and a few buggy examples."""
    from grader.course.handout import generate
    from grader.grading.submission import copy_reference_submission

    subs = {"reference": copy_reference_submission(assignment, dest / "reference")}
    subs["skeleton"] = generate(assignment, dest / "skeleton")
    examples_file = repo_root() / "examples" / "submissions.toml"
    if examples_file.exists():
        from grader.evidence.demo import load_examples, materialize

        mutations = [
            e
            for e in load_examples(examples_file)
            if e.assignment == assignment.name and e.kind == "mutation"
        ]
        for example in mutations[:MAX_EXAMPLES]:
            subs[example.name] = materialize(example, assignment, dest / example.name)
    return subs


def _task_scores(results: dict) -> dict[str, float]:
    return {t["id"]: t["score"] for t in results["extra_data"]["tasks"]}


def _host_grades(subs: dict[str, Path], dest: Path) -> dict[str, Path]:
    """``grader grade --mode sandbox`` on the host for each submission, as subprocesses."""
    outs = {}
    for name, sub in subs.items():
        outs[name] = dest / f"{name}.host.json"
        proc = subprocess.run(
            [sys.executable, "-m", "grader", "grade", str(sub), "--assignment", "module1",
             "--mode", "sandbox", "--out", str(outs[name])],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return outs


@pytest.mark.evidence
def test_container_scores_equal_sandbox_scores(engine, module1, image, tmp_path: Path) -> None:
    client, _ = engine
    subs = _submissions(module1, tmp_path)
    assert {"reference", "skeleton"} <= set(subs)
    # Host and container runs overlap (2 cores): each container has its own worker uid, so
    # the two sandboxes cannot touch each other's processes.
    with ThreadPoolExecutor(max_workers=1) as pool:
        host_future = pool.submit(_host_grades, subs, tmp_path)
        boxes = {
            name: grade_in_container(
                sub, module1, tmp_path / f"{name}.json", image=image, client=client
            )
            for name, sub in subs.items()
        }
        host_files = host_future.result()
    for name, box in boxes.items():
        host = json.loads(host_files[name].read_text())
        assert box["extra_data"]["container"]["status"] == "ok", (name, box["output"])
        assert box["score"] == host["score"], (name, host["output"], box["output"])
        assert _task_scores(box) == _task_scores(host), name
        assert [t["status"] for t in box["tests"]] == [t["status"] for t in host["tests"]], name
        written = json.loads((tmp_path / f"{name}.json").read_text())
        assert written["score"] == box["score"]
    assert boxes["reference"]["score"] == module1.max_score
    assert boxes["skeleton"]["score"] < module1.max_score


def test_grade_command_docker_mode(engine, module1, image, tmp_path: Path) -> None:
    """``grader grade --mode docker`` as a TA types it (reuses the cached image)."""
    del image  # built (and cached) by the fixture; the command finds it by content
    from grader.grading.submission import copy_reference_submission

    _, base = engine
    sub = copy_reference_submission(module1, tmp_path / "sub")
    out = tmp_path / "results.json"
    env = {**os.environ, "GRADER_BASE_IMAGE": base}
    proc = subprocess.run(
        [sys.executable, "-m", "grader", "grade", str(sub), "--assignment", "module1",
         "--mode", "docker", "--out", str(out)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    assert doc["score"] == module1.max_score
    assert doc["extra_data"]["container"]["image"].startswith("minitorch-grader/module1:")


def test_worker_uid_cannot_read_course_files(engine, image) -> None:
    """setup.sh made /autograder/source root-only: the worker's uid reads nothing there."""
    from grader.isolation import WORKER_UID

    client, _ = engine
    script = (
        "cat /autograder/source/tests/support.py >/dev/null 2>&1 && echo LEAK; "
        "ls /autograder/source >/dev/null 2>&1 && echo LEAK; "
        "/autograder/venv/bin/python -c 'import grader' && echo venv-ok"
    )
    out = client.containers.run(
        image, ["bash", "-c", script], user=str(WORKER_UID), network_mode="none", remove=True
    ).decode()
    assert "LEAK" not in out
    assert "venv-ok" in out


def test_run_autograder_writes_a_report_when_the_grader_breaks(engine, image) -> None:
    """A result is never lost: with the grader gone, run_autograder writes a zero report."""
    from grader.grading.results import validate_results

    client, _ = engine
    script = (
        "mkdir -p /autograder/submission && rm /autograder/venv/bin/grader && "
        "/autograder/run_autograder >/dev/null 2>&1; cat /autograder/results/results.json; echo"
    )
    out = client.containers.run(image, ["bash", "-c", script], network_mode="none", remove=True)
    doc = json.loads(out)
    validate_results(doc)
    assert doc["score"] == 0
    assert "please tell the course staff" in doc["output"]
    assert doc["extra_data"]["autograder_fallback"]["grader_exit_status"] == 127


def test_wall_clock_limit_gives_a_report(engine, module1, image, tmp_path: Path) -> None:
    from grader.grading.submission import copy_reference_submission

    client, _ = engine
    sub = copy_reference_submission(module1, tmp_path / "sub")
    doc = grade_in_container(sub, module1, None, image=image, client=client, timeout=2)
    assert doc["score"] == 0
    assert doc["extra_data"]["container"]["status"] == "timeout"
    assert "timed out after 2 s" in doc["output"]
    assert client.containers.list(all=True, filters={"ancestor": image}) == []  # removed


def test_container_memory_limit_gives_a_report(engine, module1, image, tmp_path: Path) -> None:
    from grader.grading.submission import copy_reference_submission

    client, _ = engine
    sub = copy_reference_submission(module1, tmp_path / "sub")
    doc = grade_in_container(sub, module1, None, image=image, client=client, memory_mb=40)
    assert doc["score"] == 0
    assert doc["extra_data"]["container"]["status"] == "oom", doc["output"]
    assert "ran out of memory (limit 40 MiB)" in doc["output"]
