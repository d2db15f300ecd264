"""Grade one submission: locate -> stage -> pytest (trusted) -> score -> results.json.

Nothing a student does may cost the report: every failure below the CLI ends as a valid
results.json with a message (``error_results``) rather than a traceback.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.course.assignment import Assignment
from grader.course.secret import secret_path
from grader.errors import ConfigError, SubmissionError
from grader.grading import plugin
from grader.grading import results as results_json
from grader.grading.scoring import Scored, outcomes_from_json_report, score
from grader.grading.submission import Located, course_copy, locate, stage
from grader.isolation import SandboxConfig, StudentClient, defences, readable_by_others

__all__ = ["GradeResult", "grade", "grade_command", "older_python", "run_tests"]


@dataclass(frozen=True)
class GradeResult:
    results: dict[str, Any]  # the results.json document (validated)
    scored: Scored | None  # None when grading could not run at all
    pytest_output: str


def run_tests(
    assignment: Assignment,
    student_dir: Path,
    *,
    mode: str = "sandbox",
    extra_args: list[str] | None = None,
    include_hidden: bool = True,
) -> tuple[dict[str, Any], str, int]:
    """Run the assignment's tests against a staged folder in this (trusted) process.

    Returns pytest-json-report's report, pytest's terminal output and pytest's exit code.
    Plugin autoloading is off, so nothing installed (or planted) can join the run; the
    rootdir and ini are the grader's, never the submission's.
    """
    import pytest
    import pytest_jsonreport.plugin as json_report

    tests_dir = assignment.tests_dir
    files = [p for p in assignment.test_files(include_hidden) if p.is_file()]
    if not files:
        raise ConfigError(f"none of the test files of {assignment.name} exist under {tests_dir}")
    with tempfile.TemporaryDirectory(prefix="grader-pytest-") as private:
        ini = Path(private) / "pytest.ini"
        ini.write_text("[pytest]\n", encoding="utf-8")
        args = [
            *[str(p) for p in files],
            "-c",
            str(ini),
            "--rootdir",
            str(tests_dir),
            "--confcutdir",
            str(tests_dir),
            "-o",
            f"pythonpath={tests_dir}",
            "-p",
            "no:cacheprovider",
            # Student code runs in the worker, never here: nothing of theirs can leave an
            # unraisable exception in this process, and that plugin's five collections at
            # the end of the session cost 3% of a grade's CPU.
            "-p",
            "no:unraisableexception",
            "-q",
            "--no-header",
            "-rN",
            "--tb=short",
            "--json-report-file=none",
            "--student-dir",
            str(student_dir),
            "--student-mode",
            mode,
            "--assignment-toml",
            str(assignment.folder / "assignment.toml"),
            "--grading-profile",
            "grading",
            *(extra_args or []),
        ]
        report_plugin = json_report.JSONReport()
        buffer = io.StringIO()
        previous = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
        os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
        try:
            with contextlib.redirect_stdout(buffer):
                code = pytest.main(args, plugins=[plugin, json_report, report_plugin])
        finally:
            if previous is None:
                os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)
            else:
                os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = previous
    return report_plugin.report or {}, buffer.getvalue(), int(code)


def exposed_secrets(assignment: Assignment) -> list[Path]:
    """Course files student code could read where its worker gets no view of its own.

    Without a view (neither bubblewrap nor the kernel's namespaces work: inside a container,
    whose setup.sh makes everything of the grader's root-only) the worker sees the whole
    filesystem. What it must not read: the hidden tests, the reference, the course secret,
    the tests' support module (its grader-only tables), and the copies a checkout may hold
    (bundles under dist/, ``make demo``'s copies under out/, grader/tests/corpus/). As root
    the worker runs as another user, so only files readable by others are exposed;
    otherwise it runs as this very user and can read all of them.
    """
    root = assignment.root
    secrets = [p for p in assignment.test_files() if "hidden" in p.parts]
    secrets += sorted(assignment.reference_dir.glob("**/minitorch/*.py"))
    secrets += [secret_path(assignment)]
    secrets += [p for p in assignment.tests_dir.glob("*.py") if not p.name.startswith("test_")]
    for pattern in ("dist/*.zip", "out/**/*.py", "grader/tests/corpus/*"):
        secrets += sorted(root.glob(pattern))
    secrets = [p for p in secrets if p.is_file()]
    if os.geteuid() != 0:
        return secrets
    return [p for p in secrets if readable_by_others(p)]


#: What the visible report says of a problem met only by tests shown after the due date.
HIDDEN_PROBLEM = (
    "A problem occurred while a test shown after the due date ran; that test's output says "
    "what it was."
)

#: Submission-level statuses, most telling first: a submission gets the first that applies.
STATUSES = ("bad-submission", "empty", "import-error", "crashed", "timeout", "ok")


def grade_status(
    assignment: Assignment, located: Located, problems: Any
) -> tuple[str, list[str], list[str]]:
    """The submission's status for a TA's table, one message per cause for its report, and
    the report's notes.

    ``problems`` is what the plugin recorded (``student_problems`` in pytest's JSON report):
    files that did not import, calls that timed out, crashes, a spent budget, and notes
    (kind ``note``: an import of a package the runtime lacks) that are no failure: they
    change no status, one met only in a hidden test is not told at all, and one about a file
    that did not import is left out (the file's own message says what happened).
    """
    if not located.files:
        return (
            "empty",
            [
                "No editable file was found in the submission: "
                + ", ".join(assignment.editable)
                + " were expected (inside minitorch/ or at the top level)."
            ],
            [],
        )
    kinds: set[str] = set()
    messages: list[str] = []
    notes: list[str] = []
    hidden = False
    listed = [p for p in problems if isinstance(p, dict)] if isinstance(problems, list) else []
    failed = {str(p.get("key")) for p in listed if p.get("kind") == "import-error"}
    for problem in listed:
        kind, message = str(problem.get("kind", "")), str(problem.get("message", ""))
        if kind == "note":
            told = message and problem.get("hidden") is False
            if told and not any(message.startswith(f"Note: {rel} ") for rel in failed):
                notes.append(message)
        elif kind in STATUSES and message:
            kinds.add(kind)
            if problem.get("hidden") is False:
                messages.append(message)
            else:  # noticed only in tests students see after the due date: told there
                hidden = True
    if hidden:
        messages.append(HIDDEN_PROBLEM)
    if located.missing:
        kinds.add("import-error")
    status = next((s for s in STATUSES if s in kinds), "ok")
    return status, messages, notes


def older_python(assignment: Assignment) -> str | None:
    """A line for the instructor when this Python is older than the one the course says it
    grades with (its students are told a version their code does not get). It goes to the
    grader's log: on Gradescope the students would otherwise read it on every report."""
    stated = assignment.python
    if not stated or tuple(int(p) for p in stated.split(".")) <= sys.version_info[:2]:
        return None
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    return (
        f"assignment.toml says this course grades with Python {stated}, but this "
        f"grade ran on Python {here}: set [runtime] python to what the grading image has "
        "(students are told that version), or grade on a newer image."
    )


def use_course_copies(assignment: Assignment, located: Located, root: Path, mode: str) -> list[str]:
    """Put the course's copy in place of each fallback file of the student's that does not import.

    Module 1 grades the student's own operators.py and module.py (their module-1 code calls
    their own helpers there); only a copy that cannot be imported at all is replaced, so the
    tasks that need it still have something to run against. Returns the report's notes.
    """
    present = [rel for rel in assignment.fallback if rel in located.files]
    if not present:
        return []
    config = sandbox_config(assignment, root, mode)
    problems: dict[str, str] = {}
    with StudentClient(config) as client:
        for rel in present:
            problem = client.import_problem(Path(rel).stem)
            if problem is not None:
                problems[rel] = problem
    notes = []
    for rel, problem in problems.items():
        (root / rel).write_bytes(course_copy(assignment, rel))
        notes.append(f"{problem}\nGraded with the course's copy of {rel} instead.")
    return notes


def sandbox_config(assignment: Assignment, root: Path, mode: str) -> SandboxConfig:
    """How the worker for ``root`` runs, from the assignment (the plugin builds the same)."""
    return SandboxConfig(
        root=root,
        mode=mode,
        limits=assignment.limits,
        runtime=assignment.runtime,
        python=assignment.python,
    )


def _defence_notes(mode: str, assignment: Assignment, root: Path) -> dict[str, bool | str]:
    if mode != "sandbox":
        return {"separate_process": False}
    return defences(sandbox_config(assignment, root, mode))


def grade(
    submission: Path,
    assignment: Assignment,
    *,
    mode: str = "sandbox",
    extra_args: list[str] | None = None,
) -> GradeResult:
    """Grade one submission in this process (modes inprocess and sandbox)."""
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="grader-stage-"))
    try:
        try:
            located = locate(submission, assignment)
        except SubmissionError as exc:
            message = f"Your submission could not be read: {exc}"
            results = results_json.error_results(
                assignment,
                message,
                execution_time=time.monotonic() - started,
                extra={"status": "bad-submission", "problem": message},
            )
            results_json.validate_results(results)
            return GradeResult(results, None, "")
        try:
            return _grade_located(
                assignment, located, workdir, mode=mode, extra_args=extra_args, started=started
            )
        except ConfigError:
            raise  # the course's setup, not the submission: the TA must see it
        except Exception as exc:  # noqa: BLE001 - whatever happened, a valid report
            return _unfinished(assignment, exc, time.monotonic() - started)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _unfinished(assignment: Assignment, exc: BaseException, took: float) -> GradeResult:
    """The report of a grade that could not finish: zero, and said to be no judgement.

    Whatever the worker did (or what ran beside it), the grade ends in a valid report; a
    TA's table shows it as ``crashed`` with the reason, and a regrade is the remedy.
    """
    detail = f"{type(exc).__name__}: {exc}"[:500]
    message = (
        "Grading could not finish for this submission, so this is not a judgement of your "
        "code: please tell your instructor, who can regrade it. "
        f"(The grader stopped with {detail})"
    )
    results = results_json.error_results(
        assignment,
        message,
        execution_time=took,
        extra={"status": "crashed", "problem": message},
    )
    results_json.validate_results(results)
    return GradeResult(results, None, "")


def _grade_located(
    assignment: Assignment,
    located: Located,
    workdir: Path,
    *,
    mode: str,
    extra_args: list[str] | None,
    started: float,
) -> GradeResult:
    """Stage, run the tests, score: the part of a grade that runs student code."""
    root = stage(assignment, located, workdir / "stage")
    workdir.chmod(0o755)
    defences = _defence_notes(mode, assignment, root)
    if mode == "sandbox" and not defences.get("hidden_course_files"):
        exposed = exposed_secrets(assignment)
        if exposed:
            fix = (
                "make them private: chmod -R go-rwx "
                + " ".join(sorted({str(p.parent) for p in exposed}))
                if os.geteuid() == 0
                else "grade as root (the worker then runs as another user)"
            )
            raise ConfigError(
                "student code could read the course files here (hidden tests, reference, "
                "course secret and their copies): neither bubblewrap nor the kernel's "
                f"namespaces can give it a view of its own. Install bubblewrap, or {fix}"
            )
    notes = list(located.notes)
    notes += use_course_copies(assignment, located, root, mode)
    report, output, code = run_tests(assignment, root, mode=mode, extra_args=extra_args)
    outcomes = outcomes_from_json_report(report)
    status, problems, unavailable = grade_status(
        assignment, located, report.get("student_problems")
    )
    # The causes first, once: every test they stopped says only "not run: see above".
    messages = [*problems, *notes, *unavailable]
    absent = [p for p in assignment.test_files() if not p.is_file()]
    if absent:
        messages.append(
            "Instructor: these test files of assignment.toml are missing and were not run: "
            + ", ".join(str(p.relative_to(assignment.tests_dir)) for p in absent)
        )
    older = older_python(assignment)
    if older:  # the grader's log (an instructor's to read), not the students' report
        print(f"grader: {older}", file=sys.stderr)
    if code not in (0, 1) or not outcomes:
        messages.append(
            f"The test run ended abnormally (pytest exit code {code}); please tell "
            "your instructor. The tests that did run are scored."
        )
    extra = {
        "assignment": assignment.name,
        "status": status,
        "problem": "; ".join(p.splitlines()[0] for p in problems),
        "mode": mode,
        "defences": defences,
        "files": {
            **{rel: located.origins.get(rel, "missing") for rel in assignment.editable},
            **{rel: located.origins.get(rel, "course copy") for rel in assignment.fallback},
        },
    }
    scored = score(outcomes, assignment, tuple(messages), extra)
    results = results_json.to_results(scored, execution_time=time.monotonic() - started)
    results_json.validate_results(results)
    return GradeResult(results, scored, output)


def grade_command(
    submission: Path | str,
    assignment: str,
    out: Path | str,
    *,
    mode: str | None = None,
    extra: tuple[str, ...] | list[str] = (),
) -> list[str]:
    """The argv of one ``grader grade`` run in a fresh interpreter.

    Benchmarks, the flake hunt and the grading tests run the real command line, so each
    gets the same interpreter, flags and report file a TA's shell would.
    """
    argv = [sys.executable, "-m", "grader", "grade", str(submission), "-a", assignment]
    if mode is not None:
        argv += ["--mode", mode]
    return [*argv, "--out", str(out), *extra]
