"""pytest plugin: the ``mt`` fixture (over the session's ``student`` client), the ``task``
marker and student-facing failures.

It is active only when a student folder is given (``--student-dir`` or the ``student_dir``
ini key), so having it installed never changes other test runs. The same assignment tests run
unchanged whether the worker is in-process (students' ``make test``) or sandboxed (grading).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from grader.grading.shrinking import bound_shrinking, no_local_constants
from grader.isolation.protocol import BudgetExhausted, ProbeTimeout, StudentError, StudentFault

MODES = ("inprocess", "sandbox")
PROFILES = ("grading", "student")


@dataclass
class _State:
    """Per-session plugin state, kept in ``config.stash`` (no module globals)."""

    root: Path
    mode: str
    profile: str
    assignment: Any = None  # grader.course.assignment.Assignment, when --assignment-toml is given
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    client: Any = None  # the session's StudentClient, once a test asked for it
    handles: Any = None  # the session's handles.Session, once a test asked for ``mt``
    shown: set[str] = field(default_factory=set)  # causes whose full message a test showed


_STATE = pytest.StashKey[_State]()


# --------------------------------------------------------------------------- options
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("minitorch-grader", "MiniTorch grader")
    group.addoption("--student-dir", help="folder that holds the student's minitorch/")
    group.addoption("--student-mode", choices=MODES, help="where student code runs")
    group.addoption("--grading-profile", choices=PROFILES, help="hypothesis settings profile")
    group.addoption("--max-examples", type=int, help="hypothesis examples per test")
    group.addoption("--grading-seed", type=int, help="explore with this seed (flake hunts)")
    group.addoption("--probe-timeout", type=float, help="seconds allowed per batch of calls")
    group.addoption("--import-timeout", type=float, help="seconds allowed per file import")
    group.addoption("--grading-budget", type=float, help="seconds allowed for all calls")
    group.addoption("--task", action="append", help="run only the tests of this task (repeat)")
    group.addoption("--assignment-toml", help="assignment.toml for limits, budget and points")
    group.addoption("--score-table", action="store_true", help="print a per-task score preview")
    group.addoption("--call-log", help="append every call and answer to this file")
    group.addoption(
        "--no-shrink", action="store_true", help="report the first failing example unshrunk"
    )
    parser.addini("student_dir", "folder that holds the student's minitorch/")
    parser.addini("student_mode", "where student code runs: inprocess or sandbox")
    parser.addini("grading_profile", "hypothesis settings profile: grading or student")
    parser.addini("assignment_toml", "assignment.toml for limits, budget and points")


def _opt(config: pytest.Config, name: str, ini: str | None = None) -> Any:
    value = config.getoption(name)
    if value in (None, "") and ini:
        value = config.getini(ini) or None
    return value


def _resolve_path(config: pytest.Config, value: str) -> Path:
    path = Path(value)
    if not path.is_absolute():
        path = config.rootpath / path
    return path.resolve()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "task(id): the assignment task this test scores for (e.g. '1.4')"
    )
    student_dir = _opt(config, "student_dir", "student_dir")
    if not student_dir:
        return
    root = _resolve_path(config, student_dir)
    if not (root / "minitorch").is_dir():
        raise pytest.UsageError(f"--student-dir {root} does not contain a minitorch/ folder")
    mode = _opt(config, "student_mode", "student_mode") or "sandbox"
    if mode not in MODES:
        raise pytest.UsageError(f"student mode {mode!r} is not one of {MODES}")
    profile = _opt(config, "grading_profile", "grading_profile") or "grading"
    if profile not in PROFILES:
        raise pytest.UsageError(f"grading profile {profile!r} is not one of {PROFILES}")
    state = _State(root=root, mode=mode, profile=profile)
    toml = _opt(config, "assignment_toml", "assignment_toml")
    if toml:
        from grader.course.assignment import load_assignment

        try:
            state.assignment = load_assignment(_resolve_path(config, toml))
        except Exception as exc:  # ConfigError; shown as a usage error
            raise pytest.UsageError(str(exc)) from exc
    config.stash[_STATE] = state
    config.pluginmanager.register(_Recorder(state), _RECORDER)
    _load_hypothesis_profile(config, state)


def _load_hypothesis_profile(config: pytest.Config, state: _State) -> None:
    """Deterministic settings for grading; a more exploring profile for students' runs."""
    from hypothesis import HealthCheck, Phase, settings

    grading = state.profile == "grading"
    examples = config.getoption("max_examples")
    if examples is None and state.assignment is not None:
        a = state.assignment
        examples = a.max_examples if grading else a.local_max_examples
    if examples is None:
        examples = 50 if grading else 100
    seed = config.getoption("grading_seed")
    if seed is None and grading and state.assignment is not None:
        # Repeatable for the same files, unpredictable to students, different for every
        # submission (grader/secret.py).
        from grader.course.secret import course_secret, grading_seed, submission_digest

        # Without a course secret the seed is public, but still one per submission: a table
        # of examples cannot be built into the very files whose digest draws them.
        a = state.assignment
        files = submission_digest(state.root, [*a.editable, *a.fallback])
        seed = grading_seed(course_secret(a) or b"", a.name, files)
    common = dict(
        deadline=None,
        max_examples=examples,
        print_blob=False,
        report_multiple_bugs=False,
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target)
        + (() if config.getoption("no_shrink") else (Phase.shrink,)),
        suppress_health_check=list(HealthCheck),
    )
    settings.register_profile(
        "grading",
        derandomize=seed is None,
        database=None,
        **common,  # type: ignore[arg-type]
    )
    settings.register_profile("student", derandomize=False, **common)  # type: ignore[arg-type]
    settings.load_profile(state.profile)
    no_local_constants()
    if grading and state.assignment is not None:
        bound_shrinking(
            state.assignment.shrink_calls,
            state.assignment.shrink_seconds,
            lambda: state.client is not None and state.client.fault_stands,
        )
    if seed is not None:
        import hypothesis.core

        # The public route is pytest's --hypothesis-seed, which needs hypothesis' own plugin;
        # trusted runs disable plugin autoloading, so set the same switch it sets.
        hypothesis.core.global_force_seed = seed  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- collection
