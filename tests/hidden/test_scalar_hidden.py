"""Hidden tests for tasks 1.2, 1.3 and 1.4 (not in the hand-out): composed forwards, an input
used twice in chain_rule, the classic graph shapes and deep, bigger and separate graphs, and
a graph built on top of one that has been through backward() already."""

from __future__ import annotations

import functools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import (
    ANY,
    LINEAR_COEFFS,
    Expression,
    ask,
    at_most,
    chain_rule_twice_problem,
    check_backward,
    check_continued,
    check_two_graphs,
    continued_expressions,
    d_outputs,
    expect,
    expression_lines,
    expressions,
    floats,
    fmt,
    graph_ops,
    most_judged,
    report,
    substitute_ops,
    tolerance_text,
)

# --------------------------------------------------------------------------- task 1.2


@pytest.mark.task("1.2")
@given(expr=expressions(max_ops=10))
def test_composed_forward(student, expr):
    """Expressions combining every Scalar operator give the right values"""
    # Every node is checked here, so every node is shown (not only what y depends on).
    lines = expression_lines(expr.nodes, expr.values, range(len(expr.nodes)))
    called = "; ".join(lines[1:])
    out = ask(
        student,
        "expression_forward",
        expr.nodes,
        expr.values,
        label="Scalar operators",
        called=called,
        snippet=[*lines, "y.data"],
    )
    expect(
        out,
        {"data": ("list", ANY, len(expr.nodes))},
        probe="expression_forward",
        what="Scalar operators",
    )
    for j, info in enumerate(expr.infos()):
        got = out["data"][j]
        if not info.value_ok(got):
            name = "y" if j == len(expr.nodes) - 1 else f"t{j}"
            report(
                f"{name} has the wrong value.",
                called=called,
                returned=f"{name}.data = {fmt(got)}",
                expected=f"{fmt(info.value)} (within "
                f"{tolerance_text(1e-7, 1e-9 + 2.0 * info.slack)})",
                snippet=[*lines, f"{name}.data"],
            )


# --------------------------------------------------------------------------- task 1.3


@pytest.mark.task("1.3")
@given(x=floats(-10.0, 10.0), d=d_outputs())
def test_chain_rule_same_input_twice(student, x, d):
    """chain_rule gives one pair per argument, even when both arguments are the same Scalar"""
    coeffs = LINEAR_COEFFS["Lin2"]
    called = (
        f"y.chain_rule({fmt(d)}) where x = Scalar({fmt(x)}), y = F.apply(x, x) and F's "
        f"backward returns {coeffs} times d_output"
    )
    out = ask(student, "chain_rule_twice", x, d, label="Scalar.chain_rule", called=called)
    expect(out, {"pairs": ANY}, probe="chain_rule_twice", what="Scalar.chain_rule")
    pairs = out["pairs"]
    if chain_rule_twice_problem(pairs, d):
        report(
            "Scalar.chain_rule is wrong when an input is used twice.",
            called=called,
            returned=f"pairs (input index, derivative): {fmt(pairs)}",
            expected=f"[[0, {fmt(coeffs[0] * d)}], [0, {fmt(coeffs[1] * d)}]]",
            hint="one pair per argument of the function, in order: do not merge or drop them",
        )


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
