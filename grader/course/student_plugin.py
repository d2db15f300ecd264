"""The test plugin of a student hand-out (shipped as ``pytest_minitorch/__init__.py``).

The hand-out's public tests are the grader's own tests, which reach the student's code
through the ``mt`` fixture: handles to the student's ``minitorch`` (grader/isolation/
handles.py), whose recorded operations an executor applies (grader/isolation/executor.py).
On Gradescope they cross into a sandboxed worker; here, on the student's machine, they are
ordinary calls in this process, so a traceback points
straight into the student's own files.
One module: it ships as its package's ``__init__`` (setup.cfg loads it with ``-p``), beside
copies of handles.py and executor.py whose import of protocol.py is pointed at this module
(grader/course/handout.py), so its fault classes are the hand-out's one set; it imports
nothing else of the grader.

A failure that no input changes (a function not written yet, a file that does not import)
is not shrunk, and is told once: the first test it stops shows it in full, every later one
says in one line what it waits on ("waits on Task 1.1: autodiff.central_difference"). No
report shows the chain of exceptions a check was raised from.

Besides the fixtures this module gives the tests' markers (``@pytest.mark.task("1.4")`` and
the course's ``task1_4`` spelling, so ``pytest -m task1_4`` works), ``--task 1.4``, the
hypothesis settings of a local run and of a grading run, and ``--score-table``.

It must stay standalone: the standard library, pytest and hypothesis only. The hand-out
build refuses anything else (grader/course/handout.py).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import signal
import sys
import threading
import traceback
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
PROFILES = ("grading", "student")


# --------------------------------------------------------------------------- faults
class StudentFault(Exception):
    """The student's code gave no usable value; the test that asked for it fails."""

    kind = "fault"
    #: Whether no other input changes this fault (a function not written yet, a file that
    #: does not import, a missing name, a call that hung): the example that found it is not
    #: shrunk, and the report tells it once (``cause``) and in one line in every other test
    #: it stops (``waits_on``). Set by the local runner (``LocalStudent``).
    stands = False
    cause = ""
    waits_on = ""

    def __init__(self, message: str, *, label: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.label = label

    def headline(self) -> str:
        return self.message

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "message": self.message, "label": self.label}
        if self.stands:
            data.update(stands=True, cause=self.cause, waits_on=self.waits_on)
        return data


class StudentError(StudentFault):
    """The student's code raised ``type_name: message``; ``traceback`` holds its frames."""

    kind = "error"

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

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "type": self.type_name, "traceback": self.traceback}


class ProbeTimeout(StudentFault):
    """The student's code ran longer than the time allowed for one call."""

    kind = "timeout"


class WorkerCrashed(StudentFault):
    """The process running the student's code died (never happens in this process)."""

    kind = "crash"


class BadValue(StudentFault):
    """The student's code returned something that is not plain data."""

    kind = "bad_value"


class BudgetExhausted(StudentFault):
    """The time budget of the whole run is spent (only when grading)."""

    kind = "budget"


_FAULTS: dict[str, type[StudentFault]] = {
    c.kind: c for c in (StudentFault, ProbeTimeout, WorkerCrashed, BadValue, BudgetExhausted)
}


def fault_from_json(data: dict[str, Any]) -> StudentFault:
    """A fault from its JSON form (``to_json``), standing or not as it was raised."""
    kind = data.get("kind")
    label = data.get("label") if isinstance(data.get("label"), str) else None
    message = str(data.get("message", ""))
    fault: StudentFault
    if kind == "error":
        type_name, frames = str(data.get("type", "Exception")), str(data.get("traceback", ""))
        fault = StudentError(type_name, message, frames, label=label)
    else:
        fault = _FAULTS.get(str(kind), StudentFault)(message, label=label)
    if data.get("stands"):
        fault.stands = True
        fault.cause, fault.waits_on = str(data.get("cause", "")), str(data.get("waits_on", ""))
        _met(fault)
    return fault


#: The standing faults the test running now was given (handles hand them over as values, so
#: a check may word one in its own message without raising it): see ``_student_fault``.
_MET: dict[str, StudentFault] = {}


