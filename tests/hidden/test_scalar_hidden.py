"""Hidden tests for tasks 1.2, 1.3 and 1.4 (not in the hand-out): composed forwards, an input
used twice in chain_rule, the classic graph shapes and deep, bigger and separate graphs, and
a graph built on top of one that has been through backward() already."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import (
    LINEAR_COEFFS,
    Expression,
    Graph,
    chain_rule_checked,
    check_backward,
    check_continued,
    check_two_graphs,
    continued_expressions,
    d_outputs,
    expressions,
    floats,
    graph_ops,
    most_judged,
    substitute_ops,
)

from grader.isolation.checks import answers, at_most, check_close
from grader.isolation.handles import Handle

# --------------------------------------------------------------------------- task 1.2


@pytest.mark.task("1.2")
@given(expr=expressions(max_ops=10))
def test_composed_forward(mt, expr):
    """Expressions combining every Scalar operator give the right values"""
    graph = Graph(mt, expr)
    datas = {j: n.data for j, n in enumerate(graph.nodes) if isinstance(n, Handle)}
    got = answers(*datas.values(), what="Scalar operators", names=graph.names)
    infos = expr.infos()
    for (j, data), value in zip(datas.items(), got, strict=True):
        info, what = infos[j], f"The operation making {graph.names[graph.nodes[j]]}"
        atol = 1e-9 + 2.0 * info.slack  # the template's log(x + 1e-6) is allowed
        check_close(data, value, info.value, 1e-7, atol, what=what, names=graph.names)


# --------------------------------------------------------------------------- task 1.3


@pytest.mark.task("1.3")
@at_most(20)  # fixed derivatives: a mistake shows on every example
@given(x=floats(-10.0, 10.0), d=d_outputs())
def test_chain_rule_same_input_twice(mt, x, d):
    """chain_rule gives one pair per argument, even when both arguments are the same Scalar"""
    chain_rule_checked(mt, [x], LINEAR_COEFFS["Lin2"], d, twice=True)


# --------------------------------------------------------------------------- task 1.4
# Classic shapes, as expression graphs (support.Expression's nodes); input values are drawn.
SHAPES = {
    # t = x + 1; y = t * t.log()  (t feeds the output directly and through log)
    "shared_intermediate": [["var", 0], ["num", 1.5], ["add", 0, 1], ["log", 2], ["mul", 2, 3]],
    # diamond: a = x * 2; b = x.exp(); y = a + b ... then y * y
    "diamond": [["var", 0], ["num", 2.0], ["mul", 0, 1], ["exp", 0], ["add", 2, 3], ["mul", 4, 4]],
    # x used twice and a Python float mixed in: y = x * x + 0.75 * x - x / 0.75
    "reuse_and_numbers": [
        ["var", 0],
        ["num", 0.75],
        ["mul", 0, 0],
        ["mul", 1, 0],
        ["add", 2, 3],
        ["div", 0, 1],
        ["sub", 4, 5],
    ],
    # two inputs, sigmoid of a comparison-gated mix: y = (x0 < x1) * x0 + (x0 - x1).sigmoid()
    "gated": [
        ["var", 0],
        ["var", 1],
        ["lt", 0, 1],
        ["mul", 2, 0],
        ["sub", 0, 1],
        ["sigmoid", 4],
        ["add", 3, 5],
    ],
}


@functools.cache  # one strategy per arguments: building one costs more than a draw
@st.composite
def shaped(draw, name, ops):
    nodes = substitute_ops(SHAPES[name], ops)
    n_vars = 1 + max(n[1] for n in nodes if n[0] == "var")
    if name == "gated":
        x = draw(floats(-3.0, 3.0))
        gap = draw(floats(0.1, 2.0))
        values = [x, x + gap] if draw(st.booleans()) else [x, x - gap]
    else:
        values = [draw(floats(0.2, 2.0)) for _ in range(n_vars)]
    return Expression(nodes, values)


@pytest.mark.task("1.4")
@pytest.mark.parametrize("shape", list(SHAPES))
@most_judged  # more than half of the graphs must be judged (not: a forward mistake, 1.2's)
@given(data=st.data(), d=d_outputs())
def test_classic_graph_shapes(mt, shape, data, d):
    """backward on a shared intermediate, a diamond, a reused input with numbers, a gate"""
    check_backward(mt, data.draw(shaped(shape, graph_ops(mt)), label="graph"), d)


@pytest.mark.task("1.4")
@most_judged
@given(data=st.data(), d=d_outputs())
def test_bigger_expression_graphs(mt, data, d):
    """backward on bigger random expression graphs (up to 3 inputs and 20 operations)"""
    check_backward(mt, data.draw(expressions(ops=graph_ops(mt), max_ops=20), label="graph"), d)


@functools.cache
@st.composite
def deep_chains(draw, ops):
    """y = x; then 100 times y = y * w + c: 200 operations deep (another + or * when one of
    them has a wrong forward, see support.substitute_ops)."""
    nodes = [["var", 0]]
    w = draw(magnitudes_near_one())
    c = draw(floats(-0.5, 0.5))
    nodes += [["num", w], ["num", c]]
    last = 0
    for _ in range(100):
        nodes.append(["mul", last, 1])
        nodes.append(["add", len(nodes) - 1, 2])
        last = len(nodes) - 1
    return Expression(substitute_ops(nodes, ops), [draw(floats(-2.0, 2.0))])


def magnitudes_near_one():
    return st.one_of(floats(0.97, 1.03), floats(-1.03, -0.97))


@pytest.mark.task("1.4")
@most_judged
@at_most(5)  # expensive graphs: fewer examples
@given(data=st.data(), d=d_outputs())
def test_deep_scalar_chain(mt, data, d):
    """backward through 200 Scalar operations in a row"""
    check_backward(mt, data.draw(deep_chains(graph_ops(mt)), label="graph"), d)


@pytest.mark.task("1.4")
@most_judged
@given(data=st.data(), d=d_outputs())
def test_backward_on_two_graphs(mt, data, d):
    """backward on one graph and then another gives each its own derivatives"""
    first = data.draw(expressions(ops=graph_ops(mt), max_ops=5), label="first graph")
    second = data.draw(expressions(ops=graph_ops(mt), max_ops=5), label="second graph")
    check_two_graphs(mt, first, second, d)


@pytest.mark.task("1.4")
@most_judged
@given(data=st.data(), d_first=d_outputs(), d=d_outputs())
def test_backward_again_through_shared_scalars(mt, data, d_first, d):
    """backward on a graph built on top of one already backpropagated (leaves zeroed between)"""
    expr, k = data.draw(continued_expressions(graph_ops(mt)), label="graphs")
    check_continued(mt, expr, k, d_first, d)
