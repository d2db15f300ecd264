"""Points from outcomes: weights, rounding, tasks without tests, and the results.json shape."""

from __future__ import annotations

import dataclasses
import json
import sys

import jsonschema

from grader.course.assignment import Task, load_assignment
from grader.grading.results import SCHEMA_PATH, error_results, to_results, validate_results
from grader.grading.scoring import TestOutcome, score

M0 = load_assignment("module0")


def outcome(name: str, task: str, passed: bool, hidden: bool = False) -> TestOutcome:
    path = "hidden/test_x_hidden.py" if hidden else "test_x.py"
    return TestOutcome(f"{path}::{name}", task, name, "passed" if passed else "failed", "msg")


def test_task_points_are_shared_by_weight_in_cents_that_add_up() -> None:
    tasks = (
        Task("0.1", "ops", 40.0),
        Task("0.3", "hof", 25.0),
        Task("0.4", "mod", 35.0, {"big": 2}),
    )
    a = dataclasses.replace(M0, tasks=tasks)
    outcomes = [outcome(f"t{i}", "0.4", i < 3) for i in range(5)] + [outcome("big", "0.4", False)]
    outcomes += [outcome("ok", "0.1", True)]
    scored = score(outcomes, a)
    by_id = {t.id: t for t in scored.tasks}
    assert by_id["0.1"].score == 40.0  # a fully passed task gets exactly its points
    assert by_id["0.4"].score == 15.0  # 3 of weight 7 (5 ones and a two) of 35 points
    assert [t.max_score for t in scored.tests if t.outcome.task == "0.4"].count(10.0) == 1
    assert by_id["0.3"].score == 0 and by_id["0.3"].total == 0  # no test ran: still counted
    assert scored.max_score == 100 and scored.score == 55.0
    assert any("task 0.3" in m and "no test ran" in m for m in scored.messages)


def test_visibility_follows_the_file_and_overrides() -> None:
    a = dataclasses.replace(M0, visibility_overrides={"secret": "hidden"})
    scored = score(
        [
            outcome("a", "0.1", True),
            outcome("b", "0.1", True, hidden=True),
            outcome("secret", "0.1", True),
        ],
        a,
    )
    vis = {t.outcome.function: t.visibility for t in scored.tests}
    assert vis == {"a": "visible", "b": "after_due_date", "secret": "hidden"}


def test_results_documents_match_the_schema() -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    scored = score([outcome("a", "0.1", False)], M0)
    for doc in (to_results(scored, execution_time=1.5), error_results(M0, "could not read")):
        validate_results(doc)
        jsonschema.validate(doc, schema)
    bad = to_results(scored, execution_time=1.0)
    bad["tests"][0]["status"] = "ok"
    try:
        validate_results(bad)
    except ValueError as exc:
        assert "status" in str(exc)
    else:
        raise AssertionError("an invalid status was accepted")


def test_per_test_points_add_up_to_each_task_and_the_total() -> None:
    from grader.grading.scoring import apportion

    assert sum(apportion(25, [1.0] * 29)) == 2500  # rounding each gives 29 x 0.86 = 24.94
    assert sum(apportion(35, [1.0] * 6)) == 3500 and sorted(set(apportion(35, [1.0] * 6))) == [
        583,
        584,
    ]
    tasks = (Task("0.1", "ops", 40.0), Task("0.3", "hof", 25.0), Task("0.4", "mod", 35.0))
    a = dataclasses.replace(M0, tasks=tasks)
    outcomes = [outcome(f"a{i}", "0.1", i % 3 != 0) for i in range(37)]
    outcomes += [outcome(f"b{i}", "0.3", i % 2 == 0) for i in range(29)]
    outcomes += [outcome(f"c{i}", "0.4", True) for i in range(6)]
    scored = score(outcomes, a)
    for task in scored.tasks:
        mine = [t for t in scored.tests if t.outcome.task == task.id]
        assert abs(sum(t.max_score for t in mine) - task.max_score) < 1e-9
        assert abs(sum(t.score for t in mine) - task.score) < 1e-9
    assert abs(sum(t.max_score for t in scored.tests) - 100) < 1e-9
    assert abs(sum(t.score for t in scored.tests) - scored.score) < 1e-9
    assert abs(sum(t.score for t in scored.tasks) - scored.score) < 1e-9