def _met(fault: StudentFault) -> None:
    if len(_MET) < 64:
        _MET.setdefault(fault.cause, fault)


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
_STUDENT = pytest.StashKey["LocalStudent"]()
_HANDLES = pytest.StashKey[Any]()  # the `mt` fixture's handles.Session
# The faults the report told in full, by cause: {cause: the test that told it}.
_SHOWN = pytest.StashKey[dict[str, str]]()


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
    config.stash[_SHOWN] = {}
    # One line per failure in pytest's short summary, in CI too (GitHub Classroom runs the
    # tests with CI=true, where pytest would repeat each whole report there).
    if hasattr(config.option, "force_short_summary"):
        config.option.force_short_summary = True
    _load_hypothesis_profile(config, course)
    _no_shrinking_of_standing_faults()


def pytest_unconfigure(config: pytest.Config) -> None:
    _no_shrinking_of_standing_faults(undo=True)


def _load_hypothesis_profile(config: pytest.Config, course: _Course) -> None:
    """Derandomized settings for a grading run; more, fresh examples for a local run.

    Neither runs hypothesis' explain phase (as when grading): it re-ran a failing test
    hundreds of times to annotate an example that a check's own message never shows.
    """
    from hypothesis import HealthCheck, Phase, settings

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
        phases=[p for p in Phase if p.name != "explain"],
        suppress_health_check=list(HealthCheck),
    )
    settings.register_profile("grading", derandomize=True, database=None, **common)
    settings.register_profile("student", derandomize=False, **common)
    settings.load_profile(profile)


def _no_shrinking_of_standing_faults(undo: bool = False) -> None:
    """Hypothesis does not shrink a failure that no input changes: the example that found it
    is shown as it is, at once.

    Shrinking the NotImplementedError of an unwritten function cost a fresh hand-out's
    ``make test`` minutes: every smaller input fails the same way, and hypothesis tries
    hundreds. Which faults stand is decided where they are raised (``_standing``), and read
    here from the failing example's own exception. The grader skips shrinking through the
    same hook (grader/grading/shrinking.py) for the faults it knows stand; this copy stands
    alone. The hook is private to hypothesis, whose version the hand-out pins; a version
    without it shrinks as usual.
    """
    try:
        from hypothesis.internal.conjecture import engine
    except ImportError:  # pragma: no cover - another hypothesis
        return
    runner = getattr(engine, "ConjectureRunner", None)
    current = getattr(runner, "new_shrinker", None)
    if current is None:  # pragma: no cover - another hypothesis
        return
    original = getattr(current, "_minitorch_original", current)
    if undo:
        runner.new_shrinker = original  # type: ignore[union-attr]
        return

    def new_shrinker(self: Any, example: Any, *args: Any, **kwargs: Any) -> Any:
        shrinker = original(self, example, *args, **kwargs)
        fault = _student_fault(getattr(example, "expected_exception", None))
        if fault is not None and fault.stands:
            shrinker.shrink = lambda: None
        return shrinker

    new_shrinker._minitorch_original = original  # type: ignore[attr-defined]
    runner.new_shrinker = new_shrinker  # type: ignore[union-attr]


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
def _plain(value: Any, what: str) -> Any:
    """``value`` as the grader would receive it: numpy scalars made plain by the grader's
    own executor (``plain``), then plain data only, after a JSON round trip."""

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

    value = _companion("executor").plain(value)
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


# The hand-out's stubs raise NotImplementedError("Task 1.4: implement Mul.backward").
_STUB = re.compile(r"\bTask (\d+(?:\.\d+)*): implement (\S+)")
_TASK = re.compile(r"\bTask\s*(\d+(?:\.\d+)+)")


def _inside(filename: str, package: Path) -> bool:
    return filename.startswith(str(package) + "/") or filename.startswith(str(package) + "\\")


