"""Whole grades of real submissions: the scores and messages a student or TA gets.

Every submission here is the reference with one change (or a layout change), graded by the
real CLI in the sandbox at the assignment's grading budget.
"""

from __future__ import annotations

import json
import re
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest
from grading_jobs import Graded, Job, grade_all

from grader.course.assignment import load_assignment, repo_root
from grader.course.skeleton import make_skeleton
from grader.evidence.mutations import apply_mutations
from grader.grading.results import SCHEMA_PATH

REF = repo_root() / "reference"
M0 = load_assignment("module0")
M1 = load_assignment("module1")
M2 = load_assignment("module2")

RIGGED_MUL_BACKWARD = """        a, b = ctx.saved_values

        class AlwaysEqual(float):
            def __eq__(self, other):
                return True

            def __sub__(self, other):
                return AlwaysEqual(0.0)

            __hash__ = float.__hash__

        return AlwaysEqual(0.0), AlwaysEqual(0.0)
"""


def _edit(file: str, find: str, replace: str) -> dict[str, str]:
    return {"file": file, "find": find, "replace": replace}


def _prepend(path: Path, text: str) -> None:
    path.write_text(text + path.read_text())


def _append(path: Path, text: str) -> None:
    """Top-level code at the end of a file still runs at import (and may follow
    ``from __future__`` imports, which must stay first)."""
    path.write_text(path.read_text() + "\n" + text)


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Graded]:
    base = tmp_path_factory.mktemp("subs")
    jobs: list[Job] = []

    def sub(name: str, edits: list[dict[str, str]] | None = None) -> Path:
        return apply_mutations(REF, edits or [], base / name)

    ref = sub("reference")
    jobs += [
        Job("ref1-sandbox", ref, "module1"),
        Job("ref1-inprocess", ref, "module1", "inprocess"),
    ]
    jobs += [
        Job("ref0-sandbox", ref, "module0"),
        Job("ref0-inprocess", ref, "module0", "inprocess"),
    ]

    skel = base / "skeleton"
    for rel in M0.editable + M1.editable:
        (skel / rel).parent.mkdir(parents=True, exist_ok=True)
        (skel / rel).write_text(make_skeleton((REF / rel).read_text(), rel))
    jobs += [Job("skel1", skel, "module1"), Job("skel0", skel, "module0")]
    # Module 2's hand-out: its own skeletons, the course's solved module-0/1 files.
    skel2 = base / "skeleton2"
    for rel in M2.editable:
        (skel2 / rel).parent.mkdir(parents=True, exist_ok=True)
        (skel2 / rel).write_text(make_skeleton(M2.reference_file(rel).read_text(), rel))
    jobs.append(Job("skel2", skel2, "module2"))

    # prod hangs on lists of four items or more, and only there.
    hang = "ls = list(ls)\n    while len(ls) >= 4:\n        pass\n    return reduce(mul, 1.0)(ls)"
    loop = sub("loop", [_edit("operators.py", "return reduce(mul, 1.0)(ls)", hang)])
    jobs.append(Job("loop0", loop, "module0"))

    rigged = sub(
        "rigged",
        [
            _edit(
                "scalar_functions.py",
                "        a, b = ctx.saved_values\n        return operators.mul(b, d_output), "
                "operators.mul(a, d_output)\n",
                RIGGED_MUL_BACKWARD,
            )
        ],
    )
    jobs += [Job("rigged1", rigged, "module1"), Job("rigged1-again", rigged, "module1")]

    syntax = sub("syntax")
    _prepend(syntax / "minitorch/scalar_functions.py", "def broken(:\n    pass\n")
    jobs.append(Job("syntax1", syntax, "module1"))

    missing = sub("missing")
    (missing / "minitorch/module.py").unlink()
    jobs.append(Job("missing0", missing, "module0"))

    for name, text in {
        "raises": "raise RuntimeError('half-finished file')\n",
        "exits": "import sys\nsys.exit(0)\n",
        "hangs": "while True:\n    pass\n",
    }.items():
        s = sub(name)
        _append(s / "minitorch/module.py", text)
        jobs.append(Job(f"{name}0", s, "module0"))

    # A Latin-1 byte in a string literal, with no coding cookie: Python's import refuses it
    # (in a comment it would import, and so it does here: test_corpus_inprocess).
    latin = sub("latin1")
    (latin / "minitorch/module.py").write_bytes(
        (latin / "minitorch/module.py").read_bytes() + b'CAFE = "caf\xe9"\n'
    )
    jobs.append(Job("latin1-0", latin, "module0"))

    archive = base / "Module-1-main.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for rel in M1.editable:
            zf.write(ref / rel, f"Module-1-main/{rel}")
        zf.writestr("Module-1-main/README.md", "my notes")
    jobs.append(Job("zip1", archive, "module1"))

    empty = base / "empty"
    empty.mkdir()
    jobs.append(Job("empty1", empty, "module1"))

    garbage = base / "garbage.zip"
    garbage.write_bytes(b"PK\x03\x04 not a zip at all")
    jobs.append(Job("garbage1", garbage, "module1"))

    return grade_all(jobs, base / "results")