def test_visible_output_tells_only_what_visible_tests_scored() -> None:
    tasks = (Task("0.1", "ops", 40.0), Task("0.3", "hof", 25.0), Task("0.4", "mod", 35.0))
    a = dataclasses.replace(M0, tasks=tasks)
    outcomes = [outcome("a", "0.1", True), outcome("b", "0.1", False, hidden=True)]
    outcomes += [outcome("c", "0.3", True), outcome("d", "0.4", True)]
    doc = to_results(score(outcomes, a), execution_time=1.0)
    first = doc["output"].splitlines()[0]
    assert doc["score"] == 80  # the true total stays in the document (Gradescope hides it)
    assert first.startswith("Score: 80 / 80 on the tests shown now; 20 more points")
    assert "80 / 100" not in doc["output"]
    visible = to_results(score([outcome("a", "0.1", True)], a), execution_time=1.0)
    assert visible["output"].splitlines()[0] == "Score: 40 / 100"


def test_a_report_whose_points_do_not_add_up_is_refused() -> None:
    outcomes = [outcome(f"t{i}", "0.1", i % 2 == 0) for i in range(7)]
    doc = to_results(score(outcomes, M0), execution_time=1.0)
    validate_results(doc)
    doc["tests"][0]["max_score"] = round(doc["tests"][0]["max_score"] + 0.01, 2)
    try:
        validate_results(doc)
    except ValueError as exc:
        assert "add up" in str(exc)
    else:
        raise AssertionError("a report whose test points exceed the task was accepted")


def test_notes_change_no_status_and_leave_out_files_that_did_not_import() -> None:
    """A package the runtime lacks is a note at the report's top, not a failure; a note
    about a file that did not import, or met only in a hidden test, is not told."""
    from grader.grading.runner import grade_status
    from grader.grading.submission import Located

    located = Located(files={"minitorch/operators.py": b"", "minitorch/module.py": b""})
    note = "Note: minitorch/{} imports {}, which is not available when grading (...)."
    problems = [
        {"kind": "note", "key": "pandas", "message": note.format("operators.py", "pandas")},
        {"kind": "note", "key": "scipy", "message": note.format("module.py", "scipy")},
        {
            "kind": "note",
            "key": "rich",
            "message": note.format("operators.py", "rich"),
            "hidden": True,
        },
    ]
    for problem in problems:
        problem.setdefault("hidden", False)
    status, messages, notes = grade_status(load_assignment("module0"), located, problems)
    told = [note.format("operators.py", "pandas"), note.format("module.py", "scipy")]
    assert (status, messages, notes) == ("ok", [], told)

    failed = "minitorch/module.py could not be imported: while it loaded, your code used ..."
    problems.append(
        {"kind": "import-error", "key": "minitorch/module.py", "message": failed, "hidden": False}
    )
    status, messages, notes = grade_status(load_assignment("module0"), located, problems)
    assert (status, messages, notes) == (
        "import-error",
        [failed],
        [note.format("operators.py", "pandas")],
    )


def test_a_grade_on_an_older_python_than_the_courses_tells_the_instructor() -> None:
    from grader.grading.runner import older_python

    module0 = load_assignment("module0")
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert older_python(dataclasses.replace(module0, python=here)) is None
    assert older_python(dataclasses.replace(module0, python="")) is None
    assert older_python(dataclasses.replace(module0, python="3.99")) == (
        "assignment.toml says this course grades with Python 3.99, but this grade "
        f"ran on Python {here}: set [runtime] python to what the grading image has (students "
        "are told that version), or grade on a newer image."
    )
