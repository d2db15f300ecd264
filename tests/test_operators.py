"""Task 0.1 (operators on floats) and task 0.3 (list helpers).

Every check calls the student's code through handles (``mt.operators.mul(2.0, 3.0)``) and
compares with a closed form computed here (tests/support.py), several cases per round trip.
map / zipWith / reduce have no fixed signature (curried or not, any argument order), so
task 0.3 is judged only through negList, addLists, sum and prod; their results may be any
iterable of floats. When the student's own neg / add / mul (task 0.1) is wrong, a helper
that composes it is accepted, so an operator mistake is not charged again in task 0.3.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import (
    OPERATORS,
    check_helper,
    floats,
    magnitudes,
    operator_health,
    sigmoid,
)

from grader.isolation.checks import CASES, batched, check_cases

# --------------------------------------------------------------------------- task 0.1


@pytest.mark.task("0.1")
@pytest.mark.parametrize("name", list(OPERATORS))
@batched()
@given(data=st.data())
def test_operator_matches_closed_form(mt, name, data):
    """Operator matches its closed form on random inputs from its domain"""
    op = OPERATORS[name]
    cases = data.draw(st.lists(op.inputs, min_size=1, max_size=CASES), label="inputs")
    check_cases(
        getattr(mt.operators, name), cases, op.exact, op.tolerance, allow_bool=op.allow_bool
    )


@pytest.mark.task("0.1")
def test_list_operators_at_fixed_points(mt):
    """neg, add and mul give the right values at a few fixed points (the list helpers use them)"""
    broken = operator_health(mt)
    if broken:
        pytest.fail("\n".join(broken.values()), pytrace=False)


@st.composite
def is_close_pairs(draw):
    """Two values closer than 1e-2 or at least 1.1e-2 apart, the larger first or second:
    `x - y < 1e-2` without abs() is right whenever x <= y."""
    low, gap = draw(floats(-100, 100)), draw(st.one_of(floats(0.0, 9e-3), floats(1.1e-2, 5.0)))
    return (low + gap, low) if draw(st.booleans()) else (low, low + gap)


@pytest.mark.task("0.1")
@batched()
@given(pairs=st.lists(is_close_pairs(), min_size=1, max_size=CASES))
def test_is_close(mt, pairs):
    """is_close is true exactly when the values differ by less than 1e-2, in either order"""
    exact = lambda x, y: float(abs(x - y) < 1e-2)  # noqa: E731
    hint = "is_close(x, y) is |x - y| < 1e-2, whichever of x and y is larger"
    check_cases(
        mt.operators.is_close, pairs, exact, lambda _: (0.0, 0.0), hint=hint, allow_bool=True
    )


@pytest.mark.task("0.1")
@batched()
@given(xs=st.lists(st.one_of(floats(-1e6, -700.0), floats(700.0, 1e6)), min_size=1, max_size=CASES))
def test_sigmoid_does_not_overflow(mt, xs):
    """sigmoid stays finite and accurate for very large positive and negative inputs"""
    hint = "math.exp(-x) overflows for x < -709: use e^x / (1 + e^x) for negative x"
    cases = [(x,) for x in xs]
    check_cases(mt.operators.sigmoid, cases, sigmoid, OPERATORS["sigmoid"].tolerance, hint=hint)


# --------------------------------------------------------------------------- task 0.3
# Lists are never empty here: sum([]) and prod([]) have one check each (hidden tests).
_lists = st.lists(floats(-100.0, 100.0), min_size=1, max_size=8)
_pairs = st.tuples(floats(-100.0, 100.0), floats(-100.0, 100.0))
# Factors for products: magnitudes in [0.25, 4] (or exactly 0), so that products of up to 40
# factors stay far from underflow and every order of multiplication gives the same value
# up to rounding.
_factors = st.one_of(magnitudes(0.25, 4.0), st.just(0.0))


@pytest.mark.task("0.3")
@batched()
@given(cases=st.lists(_lists, min_size=1, max_size=CASES))
def test_negList(mt, cases):
    """negList negates every element (built from map and neg)"""
    check_helper(mt, "negList", [[ls] for ls in cases])


@pytest.mark.task("0.3")
@batched()
@given(cases=st.lists(st.lists(_pairs, min_size=1, max_size=8), min_size=1, max_size=CASES))
def test_addLists(mt, cases):
    """addLists adds two lists position by position (built from zipWith and add)"""
    check_helper(mt, "addLists", [[[x for x, _ in c], [y for _, y in c]] for c in cases])


@pytest.mark.task("0.3")
@pytest.mark.parametrize("name", ["sum", "prod"])
@batched()
@given(cases=st.lists(st.lists(_factors, min_size=1, max_size=8), min_size=1, max_size=CASES))
def test_sum_and_prod(mt, name, cases):
    """sum and prod fold the list with add / mul (built from reduce)"""
    check_helper(mt, name, [[ls] for ls in cases])