def _standing(exc: BaseException, package: Path) -> tuple[str, str] | None:
    """``(cause, line)`` when no other input would change ``exc``, else None.

    Such a fault is a function not written yet (NotImplementedError raised in the student's
    package), a file of the package that does not import, or a name the package lacks (an
    ImportError; an AttributeError of one of its modules or classes). The example that found it is
    the one to show: hypothesis would only spend minutes shrinking it to another input
    that fails the same way. ``cause`` tells one such fault from another; ``line`` says in
    one line what every test stopped by it waits on.
    """
    tb, last = exc.__traceback__, None
    importing: str | None = None
    while tb is not None:  # the student's frames, innermost last
        code = tb.tb_frame.f_code
        if _inside(code.co_filename, package):
            last = tb
            if code.co_name == "<module>":
                importing = code.co_filename
        tb = tb.tb_next
    text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
    what = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if isinstance(exc, NotImplementedError) and last is not None:
        stub = _STUB.search(str(exc))
        if stub:
            return f"stub:{stub[1]}:{stub[2]}", f"waits on Task {stub[1]}: {stub[2]}"
        code = last.tb_frame.f_code
        name = f"{Path(code.co_filename).stem}.{getattr(code, 'co_qualname', code.co_name)}"
        task = _TASK.search(str(exc))
        where = f"{code.co_filename}:{last.tb_lineno}"
        if task:
            return f"stub:{where}", f"waits on Task {task[1]}: {name}"
        return f"stub:{where}", f"waits on {name} (not written yet)"
    filename = getattr(exc, "filename", None) if isinstance(exc, SyntaxError) else None
    if isinstance(filename, str) and _inside(filename, package):
        importing = filename
    if importing is not None:
        rel = Path(importing).relative_to(package.parent).as_posix()
        return f"import:{rel}:{what}", f"waits on {rel}, which does not import ({what})"
    owner = getattr(exc, "obj", None) if isinstance(exc, AttributeError) else None
    owner_module = owner.__name__ if isinstance(owner, types.ModuleType) else None
    if isinstance(owner, type):
        owner_module = owner.__module__
    lacking = str(owner_module or "").partition(".")[0] == package.name
    if isinstance(exc, ImportError) or lacking:
        return f"name:{what}", f"waits on a name your package lacks ({what})"
    return None


class _Timeout(BaseException):
    """Raised by the alarm inside a call that ran too long."""


def _ring(signum: int = 0, frame: Any = None) -> None:
    """The alarm: one place raises ``_Timeout``, first time or repeat, so hypothesis sees
    the same failure each time."""
    raise _Timeout()


def _companion(name: str) -> types.ModuleType:
    """A grader module shipped in this package beside the plugin (``handles``, ``executor``)."""
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ImportError as exc:
        raise pytest.UsageError(
            f"the test tooling lacks {__name__}/{name}.py ({exc}); it comes with the "
            "hand-out: restore the pytest_minitorch folder from your assignment's repository"
        ) from None


