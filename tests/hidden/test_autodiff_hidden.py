"""Hidden tests for tasks 1.1 and 1.4 (not in the hand-out): every argument of central
differences, bigger and deeper stand-in graphs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import (
    DIFFERENTIABLES,
    ask,
    at_most,
    backpropagate_checked,
    chain_graph,
    check_central_difference,
    check_topological_order,
    d_outputs,
    floats,
    fmt,
    magnitudes,
    variable_graph_text,
    variable_graphs,
)


@pytest.mark.task("1.1")
@given(
    vals=st.tuples(floats(-3.0, 3.0), floats(-3.0, 3.0), floats(-3.0, 3.0)),
    epsilon=floats(1e-4, 1e-2),
)
def test_central_difference_every_argument(student, vals, epsilon):
    """central_difference differentiates along each argument of a three-argument function"""
    fn = DIFFERENTIABLES["product3"]
    for arg in range(3):
        called = (
            f"central_difference({fn.source}, {', '.join(fmt(v) for v in vals)}, "
            f"arg={arg}, epsilon={fmt(epsilon)})"
        )
        got = ask(
            student,
            "central_difference",
            "product3",
            list(vals),
            arg,
            epsilon,
            label="central_difference",
            called=called,
        )
        check_central_difference(
            got,
            fn,
            list(vals),
            arg,
            epsilon,
            called=called,
            snippet=["from minitorch import central_difference", called],
        )


@pytest.mark.task("1.4")
@at_most(25)  # bigger graphs: expensive (the public tests use the full budget)
@given(graph=variable_graphs(max_inner=25))
def test_topological_sort_bigger_graphs(student, graph):
    """topological_sort orders bigger random graphs (up to 25 inner variables)"""
    called = f"topological_sort(v{len(graph) - 1}) where {variable_graph_text(graph)}"
    order = ask(student, "toposort_variables", graph, label="topological_sort", called=called)
    check_topological_order(graph, order, called=called)


@pytest.mark.task("1.4")
@at_most(25)  # bigger graphs: expensive (the public tests use the full budget)
@given(graph=variable_graphs(max_inner=25), deriv=d_outputs())
def test_backpropagate_bigger_graphs(student, graph, deriv):
    """backpropagate is right on bigger random graphs (up to 25 inner variables)"""
    called = f"backpropagate(v{len(graph) - 1}, {fmt(deriv)}) where {variable_graph_text(graph)}"
    backpropagate_checked(student, graph, deriv, called=called, label="backpropagate")


@pytest.mark.task("1.4")
@pytest.mark.parametrize("twice", [False, True], ids=["chain", "ladder"])
@at_most(10)  # 200-variable graphs: expensive, and the shape is fixed
@given(weights=st.lists(magnitudes(0.9, 1.1), min_size=3, max_size=3), deriv=d_outputs())
def test_backpropagate_deep_graph(student, twice, weights, deriv):
    """backpropagate handles a graph 200 variables deep"""
    graph = chain_graph(200, weights, twice=twice)
    called = (
        f"backpropagate(v199, {fmt(deriv)}) on 200 variables, each "
        + ("using the previous one twice" if twice else "using the previous one")
        + f", weights cycling through {fmt(weights)}"
    )
    label = "backpropagate (200-deep graph)"
    backpropagate_checked(student, graph, deriv, called=called, label=label)
