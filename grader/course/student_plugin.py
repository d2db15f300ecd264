"""The test plugin of a student hand-out (shipped as ``pytest_minitorch.py``).

The hand-out's public tests are the grader's own tests, which reach the student's code
through a ``student`` fixture: ``student.call(probe, *args, label=...)`` runs a function of
``tests/probes.py`` and returns plain data. On Gradescope that call crosses into a
sandboxed worker; here, on the student's machine, it is an ordinary function call in this
process, so a traceback points straight into the student's own files.

Besides the fixture this module gives the tests' markers (``@pytest.mark.task("1.4")`` and
the course's ``task1_4`` spelling, so ``pytest -m task1_4`` works), ``--task 1.4``, the
hypothesis settings of a local run and of a grading run, and ``--score-table``.

It must stay standalone: the standard library, pytest and hypothesis only. The grader
checks that (grader/tests/test_handout.py).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import signal
import sys
import threading
import traceback
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "BadValue",
    "BudgetExhausted",
    "ProbeTimeout",
    "StudentError",
    "StudentFault",
    "WorkerCrashed",
]

ASSIGNMENT_TOML = "assignment.toml"
PROBES = Path("tests") / "probes.py"
PROFILES = ("grading", "student")


# --------------------------------------------------------------------------- faults
class StudentFault(Exception):
    """The student's code gave no usable value; the test that asked for it fails."""

    def __init__(self, message: str, *, label: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.label = label

    def headline(self) -> str:
        return self.message


class StudentError(StudentFault):
    """The student's code raised ``type_name: message``; ``traceback`` holds its frames."""

    def __init__(
        self, type_name: str, message: str, traceback: str = "", *, label: str | None = None
    ) -> None:
        super().__init__(message, label=label)
        self.type_name = type_name
        self.traceback = traceback

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}" if self.message else self.type_name

    def headline(self) -> str:
        where = f"{self.label} raised " if self.label else "your code raised "
        return where + str(self)


class ProbeTimeout(StudentFault):
    """The student's code ran longer than the time allowed for one call."""


class WorkerCrashed(StudentFault):
    """The process running the student's code died (never happens in this process)."""


class BadValue(StudentFault):
    """The student's code returned something that is not plain data."""


class BudgetExhausted(StudentFault):
    """The time budget of the whole run is spent (only when grading)."""


# --------------------------------------------------------------------------- the assignment
@dataclass
class _Course:
    """What this module needs from the hand-out's assignment.toml."""

    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> toml table
    max_examples: int = 50
    local_max_examples: int = 100
    probe_timeout: float = 5.0


def _load_course(root: Path) -> _Course:
    path = root / ASSIGNMENT_TOML
    if not path.is_file():
        return _Course()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise pytest.UsageError(f"cannot read {path}: {exc}") from exc
    budget = data.get("hypothesis", {})
    return _Course(
        tasks={str(t["id"]): t for t in data.get("tasks", [])},
        max_examples=int(budget.get("max_examples", 50)),
        local_max_examples=int(budget.get("local_max_examples", 100)),
        probe_timeout=float(data.get("limits", {}).get("probe_timeout", 5.0)),
    )


def marker_name(task: str) -> str:
    """The course's marker for a task id: ``"1.4"`` -> ``"task1_4"``."""
    return "task" + task.replace(".", "_")


_COURSE = pytest.StashKey[_Course]()


# --------------------------------------------------------------------------- options
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("minitorch", "MiniTorch assignment tests")
    group.addoption("--task", action="append", help="run only the tests of this task (repeat)")
    group.addoption("--grading-profile", choices=PROFILES, help="hypothesis settings profile")
    group.addoption("--max-examples", type=int, help="hypothesis examples per property test")
    group.addoption("--probe-timeout", type=float, help="seconds allowed per call of your code")
    group.addoption("--score-table", action="store_true", help="print a per-task score preview")


def pytest_configure(config: pytest.Config) -> None:
    course = _load_course(config.rootpath)
    config.stash[_COURSE] = course
    config.addinivalue_line("markers", "task(id): the assignment task of a test, e.g. '1.4'")
    for task in course.tasks:
        config.addinivalue_line("markers", f"{marker_name(task)}: the tests of task {task}")
    wanted = config.getoption("task") or []
    unknown = [t for t in wanted if t not in course.tasks]
    if unknown and course.tasks:
        raise pytest.UsageError(
            f"unknown task {', '.join(unknown)}: the tasks of this assignment are "
            f"{', '.join(course.tasks)}"
        )
    _load_hypothesis_profile(config, course)