SCHEMA = json.loads(SCHEMA_PATH.read_text())


def test_one_sandbox_grade_of_the_reference_and_of_one_bug(tmp_path: Path) -> None:
    """What `make test` grades for real in the sandbox: the module-1 reference, and the
    reference with Mul.backward's two derivatives swapped, through the CLI at the
    assignment's full grading budget. The bug costs points in task 1.4 and nowhere else."""
    swapped = _edit(
        "scalar_functions.py",
        "return operators.mul(b, d_output), operators.mul(a, d_output)",
        "return operators.mul(a, d_output), operators.mul(b, d_output)",
    )
    graded = grade_all(
        [
            Job("reference", apply_mutations(REF, [], tmp_path / "reference"), "module1"),
            Job("swapped", apply_mutations(REF, [swapped], tmp_path / "swapped"), "module1"),
        ],
        tmp_path / "results",
    )
    for g in graded.values():
        assert g.exit_code == 0, g.stderr[-2000:]
        jsonschema.validate(g.results, SCHEMA)
        assert g.results["extra_data"]["defences"]["separate_process"] is True
    reference, swapped_mul = graded["reference"], graded["swapped"]
    assert reference.results["score"] == 100, reference.outputs()[-3000:]
    assert not swapped_mul.full("1.4")
    assert all(swapped_mul.full(task.id) for task in M1.tasks if task.id != "1.4")
    assert "Mul" in swapped_mul.outputs()


MAP = "def map(fn: Callable[[float], float]) -> Callable[[Iterable[float]], list[float]]:"
GENERIC_MAP = "def map[T](fn: Callable[[T], T]) -> Callable[[Iterable[T]], list[T]]:"


@pytest.mark.evidence
def test_stray_imports_and_newer_syntax_in_a_students_first_hour(tmp_path: Path) -> None:
    """Module 0 in the sandbox, at the grading budget: an unused `import pandas` (and
    `from toposort import toposort`) costs nothing and is one note per package at the top;
    `pandas.DataFrame()` inside mul costs task 0.1 with the placeholder's message; a generic
    `def map[T]` (Python 3.12) says so, with its line, and costs only what needs the file;
    `@beartype` on a class is a use while the file loads: module.py does not import, says
    why, and gets no note saying it was graded anyway."""
    stray = "import math\n\nimport pandas\nfrom toposort import toposort\n"
    unused = [_edit("operators.py", "import math\n", stray)]
    used = [
        *unused,
        _edit("operators.py", "    return x * y\n", "    pandas.DataFrame()\n    return x * y\n"),
    ]
    generic = [_edit("operators.py", MAP, GENERIC_MAP)]
    beartype = "from typing import Any\n\nfrom beartype import beartype\n"
    decorated = [
        _edit("module.py", "from typing import Any\n", beartype),
        _edit("module.py", "class Module:", "@beartype\nclass Module:"),
    ]
    graded = grade_all(
        [
            Job("unused", apply_mutations(REF, unused, tmp_path / "unused"), "module0"),
            Job("used", apply_mutations(REF, used, tmp_path / "used"), "module0"),
            Job("generic", apply_mutations(REF, generic, tmp_path / "generic"), "module0"),
            Job("decorated", apply_mutations(REF, decorated, tmp_path / "decorated"), "module0"),
        ],
        tmp_path / "results",
    )
    for g in graded.values():
        assert g.exit_code == 0, g.stderr[-2000:]
        jsonschema.validate(g.results, SCHEMA)
    runtime = "the standard library, numpy and typing_extensions"
    note = (
        "Note: minitorch/operators.py imports {}, which is not available when grading (graded "
        f"code can use {runtime}). The file was graded anyway; only a test that reaches a use "
        "of {} fails. Remove the import if you do not need it."
    )

    unused_g = graded["unused"]
    assert unused_g.results["score"] == 100, unused_g.outputs()[-3000:]
    top = unused_g.results["output"]
    for package in ("pandas", "toposort"):
        assert top.count(note.format(package, package)) == 1, top
    assert unused_g.results["extra_data"]["status"] == "ok"

    used_g = graded["used"]
    assert not used_g.full("0.1")
    assert used_g.full("0.4")
    assert (
        "mul raised PackageNotAvailable: your code used pandas.DataFrame(...), but pandas is "
        f"not available when grading (graded code can use {runtime}): remove the import of "
        "pandas from minitorch/operators.py, or stop using it"
    ) in used_g.outputs()
    assert note.format("pandas", "pandas") in used_g.results["output"]

    generic_g = graded["generic"]
    if sys.version_info >= (3, 12):  # the syntax exists here: the generic map is correct
        assert generic_g.results["score"] == 100, generic_g.results["output"]
        return
    line = (REF / "minitorch/operators.py").read_text().splitlines().index(MAP) + 1
    told = (
        "minitorch/operators.py could not be imported: it uses Python 3.12 syntax (line "
        f"{line}: a generic function `def map[...]`), and this course grades with Python 3.11: "
        f"write it without type parameters, as `def map(...)`\n    {GENERIC_MAP}"
    )
    assert told in generic_g.results["output"], generic_g.results["output"]
    assert generic_g.results["extra_data"]["status"] == "import-error"
    assert generic_g.full("0.4") and not generic_g.full("0.1")

    decorated_g = graded["decorated"]
    top = decorated_g.results["output"]
    assert (
        "minitorch/module.py could not be imported: while it loaded, your code used "
        "beartype.beartype(...), but beartype is not available when grading (graded code can "
        f"use {runtime}): remove the import of beartype from minitorch/module.py, or stop "
        'using it\n  File "minitorch/module.py", line '
    ) in top
    assert "Note: minitorch/module.py imports beartype" not in top
    assert decorated_g.results["extra_data"]["status"] == "import-error"
    assert decorated_g.full("0.1") and decorated_g.full("0.3") and not decorated_g.full("0.4")


