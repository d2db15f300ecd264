"""The assignment tests against the corpus, quickly: in-process student mode, one pytest run
per submission (in a subprocess, so each submission gets a fresh interpreter).

Every buggy entry (grader/tests/corpus/buggy.toml) must fail at least one test of its own
task and no test of any other task; every correct entry (correct.toml) and the reference
must pass everything. The grading-level twin of this test (full `grader grade` runs) lives
with the grading core.

Run only the corpus:  .venv/bin/python -m pytest grader/tests/test_corpus_inprocess.py -q
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from grader.course.assignment import load_assignment
from grader.evidence.mutations import Entry, apply_mutations, load_corpus

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"
TESTS = ROOT / "tests"

MODULE_OF_TASK = {
    "0.1": "module0",
    "0.3": "module0",
    "0.4": "module0",
    "1.1": "module1",
    "1.2": "module1",
    "1.3": "module1",
    "1.4": "module1",
    "2.1": "module2",
    "2.2": "module2",
    "2.3": "module2",
    "2.4": "module2",
}
TEST_FILES = {
    "module0": [
        "test_operators.py",
        "test_module.py",
        "hidden/test_operators_hidden.py",
        "hidden/test_module_hidden.py",
    ],
    "module1": [
        "test_autodiff.py",
        "test_scalar.py",
        "hidden/test_autodiff_hidden.py",
        "hidden/test_scalar_hidden.py",
    ],
    "module2": ["test_tensor_data.py", "test_tensor.py", "hidden/test_tensor_hidden.py"],
}
BUGGY = load_corpus(CORPUS / "buggy.toml")
CORRECT = load_corpus(CORPUS / "correct.toml")
EDITABLE = {m: set(load_assignment(m).editable) for m in TEST_FILES}
# Module 1 grades the student's own operators.py and module.py when present (a module-1
# repository carries its module-0 files), so edits of those count for module 1 too.
EDITABLE["module1"] |= EDITABLE["module0"]
# Module 2 likewise grades the student's module-0 files and module-1 autodiff.py.
EDITABLE["module2"] |= set(load_assignment("module2").fallback)

pytestmark = pytest.mark.evidence  # the full evidence: make test-all


def modules_touched(entry: Entry) -> list[str]:
    """The modules whose graded files the entry edits.

    A module is graded on its editable files only (module 1 also on the student's own
    operators.py and module.py), so an entry that leaves them alone cannot change its grade.
    """
    files = {edit["file"] for edit in entry.edits}
    return [m for m in TEST_FILES if files & EDITABLE[m]]


CORRECT_RUNS = [(e, m) for e in CORRECT for m in modules_touched(e)]


def failures_by_task(submission: Path, module: str, tmp_path: Path) -> dict[str, list[str]]:
    """Run the module's tests (public and hidden) on ``submission`` in-process mode.

    Returns {task: [failed test ids]} for every task that has a test (empty lists for tasks
    whose tests all passed). After a task's first failure its other tests are skipped
    (corpus_first_failure.py): the ids list that first failure.
    """
    report = tmp_path / f"{module}.json"
    files = [str(TESTS / f) for f in TEST_FILES[module] if (TESTS / f).exists()]
    here = str(CORPUS.parent)  # for -p corpus_first_failure
    env = {
        **os.environ,
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")])),
    }
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        *files,
        "-p",
        "grader.grading.plugin",
        "-p",
        "pytest_jsonreport.plugin",
        "-p",
        "corpus_first_failure",  # a task's first failure answers for the whole task
        "--student-dir",
        str(submission),
        "--student-mode",
        "inprocess",
        "-o",
        f"pythonpath={TESTS}",
        "--rootdir",
        str(tmp_path),
        "-c",
        os.devnull,
        "-q",
        "--no-header",
        "-p",
        "no:cacheprovider",
        "--json-report",
        f"--json-report-file={report}",
        "--json-report-omit",
        "log",
        "--no-shrink",  # only pass/fail per task matters here, not minimal examples
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    if not report.exists():
        raise AssertionError(f"pytest did not write a report:\n{proc.stdout}\n{proc.stderr}")
    data = json.loads(report.read_text())
    if data.get("exitcode") not in (0, 1):
        raise AssertionError(f"pytest exit code {data.get('exitcode')}:\n{proc.stdout[-3000:]}")
    result: dict[str, list[str]] = defaultdict(list)
    for test in data["tests"]:
        props = {k: v for p in test.get("user_properties", []) for k, v in p.items()}
        task = props.get("task", "?")
        result.setdefault(task, [])
        if test["outcome"] not in ("passed", "skipped"):
            result[task].append(test["nodeid"].split("::")[-1])
    return dict(result)


def _materialize(entry: Entry, module: str, tmp_path: Path) -> Path:
    return submission_of(entry.edits, module, tmp_path / "submission")


def submission_of(edits: list[dict[str, Any]], module: str, out: Path) -> Path:
    """The reference with ``edits``, as a folder the in-process mode grades. A module with a
    reference layer (module 2) also gets its provided files (tensor.py, its __init__), as
    ``stage`` adds them when grading; modules 0 and 1 import without theirs."""
    assignment = load_assignment(module)
    folder = apply_mutations(ROOT / "reference", edits, out, assignment.reference_layer)
    if assignment.reference_layer:
        for rel in assignment.provided:
            if not (folder / rel).exists():
                shutil.copyfile(assignment.reference_file(rel), folder / rel)
    return folder


@pytest.fixture(scope="module")
def corpus_failures(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Any]:
    """Every (entry, module) of the corpus run once, two at a time (2 cores here)."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(e, MODULE_OF_TASK[e.task]) for e in BUGGY]
    jobs += CORRECT_RUNS

    def run(job: tuple[Entry, str]) -> Any:
        entry, module = job
        tmp = tmp_path_factory.mktemp(f"{entry.name}-{module}")
        try:
            return failures_by_task(_materialize(entry, module, tmp), module, tmp)
        except AssertionError as exc:  # reported by the test of that entry
            return exc

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, jobs))
    return {(e.name, m): r for (e, m), r in zip(jobs, results, strict=True)}