def _task_of(item: pytest.Item) -> str | None:
    marks = list(item.iter_markers("task"))
    if not marks or not marks[0].args:
        return None
    return str(marks[0].args[0])


def _title_of(item: pytest.Item) -> str:
    fn = getattr(item, "function", None)
    doc = (getattr(fn, "__doc__", None) or "").strip()
    title = doc.splitlines()[0].strip() if doc else item.name
    params = getattr(item, "callspec", None)
    if params is not None:
        title += f" [{params.id}]"
    return title


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _STATE not in config.stash:
        return
    missing = [item.nodeid for item in items if _task_of(item) is None]
    if missing:
        raise pytest.UsageError(
            "every assignment test needs @pytest.mark.task('<id>'); missing on: "
            + ", ".join(missing[:5])
        )
    for item in items:
        item.user_properties.append(("task", _task_of(item)))
        item.user_properties.append(("title", _title_of(item)))
    # Every visible test runs before every hidden one: what student code learns while a
    # hidden test runs can then reach no visible test's output.
    items.sort(key=_hidden)
    wanted = config.getoption("task")
    if wanted:
        keep = [i for i in items if _task_of(i) in wanted]
        drop = [i for i in items if _task_of(i) not in wanted]
        if drop:
            config.hook.pytest_deselected(items=drop)
        items[:] = keep


