"""docs/authoring.md's worked example, added to a copy of the course without touching grader
code: it is at most 10 lines, and in every mode the reference passes it with full marks while
a ``Mul.backward`` that forgets ``d_output`` fails it."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from grader.course.assignment import Assignment, load_assignment, repo_root
from grader.evidence.demo import load_examples, materialize
from grader.grading.submission import copy_reference_submission

PROJECT = repo_root()  # before any test points GRADER_ROOT at a copy
DOC = PROJECT / "docs" / "authoring.md"
MARK = re.compile(r"<!-- authoring-example: (\S+) -->\n```python\n(.*?)```", re.S)
BUDGET = "10"  # examples per test: enough for this check, and quick


def example() -> tuple[str, str]:
    """The example's path in the course and its text, as the page shows them."""
    found = MARK.search(DOC.read_text(encoding="utf-8"))
    assert found, "docs/authoring.md lost its worked example"
    return found.group(1), found.group(2)


def test_the_worked_example_is_at_most_ten_lines() -> None:
    _, text = example()
    body = text[text.index("@pytest.mark.task") :].strip().splitlines()
    assert len(body) <= 10, body


@pytest.fixture
def course(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Assignment:
    """module1 from a private copy of the course, with the example added as the page says."""
    root = tmp_path / "course"
    skip = shutil.ignore_patterns("__pycache__", "tests")
    for name in ("assignments", "tests", "reference", "docker", "grader"):
        ignore = skip if name == "grader" else shutil.ignore_patterns("__pycache__")
        shutil.copytree(PROJECT / name, root / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):  # the bundle packs the grader from here
        shutil.copy2(PROJECT / name, root / name)
    (root / "build").symlink_to(PROJECT / "build")  # the wheelhouse, already downloaded
    path, text = example()
    (root / path).write_text(text, encoding="utf-8")
    toml = root / "assignments" / "module1" / "assignment.toml"
    listed = re.sub(
        r"^public = \[(.*?)\]",
        lambda m: f'public = [{m.group(1)}, "{Path(path).name}"]',
        toml.read_text(encoding="utf-8"),
        count=1,
        flags=re.M,
    )
    toml.write_text(listed, encoding="utf-8")
    monkeypatch.setenv("GRADER_ROOT", str(root))
    return load_assignment("module1", root=root)


def submissions(course: Assignment, dest: Path) -> dict[str, Path]:
    bug = next(
        e
        for e in load_examples(PROJECT / "examples" / "submissions.toml")
        if e.assignment == "module1" and e.name == "buggy-mul-backward"
    )
    return {
        "reference": copy_reference_submission(course, dest / "reference"),
        "bug": materialize(bug, course, dest / "bug"),
    }


def example_outcome(results: dict) -> float:
    """The score of the example's test in a results.json (it must be there)."""
    for test in results["tests"]:
        if "log(x) * y" in test["name"]:
            return test["score"] / test["max_score"]
    names = [t["name"] for t in results["tests"]]
    raise AssertionError(f"the example is not in the report: {names}")


def judge(results: dict[str, dict]) -> None:
    assert example_outcome(results["reference"]) == 1.0
    assert results["reference"]["score"] == 100.0
    assert example_outcome(results["bug"]) == 0.0
    bug = next(t for t in results["bug"]["tests"] if "log(x) * y" in t["name"])
    assert "To reproduce:" in bug["output"] and ".backward(" in bug["output"], bug["output"]


@pytest.mark.parametrize("mode", ["inprocess", "sandbox"])
def test_the_example_grades_on_the_host(course: Assignment, tmp_path: Path, mode: str) -> None:
    results = {}
    for name, sub in submissions(course, tmp_path / "subs").items():
        out = tmp_path / f"{name}.json"
        subprocess.run(
            [sys.executable, "-m", "grader", "grade", str(sub), "-a", "module1", "--mode",
             mode, "--out", str(out), "--max-examples", BUDGET, "--no-shrink"],
            check=True, capture_output=True, env={**os.environ, "GRADER_ROOT": str(course.root)},
        )  # fmt: skip
        results[name] = json.loads(out.read_text())
    judge(results)


@pytest.mark.docker
@pytest.mark.evidence
def test_the_example_grades_in_the_bundles_container(course: Assignment, tmp_path: Path) -> None:
    """The Gradescope bundle of the course copy, built into an image and run as Gradescope
    runs it: the example travels in the bundle with no change to the grader."""
    from docker_env import base_image, docker_client

    from grader.platforms.containers import grade_in_container
    from grader.platforms.images import ensure_image

    client = docker_client()
    image = ensure_image(course, base=base_image(client), client=client)
    results = {
        name: grade_in_container(sub, course, tmp_path / f"{name}.json", image=image, client=client)
        for name, sub in submissions(course, tmp_path / "subs").items()
    }
    judge(results)


MODULE1_TESTS = ("test_autodiff.py", "test_scalar.py", "hidden/test_autodiff_hidden.py",
                 "hidden/test_scalar_hidden.py")  # fmt: skip


def lengths_of_tests(path: Path) -> list[int]:
    """Lines of each test function of ``path``, its decorators included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.end_lineno - min([node.lineno, *(d.lineno for d in node.decorator_list)]) + 1
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_") and node.end_lineno
    ]


def test_module_1_tests_read_like_the_courses_and_no_probe_is_left() -> None:
    """A typical module-1 test is a few lines over handles (the median at most 12), and no
    worker-side probe module remains: the worker runs the tests' operations only."""
    tests = PROJECT / "tests"
    lengths = sorted(n for rel in MODULE1_TESTS for n in lengths_of_tests(tests / rel))
    assert len(lengths) >= 20 and statistics.median(lengths) <= 12, lengths
    assert not (tests / "probes.py").exists()
