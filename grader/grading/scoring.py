"""Turn test outcomes into points. Pure functions: no I/O, no pytest.

Points come from ``assignment.toml`` only: each task's points are shared among its tests in
proportion to their weights (default 1 per test item). A task none of whose tests ran still
counts toward the maximum, so a broken collection can never inflate a percentage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from grader.course.assignment import Assignment

__all__ = [
    "TestOutcome",
    "ScoredTest",
    "TaskScore",
    "Scored",
    "score",
    "outcomes_from_json_report",
    "outcomes_from_plugin",
]


@dataclass(frozen=True)
class TestOutcome:
    nodeid: str
    task: str
    title: str
    outcome: str  # "passed" | "failed" | "error" | "skipped"
    message: str = ""
    duration: float = 0.0

    __test__ = False  # not a pytest test class

    @property
    def function(self) -> str:
        """The test function's name, without module path or parameters."""
        return self.nodeid.split("::")[-1].split("[")[0]

    @property
    def hidden(self) -> bool:
        return "/hidden/" in "/" + self.nodeid.split("::")[0]


@dataclass(frozen=True)
class ScoredTest:
    outcome: TestOutcome
    number: str
    score: float
    max_score: float
    visibility: str

    __test__ = False


@dataclass(frozen=True)
class TaskScore:
    id: str
    title: str
    score: float
    max_score: float
    passed: int
    total: int


@dataclass(frozen=True)
class Scored:
    tests: tuple[ScoredTest, ...]
    tasks: tuple[TaskScore, ...]
    score: float
    max_score: float
    messages: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    def task_rows(self) -> list[str]:
        """Plain-text rows of the per-task table (for terminals without rich)."""
        rows = [f"{'task':<6} {'title':<34} {'tests':>9} {'points':>15}"]
        for t in self.tasks:
            rows.append(
                f"{t.id:<6} {t.title[:34]:<34} {f'{t.passed}/{t.total}':>9} "
                f"{f'{t.score:g} / {t.max_score:g}':>15}"
            )
        rows.append(f"{'total':<6} {'':<34} {'':>9} {f'{self.score:g} / {self.max_score:g}':>15}")
        return rows


def _round(x: float) -> float:
    return round(x + 0.0, 2)


def apportion(points: float, weights: list[float]) -> list[int]:
    """Split ``points`` over ``weights`` in hundredths that add up exactly (largest remainder).

    Rounding each share on its own does not add up: a 25-point task of 29 tests gives
    29 x 0.86 = 24.94. Here every share is first rounded down, and the cents left over go to
    the shares that lost the most (ties to the earlier test), so the parts sum to the task's
    points to the cent and any set of passed tests adds up to the score shown.
    """
    total = sum(weights)
    if not weights or total <= 0:
        return [0] * len(weights)
    cents = round(points * 100)
    exact = [cents * w / total for w in weights]
    parts = [math.floor(e) for e in exact]
    left = cents - sum(parts)
    by_loss = sorted(range(len(parts)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in by_loss[:left]:
        parts[i] += 1
    return parts


def score(
    outcomes: list[TestOutcome],
    assignment: Assignment,
    messages: tuple[str, ...] = (),
    extra: dict[str, Any] | None = None,
) -> Scored:
    """Points per test and per task. Tests of unknown tasks are ignored with a message.

    A test's max score is its task's points shared by weight (``apportion``); a task scores
    the sum of its passed tests and the total the sum of the tasks, all in whole cents, so
    every figure in the report adds up exactly.
    """
    by_task: dict[str, list[TestOutcome]] = {t.id: [] for t in assignment.tasks}
    notes = list(messages)
    for o in sorted(outcomes, key=lambda o: o.nodeid):
        if o.task in by_task:
            by_task[o.task].append(o)
        else:
            notes.append(f"test {o.nodeid} names task {o.task!r}, which the assignment lacks")

    tests: list[ScoredTest] = []
    tasks: list[TaskScore] = []
    total_cents = 0
    for task in assignment.tasks:
        items = by_task[task.id]
        shares = apportion(task.points, [task.weights.get(o.function, 1.0) for o in items])
        earned = 0
        for i, (o, cents) in enumerate(zip(items, shares, strict=True), start=1):
            got = cents if o.outcome == "passed" else 0
            earned += got
            tests.append(
                ScoredTest(
                    outcome=o,
                    number=f"{task.id}.{i}",
                    score=got / 100,
                    max_score=cents / 100,
                    visibility=assignment.visibility(o.function, o.hidden),
                )
            )
        if not items:
            notes.append(f"task {task.id} ({task.title}): no test ran, so it scores 0")
        passed = sum(1 for o in items if o.outcome == "passed")
        total_cents += earned
        tasks.append(TaskScore(task.id, task.title, earned / 100, task.points, passed, len(items)))
    return Scored(
        tests=tuple(tests),
        tasks=tuple(tasks),
        score=total_cents / 100,
        max_score=_round(assignment.max_score),
        messages=tuple(notes),
        extra=dict(extra or {}),
    )


def _props(test: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for entry in test.get("user_properties", []) or []:
        if isinstance(entry, dict):
            props.update(entry)
    return props


def outcomes_from_json_report(report: dict[str, Any]) -> list[TestOutcome]:
    """Read pytest-json-report's dict. The task and title come from the plugin's properties."""
    outcomes = []
    for test in report.get("tests", []):
        props = _props(test)
        outcome = str(test.get("outcome", "failed"))
        message = ""
        duration = 0.0
        for stage in ("setup", "call", "teardown"):
            info = test.get(stage) or {}
            duration += float(info.get("duration", 0.0) or 0.0)
            if info.get("outcome") == "failed" and not message:
                message = str(info.get("longrepr", "") or "")
                if stage != "call":
                    outcome = "error"
            if info.get("outcome") == "skipped" and not message:
                message = str(info.get("longrepr", "") or "")
        outcomes.append(
            TestOutcome(
                nodeid=str(test["nodeid"]),
                task=str(props.get("task", "")),
                title=str(props.get("title", test["nodeid"])),
                outcome=outcome if outcome in ("passed", "failed", "skipped") else "error",
                message=message,
                duration=duration,
            )
        )
    return outcomes


def outcomes_from_plugin(records: dict[str, dict[str, Any]]) -> list[TestOutcome]:
    """The plugin's own records (for the students' local score preview)."""
    return [
        TestOutcome(
            nodeid=nodeid,
            task=str(r.get("task", "")),
            title=str(r.get("title", nodeid)),
            outcome=str(r.get("outcome", "failed")),
            message=str(r.get("message", "")),
            duration=float(r.get("duration", 0.0)),
        )
        for nodeid, r in records.items()
    ]
