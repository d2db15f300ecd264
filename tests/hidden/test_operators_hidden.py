"""Hidden tests for tasks 0.1 and 0.3 (not in the hand-out): exactness at the switch points,
extreme inputs, longer and empty lists."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import (
    ask,
    call_text,
    check_number,
    check_numbers,
    check_operator,
    d_outputs,
    floats,
    fmt,
    sigmoid,
)


@st.composite
def neighbours(draw):
    """A float and its next float up or down: distinct, but as close as floats get."""
    x = draw(st.one_of(floats(-1e6, 1e6), floats(-1.0, 1.0)))
    y = math.nextafter(x, math.inf if draw(st.booleans()) else -math.inf)
    return (x, y) if draw(st.booleans()) else (y, x)


@pytest.mark.task("0.1")
@given(pair=neighbours())
def test_lt_eq_max_on_adjacent_floats(student, pair):
    """lt, eq and max are exact even for adjacent floats (no tolerance)"""
    x, y = pair
    for name, expected in (("lt", 1.0 if x < y else 0.0), ("eq", 0.0), ("max", x if x > y else y)):
        check_operator(
            student,
            name,
            [x, y],
            expected,
            rtol=0.0,
            atol=0.0,
            hint="compare exactly: is_close is only for hand-written tests",
        )


@pytest.mark.task("0.1")
@given(x=st.one_of(floats(-1e300, -1e3), floats(1e3, 1e300), floats(-40.0, -25.0)))
def test_sigmoid_extremes(student, x):
    """sigmoid is finite and accurate far out in both tails"""
    rtol, atol = (1e-6, 0.0) if x >= -30.0 else (0.0, 1e-12)
    check_operator(student, "sigmoid", [x], sigmoid(x), rtol=rtol, atol=atol)


@pytest.mark.task("0.1")
@given(x=st.one_of(floats(1e-300, 1e-3), floats(-1e-3, -1e-300)), d=d_outputs())
def test_relu_near_zero(student, x, d):
    """relu and relu_back are right for inputs of tiny size on either side of 0"""
    for name, args, expected in (
        ("relu", [x], x if x > 0 else 0.0),
        ("relu_back", [x, d], d if x > 0 else 0.0),
    ):
        check_operator(student, name, args, expected, rtol=0.0, atol=0.0)


@pytest.mark.task("0.3")
@given(ls=st.lists(floats(-10.0, 10.0), min_size=9, max_size=40), start=floats(-2.0, 2.0))
def test_higher_order_on_long_lists(student, ls, start):
    """map, zipWith and reduce work on longer lists"""
    got = ask(
        student,
        "map_list",
        "double",
        ls,
        label="operators.map",
        called=f"operators.map(lambda x: 2.0 * x)({fmt(ls)})",
    )
    check_numbers(
        got,
        [2.0 * x for x in ls],
        what="operators.map",
        called=f"operators.map(lambda x: 2.0 * x)({fmt(ls)})",
    )
    got = ask(
        student,
        "zipwith_lists",
        "sub",
        ls,
        ls[::-1],
        label="operators.zipWith",
        called=f"operators.zipWith(lambda x, y: x - y)({fmt(ls)}, {fmt(ls[::-1])})",
    )
    check_numbers(
        got,
        [x - y for x, y in zip(ls, ls[::-1], strict=False)],
        what="operators.zipWith",
        called=f"operators.zipWith(lambda x, y: x - y)({fmt(ls)}, {fmt(ls[::-1])})",
    )
    got = ask(
        student,
        "reduce_list",
        "max",
        start,
        ls,
        label="operators.reduce",
        called=f"operators.reduce(max, {fmt(start)})({fmt(ls)})",
    )
    check_number(
        got,
        max([start, *ls]),
        what="operators.reduce",
        called=f"operators.reduce(max, {fmt(start)})({fmt(ls)})",
        rtol=0.0,
        atol=0.0,
    )


@pytest.mark.task("0.3")
@pytest.mark.parametrize("fn", ["add", "mul", "max"])
@given(start=floats(-10.0, 10.0))
def test_reduce_empty_gives_start(student, fn, start):
    """reduce(fn, start) on an empty list gives start"""
    called = f"operators.reduce({fn}, {fmt(start)})([])"
    got = ask(student, "reduce_list", fn, start, [], label="operators.reduce", called=called)
    check_number(got, start, what="operators.reduce", called=called, rtol=0.0, atol=0.0)


@pytest.mark.task("0.3")
def test_list_helpers_on_empty_lists(student):
    """negList, addLists, sum and prod of empty lists are [], [], 0.0 and 1.0"""
    for name, lists, expected in (
        ("negList", [[]], []),
        ("addLists", [[], []], []),
        ("sum", [[]], 0.0),
        ("prod", [[]], 1.0),
    ):
        called = call_text(f"operators.{name}", lists)
        out = ask(
            student,
            "list_helper",
            name,
            *lists,
            label=f"operators.{name}",
            called=called,
            snippet=["from minitorch import operators", called],
        )
        if isinstance(expected, list):
            check_numbers(out["result"], expected, what=f"operators.{name}", called=called)
        else:
            check_number(
                out["result"], expected, what=f"operators.{name}", called=called, rtol=0.0, atol=0.0
            )