class LocalStudent:
    """The student's code, run in this process as the grader runs it in its worker.

    ``run(message, label)`` applies a batch of handle operations with the grader's own
    executor to the real ``import minitorch`` (the ``mt`` fixture) and answers as the
    worker does. It keeps the grader's per-call deadline, gives the same faults and answers
    plain data only.
    """

    def __init__(self, root: Path, timeout: float) -> None:
        self.root = root
        self.package = root / "minitorch"
        self.timeout = timeout
        self._executor: Any = None
        #: Changes when a batch ran out of time: its objects are dropped, as when grading
        #: the worker is restarted (a handle's value made before is then lost).
        self.generation = 0
        #: The test running now (``pytest_runtest_call``), and the calls that hung in it:
        #: as when grading, a call that hung fails at once when its test calls it again.
        self.scope: str | None = None
        self._hung: dict[tuple[str | None, str], str] = {}

    @property
    def executor(self) -> Any:
        if self._executor is None:
            self._executor = _companion("executor").Executor(
                lambda: importlib.import_module("minitorch"), self._lacking
            )
        return self._executor

    def run(
        self, message: dict[str, Any], label: str, label_of: Callable[[int], str] | None = None
    ) -> dict[str, Any]:
        """Apply one batch of handle operations; answer as the grader's worker does:
        ``{"values": [...], "bad": {index: why}, "failed": {number: error or None}}``, an
        operation that raised with its error, one skipped (an input failed) with None. A
        batch that runs out of time is named by ``label_of`` the operation it stopped in."""
        executor = self.executor
        unknown = _companion("executor").UnknownHandle
        started = self.generation

        def stopped_in() -> tuple[str, int | None]:
            running = executor.running
            named = label_of(running) if label_of is not None and running is not None else ""
            return (named, running) if named else (label, None)

        try:
            with self._guarded(label, label, restart=True, stopped_in=stopped_in):
                answer: dict[str, Any] = executor.answer(
                    message,
                    self._error_json,
                    lambda obj: _plain(obj, "the value"),
                    BadValue,
                    (KeyboardInterrupt, _Timeout),
                )
        except unknown as exc:  # a handle whose object a deadline dropped
            raise StudentError(type(exc).__name__, str(exc), label=label) from None
        finally:
            if self.generation != started:
                executor.reset()
        return answer

    def _error_json(self, exc: BaseException) -> dict[str, Any]:
        """What the executor keeps for an operation that raised ``exc``."""
        if not isinstance(exc, Exception):  # the deadline, Ctrl-C, sys.exit: not a value
            raise exc
        return self._student_error(exc, None).to_json()

    def _student_error(self, exc: BaseException, label: str | None) -> StudentError:
        """``exc`` as the student's fault: their own frames, and whether it stands."""
        frames = _student_frames(exc.__traceback__, self.package)
        if isinstance(exc, SyntaxError) and _inside(str(exc.filename), self.package):
            rel = Path(str(exc.filename)).relative_to(self.root).as_posix()
            frames += f'\n  File "{rel}", line {exc.lineno}\n    {(exc.text or "").strip()}'
        error = StudentError(type(exc).__name__, str(exc), frames.strip("\n"), label=label)
        standing = _standing(exc, self.package)
        if standing is not None:
            error.stands = True
            error.cause, error.waits_on = standing
        return error

    @staticmethod
    def _lacking(name: str) -> BaseException:
        """``minitorch.<name>`` of a package without it (the executor asks)."""
        package = sys.modules.get("minitorch")
        text = f"module 'minitorch' has no attribute '{name}'"
        return AttributeError(text, name=name, obj=package)

    @contextmanager
    def _guarded(
        self,
        what: str,
        label: str | None,
        restart: bool = False,
        stopped_in: Callable[[], tuple[str, int | None]] | None = None,
    ) -> Iterator[None]:
        """Run the body under the per-call deadline. A call that ran out of time is a
        ProbeTimeout that stands (and, with ``restart``, its objects are dropped); asked
        again in the same test, it fails at once, the same way. ``stopped_in`` names the
        operation a batch hung in (and its number), when it knows."""
        repeat = (self.scope, what) in self._hung
        try:
            if repeat:
                _ring()
            with self._deadline():
                yield
        except _Timeout:
            op = None
            if stopped_in is not None and not repeat:
                what, op = stopped_in()
            message = self._hung.get((self.scope, what)) or (
                f"timed out after {self.timeout:g} s in {what} (an infinite loop?)"
            )
            self._hung[self.scope, what] = message
            if restart and not repeat:
                self.generation += 1
            fault = ProbeTimeout(message, label=label)
            fault.op = op  # type: ignore[attr-defined]
            fault.stands, fault.cause = True, f"timeout:{message}"
            fault.waits_on = message.replace(" (an infinite loop?)", "")
            _met(fault)
            raise fault from None

    @staticmethod
    def _can_alarm() -> bool:
        return (
            hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
        )

    @contextmanager
    def _deadline(self) -> Iterator[None]:
        if self.timeout <= 0 or not self._can_alarm():
            yield
            return

        previous = signal.signal(signal.SIGALRM, _ring)
        signal.setitimer(signal.ITIMER_REAL, self.timeout)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="session")
def _minitorch_local(request: pytest.FixtureRequest) -> Iterator[LocalStudent]:
    """The one runner of the student's code in this process, behind ``mt``."""
    config = request.config
    root = config.rootpath
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    timeout = config.getoption("probe_timeout")
    if timeout is None:
        timeout = config.stash[_COURSE].probe_timeout
    local = LocalStudent(root, timeout)
    config.stash[_STUDENT] = local
    yield local
    del config.stash[_STUDENT]
    for name in [n for n in sys.modules if n == "minitorch" or n.startswith("minitorch.")]:
        del sys.modules[name]
    importlib.invalidate_caches()


@pytest.fixture(scope="session")
def mt(request: pytest.FixtureRequest, _minitorch_local: LocalStudent) -> Iterator[Any]:
    """A handle to your ``minitorch`` package, as the grader's tests hold it: what a test
    does with it runs your code (in this process) when the test asks for a value. Each
    test starts with no objects."""
    session = _companion("handles").Session(
        _minitorch_local.run, lambda: _minitorch_local.generation
    )
    request.config.stash[_HANDLES] = session
    yield session.package()
    del request.config.stash[_HANDLES]