def _load_hypothesis_profile(config: pytest.Config, course: _Course) -> None:
    """Derandomized settings for a grading run; more, fresh examples for a local run."""
    from hypothesis import HealthCheck, settings

    profile = config.getoption("grading_profile") or "student"
    grading = profile == "grading"
    examples = config.getoption("max_examples")
    if examples is None:
        examples = course.max_examples if grading else course.local_max_examples
    common: dict[str, Any] = dict(
        deadline=None,
        max_examples=examples,
        print_blob=False,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
    )
    settings.register_profile("grading", derandomize=True, database=None, **common)
    settings.register_profile("student", derandomize=False, **common)
    settings.load_profile(profile)


# --------------------------------------------------------------------------- collection
def _task_of(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("task")
    return str(mark.args[0]) if mark is not None and mark.args else None


def pytest_itemcollected(item: pytest.Item) -> None:
    """Give each test the course's marker of its task, for ``pytest -m task1_4``."""
    task = _task_of(item)
    if task is not None:
        item.add_marker(marker_name(task))
        item.user_properties.append(("task", task))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = config.getoption("task")
    if not wanted:
        return
    keep = [i for i in items if _task_of(i) in wanted]
    drop = [i for i in items if _task_of(i) not in wanted]
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep


# --------------------------------------------------------------------------- the fixture
def _numpy_plain(v: Any) -> Any:
    """A numpy scalar as the grader receives it (its float, int or bool), else ``v``."""
    numpy = sys.modules.get("numpy")
    if numpy is None or type(v).__module__ != "numpy":
        return v
    for kind, cast in ((numpy.bool_, bool), (numpy.integer, int), (numpy.floating, float)):
        if isinstance(v, kind):
            return cast(v)
    return v


def _plain(value: Any, what: str) -> Any:
    """``value`` as the grader would receive it: plain data only, after a JSON round trip."""

    def convert(v: Any, depth: int) -> Any:
        if depth < 32 and type(v) in (list, tuple):
            return type(v)(convert(x, depth + 1) for x in v)
        if depth < 32 and type(v) is dict:
            return {k: convert(x, depth + 1) for k, x in v.items()}
        return _numpy_plain(v)

    def check(v: Any, depth: int) -> None:
        if depth > 32:
            raise BadValue(f"{what} is nested too deeply")
        if type(v) is int and not -(2**1024) < v < 2**1024:
            raise BadValue(f"{what} holds an integer too large to compare with any number")
        if type(v) in (int, float, bool, str, type(None)):
            return
        if type(v) in (list, tuple):
            for x in v:
                check(x, depth + 1)
            return
        if type(v) is dict and all(type(k) is str for k in v):
            for x in v.values():
                check(x, depth + 1)
            return
        raise BadValue(
            f"{what} is a {type(v).__name__}; the tests only accept plain numbers, strings, "
            "lists and dicts (did a function return a Scalar or a subclass of float?)"
        )

    value = convert(value, 0)
    check(value, 0)
    return json.loads(json.dumps(value))


def _student_frames(tb: types.TracebackType | None, package: Path) -> str:
    lines = []
    for frame in traceback.extract_tb(tb):
        if not frame.filename.startswith(str(package)):
            continue
        rel = Path(frame.filename).relative_to(package.parent).as_posix()
        lines.append(f'  File "{rel}", line {frame.lineno}, in {frame.name}')
        if frame.line:
            lines.append(f"    {frame.line.strip()}")
    return "\n".join(lines[-16:])


class _Timeout(BaseException):
    """Raised by the alarm inside a call that ran too long."""


class LocalStudent:
    """``student.call(probe, *args, label=...)`` as an ordinary call in this process."""

    def __init__(self, root: Path, timeout: float) -> None:
        self.root = root
        self.package = root / "minitorch"
        self.timeout = timeout
        spec = importlib.util.spec_from_file_location("_minitorch_probes", root / PROBES)
        if spec is None or spec.loader is None:
            raise pytest.UsageError(f"cannot load {root / PROBES}")
        self.probes = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(self.probes)

    def call(self, probe: str, *args: Any, label: str | None = None) -> Any:
        fn = getattr(self.probes, probe, None)
        if probe.startswith("_") or not callable(fn):
            raise LookupError(f"tests/probes.py has no probe named {probe!r}")
        args = tuple(json.loads(json.dumps(list(args))))
        try:
            with self._deadline():
                value = fn(*args)
        except _Timeout:
            raise ProbeTimeout(
                f"timed out after {self.timeout:g} s in {label or probe} (an infinite loop?)",
                label=label,
            ) from None
        except Exception as exc:  # student code may raise anything
            raise StudentError(
                type(exc).__name__,
                str(exc),
                _student_frames(exc.__traceback__, self.package),
                label=label,
            ) from exc
        return _plain(value, f"the value returned for {label or probe}")

    @staticmethod
    def _can_alarm() -> bool:
        return (
            hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
        )

    def _deadline(self) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def alarm() -> Iterator[None]:
            if self.timeout <= 0 or not self._can_alarm():
                yield
                return

            def ring(signum: int, frame: Any) -> None:
                raise _Timeout()

            previous = signal.signal(signal.SIGALRM, ring)
            signal.setitimer(signal.ITIMER_REAL, self.timeout)
            try:
                yield
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)

        return alarm()