# --------------------------------------------------------------------------- fixture
@pytest.fixture(scope="session")
def student(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """The session's client for the student's code (a worker); ``mt`` sends its batches of
    operations through it."""
    from grader.course.assignment import Limits
    from grader.isolation import SandboxConfig, StudentClient

    config = request.config
    if _STATE not in config.stash:
        pytest.fail("the student fixture needs --student-dir", pytrace=False)
    state = config.stash[_STATE]
    limits = state.assignment.limits if state.assignment is not None else Limits()
    overrides = {
        key: config.getoption(opt)
        for opt, key in (
            ("probe_timeout", "probe_timeout"),
            ("import_timeout", "import_timeout"),
            ("grading_budget", "budget"),
        )
        if config.getoption(opt) is not None
    }
    log = config.getoption("call_log")
    client = StudentClient(
        SandboxConfig(
            root=state.root,
            mode=state.mode,
            limits=dataclasses.replace(limits, **overrides),
            call_log=Path(log) if log else None,
            **(
                {"runtime": state.assignment.runtime, "python": state.assignment.python}
                if state.assignment is not None
                else {}
            ),
        )
    )
    state.client = client
    yield client
    client.close()


@pytest.fixture(scope="session")
def mt(request: pytest.FixtureRequest, student: Any) -> Any:
    """A handle to the student's ``minitorch`` package (grader.isolation.handles).

    Operations on it are recorded here and run in the worker when a value is asked for;
    each test starts with no objects (the plugin resets the session before it runs).
    """
    from grader.isolation.handles import Session

    state = request.config.stash[_STATE]
    state.handles = Session(student.run, lambda: student.generation)
    return state.handles.package()


# --------------------------------------------------------------------------- reports
def _flatten(exc: BaseException) -> list[BaseException]:
    inner = getattr(exc, "exceptions", None)
    if isinstance(inner, (list, tuple)) and inner:
        out: list[BaseException] = []
        for e in inner:
            out.extend(_flatten(e))
        return out
    return [exc]


def _example_notes(exc: BaseException) -> list[str]:
    """Hypothesis' falsifying example, without the fixture line (it is not an input)."""
    notes = [str(n) for n in getattr(exc, "__notes__", []) or []]
    return [
        "\n".join(
            line for line in n.splitlines() if not line.strip().startswith(("student=", "mt="))
        )
        for n in notes
        if n.startswith("Falsifying")
    ]


def _repeated(fault: StudentFault, shown: set[str]) -> str | None:
    """One line for a fault whose cause the report already tells, else None.

    A file that does not import, a call that hangs or the spent budget fail every test that
    needs them. The report's top names each of them; a file that did not import is then one
    line in every test, while the first test stopped by a hang or the budget shows the whole
    story and the rest say so in a line instead of repeating it thirty times.
    """
    import re

    if isinstance(fault, StudentError) and fault.type_name == "ImportError":
        found = re.match(r"(minitorch/\w+\.py)\b", fault.message)
        if not found:
            return None
        # The report's top says which file and why (runner.grade_status): every test, the
        # first included, says it in one line.
        return f"not run: {found.group(1)} did not import (see above)"
    elif isinstance(fault, ProbeTimeout):
        key, line = (
            f"timeout:{fault.message}",
            "not run: the same call timed out before (see above)",
        )
    elif isinstance(fault, BudgetExhausted):
        key, line = "budget", "not run: the time budget was used up (see above)"
    else:
        return None
    if key in shown:
        return line
    shown.add(key)
    return None


def _reproduce(lines: object) -> list[str]:
    """A report's "To reproduce:" block for reproducer ``lines`` (none when there are none):
    those of a fault ``handles.values`` raised, or of the values a failing assert read."""
    if not isinstance(lines, list) or not lines:
        return []
    return ["To reproduce:", *(f"    {line}" for line in lines)]


def render_failure(exc: BaseException, shown: set[str] | None = None) -> str | None:
    """A short message for a student, or None to keep pytest's own report.

    Student faults show what their code did (with their own frames only) and hypothesis'
    falsifying example, their only record of the inputs; explicit check failures
    (``pytest.fail(msg, pytrace=False)``) already name what was called, with what, and how to
    reproduce it, so they show the check's message alone, without hypothesis' output.
    """
    candidates = _flatten(exc)
    notes = _example_notes(exc)
    for candidate in candidates:
        notes = notes or _example_notes(candidate)
    for candidate in candidates:
        if isinstance(candidate, StudentFault):
            repeated = _repeated(candidate, shown) if shown is not None else None
            if repeated is not None:
                return repeated
            text = candidate.headline()
            if isinstance(candidate, StudentError) and candidate.traceback:
                text += "\nTraceback (your code, most recent call last):\n" + candidate.traceback
            return "\n".join([text, *notes, *_reproduce(getattr(candidate, "reproduce", None))])
    for candidate in candidates:
        if isinstance(candidate, pytest.fail.Exception) and not candidate.pytrace:
            # A check that words a student fault itself (support.ask) keeps it as context,
            # perhaps behind a check that added a line to it (support.pointing).
            context = candidate.__cause__ or candidate.__context__
            while isinstance(context, pytest.fail.Exception):
                context = context.__cause__ or context.__context__
            if isinstance(context, StudentFault) and shown is not None:
                repeated = _repeated(context, shown)
                if repeated is not None:
                    return repeated
            return str(candidate.msg)
    return None


def _told_above(state: _State, exc: BaseException) -> bool:
    """Whether what stopped a test (``exc``, or a fault it was raised from) is a problem the
    report's visible top tells: one a visible test ran into too."""
    from grader.isolation.protocol import clip

    client = state.client
    if client is None:
        return False
    visible = {p.message for p in client.problems.values() if not p.hidden}
    for candidate in _flatten(exc):
        seen: BaseException | None = candidate
        for _ in range(8):
            if seen is None:
                break
            if isinstance(seen, StudentFault) and clip(seen.message, 2000) in visible:
                return True
            seen = seen.__cause__ or seen.__context__
    return False


def _hidden(item: pytest.Item) -> bool:
    """Whether students do not see ``item`` yet (a hidden test file, or the assignment's
    visibility for that test says so)."""
    in_hidden_file = "hidden" in item.path.parts
    state = item.config.stash.get(_STATE, None)
    if state is None or state.assignment is None:
        return in_hidden_file
    function = getattr(item, "originalname", None) or item.name
    return state.assignment.visibility(function, in_hidden_file) != "visible"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Tell the client which test runs now (its memory of hung calls is per test)."""
    if _STATE in item.config.stash and item.config.stash[_STATE].client is not None:
        client = item.config.stash[_STATE].client
        client.scope = item.nodeid
        client.hidden_scope = _hidden(item)
        client.fault_stands = False
    if _STATE in item.config.stash and item.config.stash[_STATE].handles is not None:
        from grader.isolation.handles import reset_each_example

        item.config.stash[_STATE].handles.reset()
        reset_each_example(getattr(item, "obj", None), item.config.stash[_STATE].handles)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if _STATE not in item.config.stash:
        return report
    if call.excinfo is not None and report.failed:
        # A hidden test tells its whole story in its own output when what stopped it is not
        # told at the report's visible top (then "see above" would point at nothing).
        state = item.config.stash[_STATE]
        told = not _hidden(item) or _told_above(state, call.excinfo.value)
        text = render_failure(call.excinfo.value, state.shown if told else None)
        exc = call.excinfo.value
        if text is None and isinstance(exc, AssertionError) and state.handles is not None:
            # A plain assert over handles: its message, and the lines that rebuild the values
            # the failing example read (the recorded operations), never the test's source.
            lines = state.handles.read_lines()
            message = str(exc).strip() or "a check failed"
            text = "\n".join([message, *_example_notes(exc), *_reproduce(lines)])
        if text is None and _hidden(item):
            # pytest's own report would quote the hidden test's source lines.
            exc = call.excinfo.value
            text = (
                f"this check stopped with {type(exc).__name__} before it could judge; "
                "please tell your instructor (the test's code is not shown: it is hidden)"
            )
        if text is not None:
            report.longrepr = text
    return report


class _Recorder:
    """Remembers each test's outcome for the local score preview (``--score-table``).

    Registered only when the plugin is active, and unregistered with the config.
    """

    def __init__(self, state: _State) -> None:
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        entry = self.state.outcomes.setdefault(
            report.nodeid, {"outcome": "passed", "message": "", "duration": 0.0}
        )
        entry["duration"] += report.duration
        if report.failed:
            entry["outcome"] = "failed" if report.when == "call" else "error"
            entry["message"] = str(report.longrepr)
        elif report.skipped and entry["outcome"] == "passed":
            entry["outcome"] = "skipped"
        for key, value in report.user_properties:
            entry[key] = value

    @pytest.hookimpl(optionalhook=True)
    def pytest_json_modifyreport(self, json_report: dict[str, Any]) -> None:
        """Hand the causes that stopped student code to the grader (pytest-json-report)."""
        client = self.state.client
        problems = list(client.problems.values()) if client is not None else []
        json_report["student_problems"] = [p.to_json() for p in problems]

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        if not config.getoption("score_table"):
            return
        if self.state.assignment is None:
            terminalreporter.write_line("--score-table needs --assignment-toml", red=True)
            return
        from grader.grading.scoring import outcomes_from_plugin, score

        scored = score(outcomes_from_plugin(self.state.outcomes), self.state.assignment)
        terminalreporter.section("score preview (public tests only)")
        for row in scored.task_rows():
            terminalreporter.write_line(row)
        terminalreporter.write_line(
            "Hidden tests run only when your submission is graded; this is not your final score."
        )


_RECORDER = "minitorch-grader-recorder"


def pytest_unconfigure(config: pytest.Config) -> None:
    recorder = config.pluginmanager.get_plugin(_RECORDER)
    if recorder is not None:
        config.pluginmanager.unregister(recorder)