# --------------------------------------------------------------------------- reports
def _faults(exc: BaseException) -> Iterator[BaseException]:
    inner = getattr(exc, "exceptions", None)
    if isinstance(inner, (list, tuple)) and inner:
        for e in inner:
            yield from _faults(e)
    else:
        yield exc


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it was raised from or while handling, innermost last."""
    seen: BaseException | None = exc
    for _ in range(16):
        if seen is None:
            return
        yield seen
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)


def _student_fault(exc: BaseException | None) -> StudentFault | None:
    """The student's fault behind a test's failure: the failure itself, the fault a check
    caught and worded (``support.raised``), or a standing fault the test was given
    (``outcomes``) whose message the check's own message quotes."""
    if exc is None:
        return None
    for top in _faults(exc):
        for seen in _chain(top):
            if isinstance(seen, StudentFault):
                return seen
    told = "\n".join(str(top) for top in _faults(exc) if isinstance(top, pytest.fail.Exception))
    for fault in _MET.values() if told else ():
        if fault.message and fault.message in told:
            return fault
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Tell the runner which test runs now (its memory of hung calls is per test), and
    start the test's handles afresh, as the grader does."""
    _MET.clear()
    local = item.config.stash.get(_STUDENT, None)
    if local is not None:
        local.scope = item.nodeid
    session = item.config.stash.get(_HANDLES, None)
    if session is not None:
        session.reset()
        _companion("handles").reset_each_example(getattr(item, "obj", None), session)


def _render(exc: BaseException, shown: dict[str, str], test: str) -> str | None:
    """A failure's report: one block per cause, no chained exceptions; None keeps pytest's.

    A fault no input changes (a function not written yet, a file that does not import) is
    told in full by the first test it stops, and in one line by every later one ("waits on
    Task 1.1: autodiff.central_difference"). A check's own message (``pytest.fail(msg,
    pytrace=False)``: the inputs, what came back, what was expected, a reproducer) is shown
    alone, without the exceptions it was raised while handling.
    """
    fault = _student_fault(exc)
    first = ""
    if fault is not None and fault.stands:
        if fault.cause in shown:
            return f"{fault.waits_on} (see {shown[fault.cause]} above)"
        shown[fault.cause] = test
        if not fault.headline().startswith(fault.waits_on):  # a timeout says it already
            first = fault.waits_on + "\n"
    # Hypothesis' example, the only record of the inputs of a fault raised straight
    # through a test (without the fixture's line); none when no input changes the fault.
    notes = [] if fault is not None and fault.stands else _example_notes(exc)
    for top in _faults(exc):
        if isinstance(top, StudentFault):
            return first + _told(top, notes)
        if isinstance(top, pytest.fail.Exception) and not top.pytrace:
            if first or len(list(_chain(top))) > 1:
                return first + str(top.msg)
    if first and fault is not None:  # a check that caught it failed in another way
        return first + _told(fault, notes)
    return None


def _example_notes(exc: BaseException) -> list[str]:
    notes = [str(n) for n in getattr(exc, "__notes__", []) or []]
    return [
        "\n".join(
            line for line in n.splitlines() if not line.strip().startswith(("student=", "mt="))
        )
        for n in notes
        if n.startswith("Falsifying")
    ]


def _told(fault: StudentFault, notes: list[str]) -> str:
    """The fault, its traceback in the student's own files, hypothesis' ``notes`` and (when
    the test read it through ``values``) the lines that rebuild the call it came from."""
    text = fault.headline()
    if isinstance(fault, StudentError) and fault.traceback:
        text += "\nTraceback (your code, most recent call last):\n" + fault.traceback
    return "\n".join([text, *notes, *_reproduce(getattr(fault, "reproduce", None))])


def _reproduce(lines: object) -> list[str]:
    """A report's "To reproduce:" block for reproducer ``lines`` (none when there are none):
    those of a fault ``handles.values`` raised, or of the values a failing assert read."""
    if not isinstance(lines, list) or not lines:
        return []
    return ["To reproduce:", *(f"    {line}" for line in lines)]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if call.excinfo is not None and report.failed:
        shown = item.config.stash.setdefault(_SHOWN, {})
        exc = call.excinfo.value
        text = _render(exc, shown, getattr(item, "name", item.nodeid))
        session = item.config.stash.get(_HANDLES, None)
        lines = session.read_lines() if session is not None and text is None else []
        if lines and isinstance(exc, AssertionError):
            # A plain assert over handles, told as the grader tells it: its message, and
            # the lines that rebuild the values the failing example read.
            message = str(exc).strip() or "a check failed"
            text = "\n".join([message, *_example_notes(exc), *_reproduce(lines)])
        if text is not None:
            report.longrepr = text
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