@pytest.fixture(scope="session")
def student(request: pytest.FixtureRequest) -> Iterator[LocalStudent]:
    """Your code, called the way the grader calls it."""
    config = request.config
    root = config.rootpath
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    timeout = config.getoption("probe_timeout")
    if timeout is None:
        timeout = config.stash[_COURSE].probe_timeout
    yield LocalStudent(root, timeout)
    for name in [n for n in sys.modules if n == "minitorch" or n.startswith("minitorch.")]:
        del sys.modules[name]
    importlib.invalidate_caches()


# --------------------------------------------------------------------------- reports
def _faults(exc: BaseException) -> Iterator[BaseException]:
    inner = getattr(exc, "exceptions", None)
    if isinstance(inner, (list, tuple)) and inner:
        for e in inner:
            yield from _faults(e)
    else:
        yield exc


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if call.excinfo is not None and report.failed:
        notes = [str(n) for n in getattr(call.excinfo.value, "__notes__", []) or []]
        notes = [n for n in notes if n.startswith("Falsifying")]
        for fault in _faults(call.excinfo.value):
            if isinstance(fault, StudentFault):
                text = fault.headline()
                if isinstance(fault, StudentError) and fault.traceback:
                    text += "\nTraceback (your code, most recent call last):\n" + fault.traceback
                report.longrepr = "\n".join([text, *notes])
                break
    return report


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if not config.getoption("score_table"):
        return
    course = config.stash[_COURSE]
    # (passed, weight) per test; a test's weight comes from its task's `weights` table.
    passed: dict[str, list[tuple[bool, float]]] = {task: [] for task in course.tasks}
    for outcome in ("passed", "failed", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if report.when != "call" and not (outcome == "error" and report.when == "setup"):
                continue
            task = dict(getattr(report, "user_properties", [])).get("task")
            if task in passed:
                function = report.nodeid.split("::")[-1].split("[")[0]
                weight = float(course.tasks[task].get("weights", {}).get(function, 1.0))
                passed[task].append((outcome == "passed", weight))
    terminalreporter.section("score preview (public tests only)")
    terminalreporter.write_line(f"{'task':<6} {'title':<34} {'tests':>9} {'points':>15}")
    for task, results in passed.items():
        info = course.tasks[task]
        points = float(info.get("points", 0))
        total = sum(w for _, w in results)
        earned = points * sum(w for ok, w in results if ok) / total if total else 0.0
        count = sum(ok for ok, _ in results)
        terminalreporter.write_line(
            f"{task:<6} {str(info.get('title', ''))[:34]:<34} "
            f"{count:>4}/{len(results):<4} {earned:>7.2f}/{points:<7.2f}"
        )
    terminalreporter.write_line(
        "Hidden tests run only when your submission is graded; this is not your final score."
    )