def _failed(corpus_failures: dict[tuple[str, str], Any], name: str, module: str) -> dict:
    result = corpus_failures[(name, module)]
    if isinstance(result, AssertionError):
        raise result
    return result


@pytest.mark.slow
@pytest.mark.parametrize("entry", BUGGY, ids=[e.name for e in BUGGY])
def test_buggy_entry_loses_points_only_in_its_task(
    entry: Entry, corpus_failures: dict[tuple[str, str], Any]
) -> None:
    failed = _failed(corpus_failures, entry.name, MODULE_OF_TASK[entry.task])
    assert failed.get(entry.task), f"{entry.name}: no test of task {entry.task} failed"
    others = {task: ids for task, ids in failed.items() if task != entry.task and ids}
    assert not others, f"{entry.name} ({entry.task}) also failed other tasks: {others}"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("entry", "module"), CORRECT_RUNS, ids=[f"{e.name}-{m}" for e, m in CORRECT_RUNS]
)
def test_correct_entry_passes_everything(
    entry: Entry, module: str, corpus_failures: dict[tuple[str, str], Any]
) -> None:
    failed = _failed(corpus_failures, entry.name, module)
    bad = {task: ids for task, ids in failed.items() if ids}
    assert not bad, f"{entry.name} is correct but failed: {bad}"


@pytest.mark.parametrize("module", ["module0", "module1", "module2"])
def test_reference_passes_everything(module: str, tmp_path: Path) -> None:
    failed = failures_by_task(submission_of([], module, tmp_path / "reference"), module, tmp_path)
    bad = {task: ids for task, ids in failed.items() if ids}
    assert not bad, f"the reference failed: {bad}"


def test_corpus_covers_every_task(tmp_path: Path) -> None:
    """At least 30 buggy entries over every task, two correct ones, all still applicable."""
    assert len(BUGGY) >= 30
    assert len(CORRECT) >= 2
    assert set(MODULE_OF_TASK) <= {e.task for e in BUGGY}
    for entry in BUGGY + CORRECT:
        apply_mutations(ROOT / "reference", entry.edits, tmp_path / entry.name, "module2")
