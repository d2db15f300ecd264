"""pytest plugin for the corpus runs: once a test of a task has failed, skip that task's
remaining tests.

The corpus asks two questions of a buggy entry: does at least one test of its own task
fail, and does no test of any other task fail? After the first failure in a task the first
answer is known, and that task's other tests cannot change the second. Skipping them saves
most of a buggy entry's own-task time (task 1.4 is half of a module-1 run), while every
test of every other task still runs in full. A correct entry never fails, so it runs
everything.

Loaded with ``-p corpus_first_failure`` (this folder on the path) after grader.grading.plugin,
whose ``task`` marker it reads (through the same function).
"""

from __future__ import annotations

import pytest

from grader.grading.plugin import _task_of

_FAILED_TASKS = pytest.StashKey[set[str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_FAILED_TASKS] = set()


def pytest_runtest_setup(item: pytest.Item) -> None:
    task = _task_of(item)
    if task is not None and task in item.config.stash[_FAILED_TASKS]:
        pytest.skip(f"task {task} has already failed a test (corpus run)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    task = _task_of(item)
    if report.failed and task is not None:
        item.config.stash[_FAILED_TASKS].add(task)
    return report
