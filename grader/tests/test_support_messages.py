"""The message helpers of tests/support.py, on their own: what a student reads.

Cross-task pointers land above the reproducer; long lists keep their ends and a count;
shrunk graphs carry no dead nodes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

import support as S  # noqa: E402

from grader.isolation import checks as C


def test_a_pointer_lands_above_the_reproducer_and_only_on_failure() -> None:
    with pytest.raises(pytest.fail.Exception) as failed:
        with C.pointing(lambda: "your topological_sort returns the leaves first"):
            C.report("wrong", called="f()", returned=1.0, expected="2.0", snippet=["f()"])
    lines = str(failed.value.msg).splitlines()
    see = lines.index("  see also: your topological_sort returns the leaves first")
    assert lines[see + 1] == "Reproduce it in a Python shell:"
    explained = []
    with C.pointing(lambda: explained.append(1) or "x"):
        pass
    assert explained == []  # nothing failed: student code was not asked


def test_long_lists_keep_their_ends_and_a_count() -> None:
    assert C.brief([f"v{i}" for i in range(5)]) == "[v0, v1, v2, v3, v4]"
    text = C.brief([f"v{i}" for i in range(200)])
    assert text == "[v0, v1, v2, v3, v4, v5, ..., v197, v198, v199] (200 items)"


def test_compact_graphs_keep_only_what_the_output_reaches() -> None:
    graph = [["leaf"], ["leaf"], ["node", [[0, 0.5]]], ["node", [[0, 0.5]]], ["node", [[1, 2.0]]]]
    assert S.compact(graph) == [["leaf"], ["node", [[0, 2.0]]]]
    shape = [["leaf"], ["const"], ["node", [[0, 0.5], [1, 1.5]]], ["node", [[2, 1.0], [0, 1.0]]]]
    assert S.compact(shape) == shape


def test_a_graph_test_that_judged_half_of_its_graphs_or_fewer_fails() -> None:
    """Whether a test passes never rests on a few judged examples (mechanism M1 of round 3):
    more than half of the graphs tried must be judged, and the message says why not."""
    tally = S.Tally()
    for judged in (True, True, False):
        tally.add(judged)
    S.require_judged(tally)  # 2 of 3
    tally.add(False)
    with pytest.raises(pytest.fail.Exception) as failed:
        S.require_judged(tally)  # 2 of 4
    message = str(failed.value.msg)
    assert message.startswith("Scalar.backward could be checked on only 2 of the 4 graphs tried")
    assert "changed from one call to the next" in message
    with pytest.raises(pytest.fail.Exception):
        S.require_judged(S.Tally())  # nothing tried, nothing judged


def test_skips_chosen_where_graphs_are_not_flat_fail_the_test() -> None:
    """Mechanism 1 of round 3, in docker's full budget: most random graphs of 20 operations
    can be flat (a comparison near the output), so judging only the flat ones could still be
    "more than half". More than half of the graphs whose output depends on an input (by the
    trusted closed forms) must be judged as well."""
    flat = S.Expression([["var", 0], ["var", 1], ["lt", 0, 1]], [0.5, 1.5])
    steep = S.Expression([["var", 0], ["var", 1], ["mul", 0, 1]], [0.5, 1.5])
    tally = S.Tally()
    for expr, judged in ((flat, True), (flat, True), (steep, True), (steep, True), (steep, False)):
        tally.add(judged, expr)
    S.require_judged(tally)  # 4 of 5 graphs, 2 of the 3 informative ones
    for expr in (flat, flat, flat, steep):
        tally.add(expr is flat, expr)
    with pytest.raises(pytest.fail.Exception) as failed:
        S.require_judged(tally)  # 7 of 9 graphs, but 2 of the 4 informative ones
    message = str(failed.value.msg)
    assert "only 2 of the 4 graphs tried whose output depends on an input" in message


def test_chain_rule_with_constants_may_keep_or_leave_out_the_constants() -> None:
    coeffs, d = S.LINEAR_COEFFS["Lin3"], 2.0
    right = [[0, 4.0], [2, 1.0]]
    assert S.chain_rule_problem(right, coeffs, d, [1]) is None  # constant left out
    assert S.chain_rule_problem([*right, [1, 123.0]], coeffs, d, [1]) is None  # kept, any value
    shifted = [[0, 4.0], [2, -10.0]]  # the filtered inputs zipped with every derivative
    assert S.chain_rule_problem(shifted, coeffs, d, [1]) == (
        "chain_rule gave input 2 the derivative -10.0, not 1.0"
    )
    assert S.chain_rule_problem(right, coeffs, d) == "chain_rule left out input 1"


def test_a_backward_pass_that_ignores_its_starting_derivative_is_told_so() -> None:
    def message(got: list[float]) -> str:
        with pytest.raises(pytest.fail.Exception) as failed:
            S.judge_derivatives(
                got, [-0.375, -1.5], [1e-12, 1e-12], [False, False], what="backpropagate",
                names=["v0", "v1"], lines=list, d=-0.5, called="backpropagate(v5, -0.5)",
            )  # fmt: skip
        return str(failed.value.msg)

    assert "starts from the derivative it is given (-0.5 here), not 1.0" in message([0.75, 3.0])
    assert "not 1.0" not in message([0.75, 2.0])  # not every one off by d: no such hint
    S.judge_derivatives(
        [-0.375, None], [-0.375, 0.0], [1e-12, 1e-12], [False, True], what="backpropagate",
        names=["v0", "v1"], lines=list, d=-0.5, called="",
    )  # fmt: skip  # right, and a leaf that may keep None keeps it: passes