@pytest.mark.evidence
def test_every_report_is_valid_and_exit_status_is_zero(graded: dict[str, Graded]) -> None:
    for name, g in graded.items():
        assert g.exit_code == 0, f"{name}: exit {g.exit_code}\n{g.stderr[-2000:]}"
        jsonschema.validate(g.results, SCHEMA)
        assert "Traceback" not in g.results["output"], name


@pytest.mark.evidence
@pytest.mark.parametrize(
    "name", ["ref1-sandbox", "ref1-inprocess", "ref0-sandbox", "ref0-inprocess", "zip1"]
)
def test_reference_gets_full_marks(graded: dict[str, Graded], name: str) -> None:
    g = graded[name]
    failed = [t["name"] + ": " + t["output"] for t in g.results["tests"] if t["status"] != "passed"]
    assert not failed, "\n".join(failed)
    assert g.results["score"] == g.results["extra_data"]["max_score"] == 100


@pytest.mark.evidence
def test_sandbox_reports_its_defences(graded: dict[str, Graded]) -> None:
    defences = graded["ref1-sandbox"].results["extra_data"]["defences"]
    assert defences["separate_process"] and defences["rlimits"]
    assert graded["ref1-inprocess"].results["extra_data"]["defences"] == {"separate_process": False}


@pytest.mark.evidence
@pytest.mark.parametrize(("name", "assignment"), [("skel1", M1), ("skel0", M0), ("skel2", M2)])
def test_skeleton_scores_zero_in_every_task_and_says_why(
    graded: dict[str, Graded], name: str, assignment
) -> None:
    g = graded[name]
    for task in assignment.tasks:
        assert g.task(task.id)["score"] == 0, task.id
        assert g.task(task.id)["total"] > 0, task.id
    assert "NotImplementedError" in g.outputs() and "Task " in g.outputs()


@pytest.mark.evidence
def test_infinite_loop_costs_only_its_own_task(graded: dict[str, Graded]) -> None:
    g = graded["loop0"]
    assert g.full("0.1") and g.full("0.4")
    assert 0 < g.task("0.3")["score"] < g.task("0.3")["max_score"]
    assert "timed out after 5 s in" in g.outputs()
    assert g.wall < M0.limits.budget


