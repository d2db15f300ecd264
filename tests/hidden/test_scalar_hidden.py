"""Hidden tests for tasks 1.2, 1.3 and 1.4 (not in the hand-out): composed forwards, an input
used twice in chain_rule, the classic graph shapes and deep, bigger and separate graphs, and
a graph built on top of one that has been through backward() already."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import (
    LINEAR_COEFFS,
    Expression,
    Tally,
    ask,
    at_most,
    chain_rule_checked,
    chain_rule_works,
    check_expression_gradients,
    check_returned,
    continued_checked,
    continued_expressions,
    d_outputs,
    expect,
    expression_checked,
    expression_text,
    expressions,
    fetched,
    floats,
    fmt,
    graph_ops,
    pointing,
    require_judged,
    scalar_graph,
    scalar_order_pointer,
    substitute_ops,
)

from grader.isolation.handles import Handle

# --------------------------------------------------------------------------- task 1.2


@pytest.mark.task("1.2")
@given(expr=expressions(max_ops=10))
def test_composed_forward(mt, expr):
    """Expressions combining every Scalar operator give the right values"""
    graph = scalar_graph(mt, expr)
    datas = {j: n.data for j, n in enumerate(graph.nodes) if isinstance(n, Handle)}
    got = fetched(*datas.values(), what="Scalar operators", names=graph.names)
    infos = expr.infos()
    for (j, data), value in zip(datas.items(), got, strict=True):
        info, what = infos[j], f"The operation making {graph.names[graph.nodes[j]]}"
        atol = 1e-9 + 2.0 * info.slack  # the template's log(x + 1e-6) is allowed
        check_returned(value, info.value, data, what=what, rtol=1e-7, atol=atol, names=graph.names)


# --------------------------------------------------------------------------- task 1.3


@pytest.mark.task("1.3")
@at_most(20)  # fixed derivatives: a mistake shows on every example
@given(x=floats(-10.0, 10.0), d=d_outputs())
def test_chain_rule_same_input_twice(mt, x, d):
    """chain_rule gives one pair per argument, even when both arguments are the same Scalar"""
    chain_rule_checked(mt, [x], LINEAR_COEFFS["Lin2"], d, twice=True)


# --------------------------------------------------------------------------- task 1.4
# Classic shapes, as expression graphs (probes.py format); input values are drawn.
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


def _check_graphs(student, make_strategy, max_examples=None, label="Scalar.backward"):
    """Check gradients on graphs from ``make_strategy(ops)``, ops being the operators whose
    forward works (see support.healthy_ops); fixed shapes swap a broken operator for a
    working one (support.substitute_ops), so honest code is judged on nearly every graph;
    a test that judged half of its graphs or fewer fails (support.require_judged)."""
    ops = graph_ops(student)
    strategy = make_strategy(ops)
    own = chain_rule_works(student)
    tally = Tally()  # more than half of the graphs must be judged (require_judged)

    @given(expr=strategy, d=d_outputs())
    def check(expr, d):
        called = expression_text(expr.nodes, expr.values)
        tally.add(expression_checked(student, expr, d, own, label=label, called=called), expr)

    if max_examples is not None:  # expensive graphs: fewer examples
        check = at_most(max_examples)(check)
    check()
    require_judged(tally)


@pytest.mark.task("1.4")
@pytest.mark.parametrize("shape", list(SHAPES))
def test_classic_graph_shapes(student, shape):
    """backward on a shared intermediate, a diamond, a reused input with numbers, a gate"""
    _check_graphs(student, lambda ops: shaped(shape, ops))


@pytest.mark.task("1.4")
def test_bigger_expression_graphs(student):
    """backward on bigger random expression graphs (up to 3 inputs and 20 operations)"""
    _check_graphs(student, lambda ops: expressions(ops=ops, max_ops=20))


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
def test_deep_scalar_chain(student):
    """backward through 200 Scalar operations in a row"""
    _check_graphs(
        student,
        lambda ops: deep_chains(ops),
        max_examples=5,
        label="Scalar.backward (200 operations deep)",
    )


@pytest.mark.task("1.4")
def test_backward_on_two_graphs(student):
    """backward on one graph and then another gives each its own derivatives"""
    ops = graph_ops(student)
    own = chain_rule_works(student)
    tally = Tally()  # more than half of the pairs must be judged (require_judged)

    @given(
        first=expressions(ops=ops, max_ops=5), second=expressions(ops=ops, max_ops=5), d=d_outputs()
    )
    def check(first, second, d):
        if not own:  # chain_rule is wrong (task 1.3): each graph is judged in parts
            results = [
                expression_checked(
                    student,
                    expr,
                    dd,
                    own,
                    label="Scalar.backward",
                    called=f"{which}: {expression_text(expr.nodes, expr.values)}",
                )
                for expr, dd, which in ((first, d, "first graph"), (second, 1.0, "second graph"))
            ]
            tally.add(all(results), first, second)
            return
        called = (
            f"first graph: {expression_text(first.nodes, first.values)}; y.backward({fmt(d)}); "
            f"then a second graph: {expression_text(second.nodes, second.values)}; y.backward()"
        )
        with pointing(
            lambda: scalar_order_pointer(student, first) or scalar_order_pointer(student, second)
        ):
            out = ask(
                student,
                "expression_pair",
                first.nodes,
                first.values,
                second.nodes,
                second.values,
                d,
                label="Scalar.backward",
                called=called,
            )
            if isinstance(out, dict) and "forward_error" in out:
                expect(out, {"forward_error": str}, probe="expression_pair", what="Scalar.backward")
                tally.add(
                    False, first, second
                )  # not judged (a forward mistake is task 1.2's): counted
                return
            expect(
                out,
                {"graphs": ("list", dict, 2)},
                probe="expression_pair",
                what="Scalar.backward",
            )
            results = [
                check_expression_gradients(
                    expr, dd, graph, what=what, points=False, probe="expression_pair"
                )
                for expr, dd, graph, what in (
                    (first, d, out["graphs"][0], "backward on the first graph"),
                    (second, 1.0, out["graphs"][1], "backward on a second, separate graph"),
                )
            ]
        tally.add(all(results), first, second)

    check()
    require_judged(tally)


@pytest.mark.task("1.4")
def test_backward_again_through_shared_scalars(student):
    """backward on a graph built on top of one already backpropagated (leaves zeroed between)"""
    ops = graph_ops(student)
    own = chain_rule_works(student)
    tally = Tally()  # more than half of the graphs must be judged (require_judged)

    @given(case=continued_expressions(ops), d_first=d_outputs(), d=d_outputs())
    def check(case, d_first, d):
        expr, k = case
        if not own:  # chain_rule is wrong (task 1.3): the second graph is judged in parts
            called = expression_text(expr.nodes, expr.values)
            judged = expression_checked(
                student, expr, d, own, label="Scalar.backward", called=called
            )
            tally.add(judged, expr)
            return
        tally.add(continued_checked(student, expr, k, d_first, d, label="Scalar.backward"), expr)

    check()
    require_judged(tally)
