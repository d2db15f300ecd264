"""Hidden tests for tasks 0.1 and 0.3 (not in the hand-out): exactness at the switch points,
extreme inputs, longer and empty lists."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import (
    OPERATORS,
    SELECT_ATOL,
    SELECT_RTOL,
    check_helper,
    d_outputs,
    floats,
    magnitudes,
    sigmoid,
)

from grader.isolation.checks import CASES, batched, check_cases

SELECT = lambda _: (SELECT_RTOL, SELECT_ATOL)  # noqa: E731


@st.composite
def neighbours(draw):
    """A float and its next float up or down: distinct, but as close as floats get."""
    x = draw(st.one_of(floats(-1e6, 1e6), floats(-1.0, 1.0)))
    y = math.nextafter(x, math.inf if draw(st.booleans()) else -math.inf)
    return (x, y) if draw(st.booleans()) else (y, x)


@pytest.mark.task("0.1")
@batched()
@given(pairs=st.lists(neighbours(), min_size=1, max_size=CASES))
def test_lt_eq_on_adjacent_floats(mt, pairs):
    """lt and eq compare exactly, even adjacent floats (True / False or 1.0 / 0.0)"""
    hint = "compare exactly: is_close is only for hand-written tests"
    for name, exact in (("lt", lambda x, y: float(x < y)), ("eq", lambda x, y: 0.0)):
        check_cases(getattr(mt.operators, name), pairs, exact, SELECT, hint=hint, allow_bool=True)


@pytest.mark.task("0.1")
@batched()
@given(
    xs=st.lists(
        st.one_of(floats(-1e300, -1e3), floats(1e3, 1e300), floats(-40.0, -25.0)),
        min_size=1,
        max_size=CASES,
    )
)
def test_sigmoid_extremes(mt, xs):
    """sigmoid is finite and accurate far out in both tails"""
    cases = [(x,) for x in xs]
    check_cases(mt.operators.sigmoid, cases, sigmoid, OPERATORS["sigmoid"].tolerance)


_tiny = st.one_of(floats(1e-300, 1e-3), floats(-1e-3, -1e-300))


@pytest.mark.task("0.1")
@batched()
@given(cases=st.lists(st.tuples(_tiny, d_outputs()), min_size=1, max_size=CASES))
def test_relu_near_zero(mt, cases):
    """relu and relu_back are right for inputs of tiny size on either side of 0"""
    relu = [(x,) for x, _ in cases]
    check_cases(mt.operators.relu, relu, lambda x: x if x > 0 else 0.0, SELECT)
    check_cases(mt.operators.relu_back, cases, lambda x, d: d if x > 0 else 0.0, SELECT)


_long = st.lists(floats(-10.0, 10.0), min_size=9, max_size=40)
_factors = st.lists(st.one_of(magnitudes(0.25, 4.0), st.just(0.0)), min_size=9, max_size=40)


@pytest.mark.task("0.3")
@batched()
@given(cases=st.lists(st.tuples(_long, _factors), min_size=1, max_size=CASES))
def test_list_helpers_on_long_lists(mt, cases):
    """negList, addLists, sum and prod work on longer lists"""
    check_helper(mt, "negList", [[ls] for ls, _ in cases])
    check_helper(mt, "addLists", [[ls, ls[::-1]] for ls, _ in cases])
    check_helper(mt, "sum", [[ls] for ls, _ in cases])
    check_helper(mt, "prod", [[factors] for _, factors in cases])


@pytest.mark.task("0.3")
@pytest.mark.parametrize("name", ["negList", "addLists", "sum", "prod"])
def test_list_helper_on_empty_list(mt, name):
    """negList([]) and addLists([], []) are empty, sum([]) == 0 and prod([]) == 1"""
    check_helper(mt, name, [[[]] * (1 + (name == "addLists"))])
