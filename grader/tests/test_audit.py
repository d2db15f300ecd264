"""The audit measures what it claims: it kills real bugs, and a weaker suite scores lower."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.course.assignment import load_assignment, repo_root
from grader.course.skeleton import solution_regions
from grader.evidence.audit import generate_mutants, run_audit, suite_root

M1 = load_assignment("module1")

pytestmark = pytest.mark.evidence  # the full evidence: make test-all


@pytest.mark.parametrize("name", ["module0", "module1", "module2"])
def test_mutants_compile_and_stay_inside_solution_regions(name: str) -> None:
    assignment = load_assignment(name)
    mutants = generate_mutants(assignment)
    assert {m.task for m in mutants} == {t.id for t in assignment.tasks}
    for m in mutants:
        compile(m.source, m.file, "exec")
        reference = assignment.reference_file(m.file).read_text()
        regions = solution_regions(reference, m.file)
        changed = [
            i + 1
            for i, (a, b) in enumerate(
                zip(reference.splitlines(), m.source.splitlines(), strict=False)
            )
            if a != b
        ]
        assert changed, m.id
        assert all(any(r.start < n < r.end for r in regions) for n in changed), m.diff
    kinds = {m.operator for m in generate_mutants(M1)}
    assert {
        "swap-operator",
        "drop-term",
        "swap-arguments",
        "drop-call",
        "change-constant",
        "drop-statement",
        "drop-accumulation",
    } <= kinds


def _weakened_tests(dest: Path) -> Path:
    """A copy of the suite that no longer checks ScalarFunction.backward.

    It keeps support and test_autodiff.py (whose task-1.4 tests run on stand-in
    Variables) and drops test_scalar.py and the hidden tests. Fixing the upstream gradient
    at 1.0 alone is not enough to weaken this suite: its graph tests still feed non-unit
    gradients into every backward (measured: the audit then kills the same mutants).
    """
    dest.mkdir()
    for name in ("support.py", "test_autodiff.py"):
        shutil.copy(repo_root() / "tests" / name, dest / name)
    return dest


def test_weakened_suite_scores_lower_on_backward_functions(tmp_path: Path) -> None:
    options = dict(
        tasks=["1.4"],
        # Five backward functions (17 mutants) show the difference as well as all ten do,
        # in half the time: every survivor of the weak suite gets an equivalence check.
        functions=["Mul.backward", "Log.backward", "Exp.backward", "Inv.backward", "Neg.backward"],
        equivalence_examples=60,
        max_examples=20,
        progress=False,
    )
    strong = run_audit(M1, **options)
    weak_assignment = load_assignment(
        "module1", suite_root(_weakened_tests(tmp_path / "tests"), tmp_path / "root")
    )
    weak = run_audit(weak_assignment, **options)
    (s,), (w,) = strong["tasks"], weak["tasks"]
    assert s["generated"] == w["generated"] > 10
    assert s["kill_rate"] >= 0.95, strong
    assert w["kill_rate"] < s["kill_rate"], (s, w)
    survivors = [m for m in weak["mutants"] if not m["killed"] and not m.get("equivalent")]
    # Without backward tests, a backward that drops d_output goes unnoticed.
    assert any(m["operator"] == "drop-call" and "d_output" in m["diff"] for m in survivors)
    assert all(m["diff"].startswith("--- reference/") for m in survivors)
