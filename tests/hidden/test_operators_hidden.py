"""Hidden tests for tasks 0.1 and 0.3 (not in the hand-out): exactness at the switch points,
extreme inputs, longer and empty lists."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import (
    ATOL,
    RTOL,
    SELECT_ATOL,
    SELECT_RTOL,
    call_text,
    check_elementwise,
    check_fold,
    check_number,
    check_numbers,
    check_operator,
    d_outputs,
    floats,
    list_helper,
    magnitudes,
    sigmoid,
    sigmoid_tolerance,
)


@st.composite
def neighbours(draw):
    """A float and its next float up or down: distinct, but as close as floats get."""
    x = draw(st.one_of(floats(-1e6, 1e6), floats(-1.0, 1.0)))
    y = math.nextafter(x, math.inf if draw(st.booleans()) else -math.inf)
    return (x, y) if draw(st.booleans()) else (y, x)


@pytest.mark.task("0.1")
@given(pair=neighbours())
def test_lt_eq_on_adjacent_floats(student, pair):
    """lt and eq compare exactly, even adjacent floats (True / False or 1.0 / 0.0)"""
    x, y = pair
    for name, expected in (("lt", 1.0 if x < y else 0.0), ("eq", 0.0)):
        check_operator(
            student,
            name,
            [x, y],
            expected,
            rtol=SELECT_RTOL,
            atol=SELECT_ATOL,
            hint="compare exactly: is_close is only for hand-written tests",
        )


@pytest.mark.task("0.1")
@given(x=st.one_of(floats(-1e300, -1e3), floats(1e3, 1e300), floats(-40.0, -25.0)))
def test_sigmoid_extremes(student, x):
    """sigmoid is finite and accurate far out in both tails"""
    rtol, atol = sigmoid_tolerance(x)
    check_operator(student, "sigmoid", [x], sigmoid(x), rtol=rtol, atol=atol)


@pytest.mark.task("0.1")
@given(x=st.one_of(floats(1e-300, 1e-3), floats(-1e-3, -1e-300)), d=d_outputs())
def test_relu_near_zero(student, x, d):
    """relu and relu_back are right for inputs of tiny size on either side of 0"""
    for name, args, expected in (
        ("relu", [x], x if x > 0 else 0.0),
        ("relu_back", [x, d], d if x > 0 else 0.0),
    ):
        check_operator(student, name, args, expected, rtol=SELECT_RTOL, atol=SELECT_ATOL)


@pytest.mark.task("0.3")
@given(
    ls=st.lists(floats(-10.0, 10.0), min_size=9, max_size=40),
    factors=st.lists(st.one_of(magnitudes(0.25, 4.0), st.just(0.0)), min_size=9, max_size=40),
)
def test_list_helpers_on_long_lists(student, ls, factors):
    """negList, addLists, sum and prod work on longer lists"""
    check_elementwise(
        student,
        "negList",
        [ls],
        list_helper(student, "negList", ls),
        [-x for x in ls],
        "neg",
        [[x] for x in ls],
    )
    other = ls[::-1]
    check_elementwise(
        student,
        "addLists",
        [ls, other],
        list_helper(student, "addLists", ls, other),
        [x + y for x, y in zip(ls, other, strict=True)],
        "add",
        [[x, y] for x, y in zip(ls, other, strict=True)],
    )
    check_fold(student, "sum", ls, list_helper(student, "sum", ls))
    check_fold(student, "prod", factors, list_helper(student, "prod", factors))


@pytest.mark.task("0.3")
@pytest.mark.parametrize(
    ("name", "lists", "expected"),
    [("negList", [[]], []), ("addLists", [[], []], []), ("sum", [[]], 0.0), ("prod", [[]], 1.0)],
    ids=["negList", "addLists", "sum", "prod"],
)
def test_list_helper_on_empty_list(student, name, lists, expected):
    """negList([]) and addLists([], []) are empty, sum([]) == 0 and prod([]) == 1"""
    called = call_text(f"operators.{name}", lists)
    got = list_helper(student, name, *lists)
    if isinstance(expected, list):
        check_numbers(got, expected, what=f"operators.{name}", called=called)
    else:
        check_number(got, expected, what=f"operators.{name}", called=called, rtol=RTOL, atol=ATOL)
