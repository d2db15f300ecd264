"""Hidden tests for tasks 1.1 and 1.4 (not in the hand-out): every argument of central
differences, bigger and deeper stand-in graphs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import (
    DIFFERENTIABLES,
    central_called,
    central_differences,
    chain_graph,
    check_central_difference,
    check_stand_in_backpropagate,
    check_stand_in_order,
    d_outputs,
    floats,
    magnitudes,
    variable_graphs,
)

from grader.isolation.checks import at_most, fmt, reproduced


@pytest.mark.task("1.1")
@given(vals=st.lists(floats(-3.0, 3.0), min_size=3, max_size=3), epsilon=floats(1e-4, 1e-2))
def test_central_difference_every_argument(mt, vals, epsilon):
    """central_difference differentiates along each argument of a three-argument function"""
    fn = DIFFERENTIABLES["product3"]
    calls, got, names = central_differences(mt, fn, [(vals, arg, epsilon) for arg in range(3)])
    for arg, call, value in zip(range(3), calls, got, strict=True):
        called = central_called(fn, vals, arg, epsilon)
        with reproduced(call, names=names):
            check_central_difference(value, fn, vals, arg, epsilon, called=called)


@pytest.mark.task("1.4")
@at_most(25)  # bigger graphs: expensive (the public tests use the full budget)
@given(graph=variable_graphs(max_inner=25))
def test_topological_sort_bigger_graphs(mt, graph):
    """topological_sort orders bigger random graphs (up to 25 inner variables)"""
    check_stand_in_order(mt, graph)


@pytest.mark.task("1.4")
@at_most(25)  # bigger graphs: expensive (the public tests use the full budget)
@given(graph=variable_graphs(max_inner=25), deriv=d_outputs())
def test_backpropagate_bigger_graphs(mt, graph, deriv):
    """backpropagate is right on bigger random graphs (up to 25 inner variables)"""
    check_stand_in_backpropagate(mt, graph, deriv)


@pytest.mark.task("1.4")
@pytest.mark.parametrize("twice", [False, True], ids=["chain", "ladder"])
@at_most(10)  # 200-variable graphs: expensive, and the shape is fixed
@given(weights=st.lists(magnitudes(0.9, 1.1), min_size=3, max_size=3), deriv=d_outputs())
def test_backpropagate_deep_graph(mt, twice, weights, deriv):
    """backpropagate handles a graph 200 variables deep"""
    how = "using the previous one twice" if twice else "using the previous one"
    called = (
        f"backpropagate(v199, {fmt(deriv)}) on 200 variables, each {how}, weights {fmt(weights)}"
    )
    check_stand_in_backpropagate(mt, chain_graph(200, weights, twice=twice), deriv, called)
