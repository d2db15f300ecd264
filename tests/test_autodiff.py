"""Task 1.1 (central_difference) and task 1.4 (topological_sort, backpropagate).

topological_sort and backpropagate are tested on stand-in variables (support.STAND_IN):
they follow the Variable protocol of autodiff.py and carry known local derivatives (edge
weights), so these tests depend on autodiff.py alone. Graphs of real Scalars are tested in
test_scalar.py.

central_difference may use the course's (f(x + e) - f(x - e)) / (2 e) or the half-step
(f(x + e/2) - f(x - e/2)) / e the template's docstring points at: both are accepted.
"""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from support import (
    DIFFERENTIABLES,
    central_called,
    central_differences,
    central_separated,
    chain_graph,
    check_central_difference,
    check_stand_in_backpropagate,
    check_stand_in_order,
    d_outputs,
    floats,
    magnitudes,
    variable_graphs,
)

from grader.isolation.checks import at_most, check_number, reproduced

# --------------------------------------------------------------------------- task 1.1


@st.composite
def points(draw, name, args=None):
    fn = DIFFERENTIABLES[name]
    vals = [draw(floats(-2.0, 2.0)) for _ in range(fn.arity)]
    return vals, draw(st.sampled_from(list(args if args is not None else range(fn.arity))))


# Each example checks BATCH points in one round trip (as the one-function tests of
# test_scalar.py do): the points of the full budget for a fifth of the round trips.
BATCH = 5
BATCHED = at_most(10)


@pytest.mark.task("1.1")
@pytest.mark.parametrize("name", ["square", "cubic", "product3", "sin_exp"])
@BATCHED
@given(data=st.data())
def test_central_difference_matches_derivative(mt, name, data):
    """central_difference with the default epsilon is close to the exact derivative"""
    fn = DIFFERENTIABLES[name]
    drawn = data.draw(st.lists(points(name), min_size=BATCH, max_size=BATCH), label="vals, arg")
    calls, got, names = central_differences(mt, fn, [(v, arg, None) for v, arg in drawn])
    for (vals, arg), call, value in zip(drawn, calls, got, strict=True):
        # Truncation error ~ eps^2 |f'''| = 1e-12 * O(10); rounding ~ 1e-16 |f| / 1e-6 = 1e-10.
        tolerance = {"rtol": 1e-6, "atol": 1e-7 * (1.0 + abs(fn.f(*vals)))}
        called = central_called(fn, vals, arg, None)
        with reproduced(call, names=names):
            check_number(
                value, fn.grad(*vals)[arg], what="central_difference", called=called, **tolerance
            )


# Arguments along which each function is curved (not linear), so that a one-sided
# difference and an ignored epsilon both differ from the two correct forms.
_CURVED_ARGS = {"cubic": [0], "sin_exp": [0, 1], "ratio": [1]}


@st.composite
def separated_cases(draw, name):
    """(vals, arg, epsilon) where every common mistake is far from both correct forms."""
    for _ in range(8):  # a few tries here, so that a batch is seldom thrown away whole
        vals, arg = draw(points(name, _CURVED_ARGS[name]))
        epsilon = draw(floats(0.01, 0.5))
        if central_separated(DIFFERENTIABLES[name], vals, arg, epsilon):
            return vals, arg, epsilon
    assume(False)


@pytest.mark.task("1.1")
@pytest.mark.parametrize("name", list(_CURVED_ARGS))
@BATCHED
@given(data=st.data())
def test_central_difference_uses_epsilon(mt, name, data):
    """central_difference steps by the epsilon it is given, on both sides of the point"""
    fn = DIFFERENTIABLES[name]
    cases = data.draw(
        st.lists(separated_cases(name), min_size=BATCH, max_size=BATCH), label="cases"
    )
    calls, got, names = central_differences(mt, fn, cases)
    for (vals, arg, epsilon), call, value in zip(cases, calls, got, strict=True):
        called = central_called(fn, vals, arg, epsilon)
        with reproduced(call, names=names):
            check_central_difference(value, fn, vals, arg, epsilon, called=called)


# --------------------------------------------------------------------------- task 1.4


@pytest.mark.task("1.4")
@given(graph=variable_graphs())
def test_topological_sort_order(mt, graph):
    """topological_sort lists each variable once, output first, before all of its parents"""
    check_stand_in_order(mt, graph)


@pytest.mark.task("1.4")
@given(graph=variable_graphs(max_inner=4, constants=True))
def test_topological_sort_leaves_out_constants(mt, graph):
    """topological_sort returns non-constant variables only (the one test with constants)"""
    check_stand_in_order(mt, graph)


@pytest.mark.task("1.4")
@pytest.mark.parametrize("twice", [False, True], ids=["chain", "ladder"])
def test_topological_sort_deep_graph(mt, twice):
    """topological_sort handles a graph 200 variables deep"""
    how = "each using the previous one twice" if twice else "v_i = v_(i-1) * 1.0"
    called = f"topological_sort(v199) on a chain of 200 variables, {how}"
    check_stand_in_order(mt, chain_graph(200, [1.0], twice=twice), called=called)


@pytest.mark.task("1.4")
@given(graph=variable_graphs(), deriv=d_outputs())
def test_backpropagate_random_graphs(mt, graph, deriv):
    """backpropagate gives each leaf the sum of its contributions over all paths"""
    check_stand_in_backpropagate(mt, graph, deriv)


@st.composite
def shared_intermediates(draw):
    """t = f(a); y = g(t, h(t)): t feeds the output directly and through another node.

    This is the shape of `t = a + 1; y = t * t.log()`: a breadth-first walk reaches t
    before its second contribution has arrived.
    """
    w = [draw(magnitudes(0.5, 2.0)) for _ in range(4)]
    longer = draw(st.integers(1, 3))  # extra nodes on the indirect path
    graph = [["leaf"], ["node", [[0, w[0]]]]]
    last = 1
    for _ in range(longer):
        graph.append(["node", [[last, w[1]]]])
        last = len(graph) - 1
    graph.append(["node", [[1, w[2]], [last, w[3]]]])
    return graph


@pytest.mark.task("1.4")
@given(graph=shared_intermediates(), deriv=d_outputs())
def test_backpropagate_waits_for_all_contributions(mt, graph, deriv):
    """backpropagate waits until a variable has every contribution (t = a + 1; t * log t)"""
    check_stand_in_backpropagate(mt, graph, deriv)