@pytest.mark.evidence
def test_a_hang_is_shown_with_the_input_that_hung(graded: dict[str, Graded]) -> None:
    """Not shrunk: once a call hangs, its repeats in the test fail at once, so every smaller
    list would "fail" too and the report would end on one that works."""
    g = graded["loop0"]
    hung = "timed out after 5 s in minitorch.operators.prod"
    [first] = [t for t in g.results["tests"] if hung in t["output"]]
    called = re.search(r"called: +minitorch\.operators\.prod\((\[.*\])\)", first["output"])
    assert called, first["output"]
    assert len(json.loads(called.group(1))) >= 4, first["output"]
    assert ">>> minitorch.operators.prod(" in first["output"]
    others = [t for t in g.results["tests"] if t is not first and "prod" in t["output"]]
    assert all(len(t["output"].splitlines()) == 1 for t in others), others


@pytest.mark.evidence
def test_float_subclass_with_rigged_eq_scores_zero_there(graded: dict[str, Graded]) -> None:
    g = graded["rigged1"]
    assert g.full("1.1") and g.full("1.2") and g.full("1.3")
    assert not g.full("1.4")
    mul_tests = [t for t in g.results["tests"] if "Mul" in t["name"] and t["tags"] == ["task 1.4"]]
    assert mul_tests and all(t["score"] == 0 for t in mul_tests)
    assert "subclass of float" in g.outputs()


@pytest.mark.evidence
def test_grading_twice_gives_identical_results(graded: dict[str, Graded]) -> None:
    a, b = (dict(graded[n].results) for n in ("rigged1", "rigged1-again"))
    a.pop("execution_time"), b.pop("execution_time")
    assert a == b


@pytest.mark.evidence
def test_syntax_error_costs_only_tasks_that_need_the_file(graded: dict[str, Graded]) -> None:
    g = graded["syntax1"]
    assert g.full("1.1")  # central_difference lives in autodiff.py, which is fine
    assert g.task("1.2")["score"] == 0
    assert "minitorch/scalar_functions.py could not be imported: SyntaxError" in g.outputs()
    assert "(line 1)" in g.outputs()
    # One report per cause: the problem once, at the top; each test it stopped says so in
    # a line or two, with no reproducer and no hypothesis noise.
    top = g.results["output"]
    assert top.count("could not be imported") == 1
    stopped = [t for t in g.results["tests"] if t["score"] < t["max_score"]]
    assert len(stopped) > 10
    for t in stopped:
        assert len(t["output"].splitlines()) <= 3, t["output"]
        assert "could not be imported" not in t["output"]
        assert "Falsifying example" not in t["output"] and ">>>" not in t["output"]


@pytest.mark.evidence
@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("missing0", "minitorch/module.py was not found in the submission"),
        ("raises0", "it raised RuntimeError: half-finished file"),
        ("exits0", "it called sys.exit(0)"),
        ("hangs0", "did not finish importing within 10 s"),
        ("latin1-0", "codec can't decode byte 0xe9"),
    ],
)
def test_broken_module_file_costs_only_task_0_4(
    graded: dict[str, Graded], name: str, needle: str
) -> None:
    g = graded[name]
    assert g.full("0.1") and g.full("0.3"), g.results["extra_data"]["tasks"]
    assert g.task("0.4")["score"] == 0
    assert needle in g.outputs()


@pytest.mark.evidence
def test_empty_submission_says_nothing_was_found(graded: dict[str, Graded]) -> None:
    g = graded["empty1"]
    assert g.results["score"] == 0
    assert "No editable file was found in the submission" in g.results["output"]


@pytest.mark.evidence
def test_unreadable_zip_gets_a_report_not_a_traceback(graded: dict[str, Graded]) -> None:
    g = graded["garbage1"]
    assert g.results["score"] == 0 and g.results["tests"] == []
    assert "could not be read" in g.results["output"]
    assert g.results["extra_data"]["max_score"] == 100


def test_a_grade_that_cannot_finish_still_ends_in_a_valid_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever breaks below the runner (here: the test run itself raises), the grade ends
    in a schema-valid zero report that says it is no judgement of the student's code."""
    from grader.grading import runner
    from grader.grading.submission import copy_reference_submission

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the worker pipe vanished")

    monkeypatch.setattr(runner, "run_tests", broken)
    sub = copy_reference_submission(M1, tmp_path / "sub")
    result = runner.grade(sub, M1, mode="inprocess")
    jsonschema.validate(result.results, json.loads(SCHEMA_PATH.read_text()))
    assert result.results["score"] == 0
    assert result.results["extra_data"]["status"] == "crashed"
    assert "not a judgement of your code" in result.results["output"]
    assert "the worker pipe vanished" in result.results["output"]
