"""The results.json shape (Gradescope's autograder schema): the one module that knows it.

``to_results`` turns a ``Scored`` into the document, ``error_results`` makes a valid zero
report when grading could not run, and ``validate_results`` checks any document against
``results.schema.json`` (also used by the project's tests through jsonschema). Writers are
policy-free: points were decided in scoring.py.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from grader.course.assignment import Assignment
from grader.files import write_atomic
from grader.grading.scoring import Scored

__all__ = ["to_results", "error_results", "validate_results", "write_results", "SCHEMA_PATH"]

SCHEMA_PATH = Path(__file__).with_name("results.schema.json")
_STATUS = {"passed": "passed"}
_MAX_OUTPUT = 8000


def _clip(text: str, limit: int = _MAX_OUTPUT) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n... ({len(text) - limit} more characters cut)"


def _score_line(scored: Scored) -> str:
    """The first line of the student-visible output.

    While some tests are hidden (Gradescope keeps the total hidden then), it tells only what
    the visible tests scored, so a student cannot learn before the due date that hidden tests
    fail and resubmit to probe them.
    """
    shown = [t for t in scored.tests if t.visibility == "visible"]
    if len(shown) == len(scored.tests):
        return f"Score: {scored.score:g} / {scored.max_score:g}"
    got = sum(round(t.score * 100) for t in shown) / 100
    out_of = sum(round(t.max_score * 100) for t in shown) / 100
    rest = round(scored.max_score - out_of, 2)
    return (
        f"Score: {got:g} / {out_of:g} on the tests shown now; {rest:g} more points are in "
        "tests shown after the due date, with your total."
    )


def to_results(scored: Scored, *, execution_time: float, output: str = "") -> dict[str, Any]:
    tests = []
    for t in scored.tests:
        o = t.outcome
        message = o.message.strip()
        if o.outcome == "skipped":
            message = f"Not run: {message}" if message else "Not run."
        tests.append(
            {
                "name": f"{o.task} {o.title}",
                "number": t.number,
                "score": t.score,
                "max_score": t.max_score,
                "status": _STATUS.get(o.outcome, "failed"),
                "output": _clip(message),
                "visibility": t.visibility,
                "tags": [f"task {o.task}"],
            }
        )
    lines = [_score_line(scored), *scored.messages]
    if output:
        lines.append(output)
    return {
        "score": scored.score,
        "execution_time": round(max(execution_time, 0.0), 3),
        "output": _clip("\n".join(lines)),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {
            "max_score": scored.max_score,
            "tasks": [
                {
                    "id": t.id,
                    "title": t.title,
                    "score": t.score,
                    "max_score": t.max_score,
                    "passed": t.passed,
                    "total": t.total,
                }
                for t in scored.tasks
            ],
            **scored.extra,
        },
        "tests": tests,
    }


def error_results(
    assignment: Assignment | None,
    message: str,
    *,
    execution_time: float = 0.0,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A valid zero-score report that says why grading could not run."""
    tasks = []
    if assignment is not None:
        tasks = [
            {
                "id": t.id,
                "title": t.title,
                "score": 0.0,
                "max_score": t.points,
                "passed": 0,
                "total": 0,
            }
            for t in assignment.tasks
        ]
    return {
        "score": 0.0,
        "execution_time": round(max(execution_time, 0.0), 3),
        "output": _clip(message),
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {
            "max_score": assignment.max_score if assignment is not None else 0.0,
            "tasks": tasks,
            "error": message,
            **(extra or {}),
        },
        "tests": [],
    }


@lru_cache(maxsize=1)
def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
}


def _check(value: Any, schema: dict[str, Any], path: str) -> None:
    kind = schema.get("type")
    if kind is not None:
        ok = isinstance(value, _TYPES[kind]) and not (
            kind in ("number", "integer") and isinstance(value, bool)
        )
        if not ok:
            raise ValueError(f"{path or 'document'}: expected {kind}, got {type(value).__name__}")
    if "enum" in schema and value not in schema["enum"]:
        raise ValueError(f"{path}: {value!r} is not one of {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        raise ValueError(f"{path}: {value!r} is below {schema['minimum']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                raise ValueError(f"{path or 'document'}: missing '{key}'")
        props = schema.get("properties", {})
        for key, item in value.items():
            if key in props:
                _check(item, props[key], f"{path}.{key}" if path else key)
            elif schema.get("additionalProperties") is False:
                raise ValueError(f"{path or 'document'}: unexpected key '{key}'")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(item, schema["items"], f"{path}[{i}]")


def validate_results(data: Any) -> None:
    """Raise ValueError unless ``data`` matches results.schema.json.

    Interprets the keywords the schema file uses (type, required, properties, enum,
    minimum, items, additionalProperties), so the file stays the single definition.
    """
    _check(data, _schema(), "")
    if any(t["score"] > t["max_score"] + 1e-9 for t in data["tests"]):
        raise ValueError("a test scores above its max_score")
    # Per-test points are shared out in cents (scoring.apportion): every task with tests has
    # tests whose max scores add up to its points, and scores add up to the score shown.
    tasks = data.get("extra_data", {}).get("tasks", [])
    for task in tasks if isinstance(tasks, list) else []:
        mine = [t for t in data["tests"] if f"task {task.get('id')}" in t.get("tags", [])]
        if not mine:
            continue
        shares = sum(t["max_score"] for t in mine)
        if abs(shares - task["max_score"]) > 1e-9:
            raise ValueError(
                f"task {task['id']}: its tests' max scores add up to {shares}, "
                f"not {task['max_score']}"
            )
        if abs(sum(t["score"] for t in mine) - task["score"]) > 1e-9:
            raise ValueError(f"task {task['id']}: its tests' scores do not add up to its score")
    if tasks and abs(sum(t["score"] for t in tasks) - data["score"]) > 1e-9:
        raise ValueError("the tasks' scores do not add up to the score")


def write_results(data: dict[str, Any], path: Path) -> None:
    """Validate, then write atomically (a reader never sees half a file)."""
    validate_results(data)
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
