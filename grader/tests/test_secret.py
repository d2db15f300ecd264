"""The course secret: regrades repeat exactly, other secrets (and students) draw other examples.

Grading derandomizes hypothesis, so without a secret anyone holding the public tests could
replay the grading examples. These tests grade a submission whose Mul.backward is wrong (so
each failure names the inputs hypothesis drew) in a copy of the course with a secret.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from attacks.replay import course_without_secret

from grader.course.assignment import load_assignment, repo_root
from grader.course.secret import SECRET_FILE, grading_seed
from grader.evidence.mutations import apply_mutations
from grader.grading.runner import grade_command
from grader.grading.submission import copy_reference_submission

ROOT = repo_root()
WRONG_MUL_BACKWARD = {
    "file": "minitorch/scalar_functions.py",
    "find": "        return operators.mul(b, d_output), operators.mul(a, d_output)\n",
    "replace": "        return operators.mul(b, d_output), operators.mul(b, d_output)\n",
}


def _course(dest: Path, secret: str | None) -> Path:
    course_without_secret(dest)
    if secret is not None:
        (dest / "assignments" / "module1" / SECRET_FILE).write_text(secret + "\n")
    return dest


def _grade(course: Path, submission: Path, out: Path) -> dict:
    cmd = grade_command(submission, "module1", out, extra=("--max-examples", "8"))
    env = {**os.environ, "GRADER_ROOT": str(course)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=out.parent)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(out.read_text())


def _failures(course: Path, submission: Path, out: Path) -> list[str]:
    doc = _grade(course, submission, out)
    failed = [t["output"] for t in doc["tests"] if t["status"] == "failed"]
    assert failed, "the wrong Mul.backward was not caught: nothing to compare"
    return failed


@pytest.fixture(scope="module")
def submission(tmp_path_factory: pytest.TempPathFactory) -> Path:
    reference = load_assignment("module1").reference_dir
    return apply_mutations(reference, [WRONG_MUL_BACKWARD], tmp_path_factory.mktemp("sub"))


@pytest.mark.evidence
def test_same_secret_same_examples_other_secret_other_examples(
    submission: Path, tmp_path: Path
) -> None:
    one = _course(tmp_path / "one", "a" * 32)
    same = _course(tmp_path / "same", "a" * 32)
    other = _course(tmp_path / "other", "b" * 32)
    first = _failures(one, submission, tmp_path / "first.json")
    assert _failures(same, submission, tmp_path / "again.json") == first
    assert _failures(other, submission, tmp_path / "other.json") != first
    # Nothing hypothesis keeps lands in the folder grading ran from.
    assert not (tmp_path / ".hypothesis").exists()


def test_the_secret_and_its_seed_never_reach_the_handout(tmp_path: Path) -> None:
    from grader.course.handout import generate

    secret = "c0ffee" * 8
    course = _course(tmp_path / "course", secret)
    assignment = load_assignment("module1", root=course)
    out = generate(assignment, tmp_path / "handout")
    seed = str(grading_seed(secret.encode(), "module1"))
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert secret.encode() not in data and seed.encode() not in data, path
    assert not list(out.rglob(SECRET_FILE))


def test_bundle_builds_keep_one_secret(tmp_path: Path) -> None:
    from grader.course.secret import course_secret, ensure_course_secret

    course = _course(tmp_path / "course", None)
    assignment = load_assignment("module1", root=course)
    assert course_secret(assignment) is None
    previous = os.umask(0)  # owner-only whatever the umask
    try:
        path = ensure_course_secret(assignment)
    finally:
        os.umask(previous)
    first = course_secret(assignment)
    assert first is not None and len(first) >= 32
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    path.chmod(0o644)  # written by hand, or by an older grader
    ensure_course_secret(assignment)  # a second build keeps the course's secret
    assert course_secret(assignment) == first
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def _with_a_changed_line(submission: Path, dest: Path) -> Path:
    """A copy of ``submission`` whose minitorch/module.py (graded, and untouched by the
    Mul.backward edit) has one more comment line."""
    shutil.copytree(submission, dest)
    module = dest / "minitorch" / "module.py"
    module.write_text(module.read_text() + "# one more line\n")
    return dest


def _without_timing(doc: dict) -> dict:
    doc = {k: v for k, v in doc.items() if k != "execution_time"}
    doc["tests"] = [{k: v for k, v in t.items() if k != "execution_time"} for t in doc["tests"]]
    return doc


@pytest.mark.evidence
def test_examples_are_drawn_per_submission(submission: Path, tmp_path: Path) -> None:
    """The seed mixes the course secret with a digest of the submission's graded files: the
    same files graded twice give the same report; one changed line in another graded file
    draws other examples; correct code keeps full marks either way."""
    course = _course(tmp_path / "course", "a" * 32)
    first = _grade(course, submission, tmp_path / "first.json")
    again = _grade(course, submission, tmp_path / "again.json")
    assert _without_timing(again) == _without_timing(first)
    edited = _with_a_changed_line(submission, tmp_path / "edited")
    shown = [t["output"] for t in first["tests"] if t["status"] == "failed"]
    assert shown, "the wrong Mul.backward was not caught: nothing to compare"
    assert _failures(course, edited, tmp_path / "edited.json") != shown
    reference = copy_reference_submission(load_assignment("module1"), tmp_path / "reference")
    twin = _with_a_changed_line(reference, tmp_path / "reference-edited")
    for sub in (reference, twin):
        doc = _grade(course, sub, tmp_path / f"{sub.name}.json")
        assert doc["score"] == doc["extra_data"]["max_score"] == 100, sub.name
