"""Task 0.1 (operators on floats) and task 0.3 (list helpers).

Every check calls the student's code through a probe (tests/probes.py) and compares with a
closed form computed here (tests/support.py). map / zipWith / reduce have no fixed
signature (curried or not, any argument order), so task 0.3 is judged only through
negList, addLists, sum and prod; their results may be any iterable of floats. When the
student's own neg / add / mul (task 0.1) is wrong, a helper that composes it is accepted,
so an operator mistake is not charged again in task 0.3.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import (
    OPERATORS,
    ask,
    call_text,
    check_elementwise,
    check_fold,
    check_operator,
    floats,
    is_number,
    list_helper,
    magnitudes,
    operator_health,
    operator_snippet,
    report,
    sigmoid,
    sigmoid_tolerance,
)

# --------------------------------------------------------------------------- task 0.1


@pytest.mark.task("0.1")
@pytest.mark.parametrize("name", list(OPERATORS))
@given(data=st.data())
def test_operator_matches_closed_form(student, name, data):
    """Operator matches its closed form on random inputs from its domain"""
    op = OPERATORS[name]
    args = list(data.draw(op.inputs, label="inputs"))
    rtol, atol = op.tolerance(args)
    check_operator(student, name, args, op.exact(*args), rtol=rtol, atol=atol)


@pytest.mark.task("0.1")
def test_list_operators_at_fixed_points(student):
    """neg, add and mul give the right values at a few fixed points (the list helpers use them)"""
    broken = operator_health(student)
    if broken:
        pytest.fail("\n".join(broken.values()), pytrace=False)


@pytest.mark.task("0.1")
@given(
    pair=st.tuples(floats(-100, 100), st.one_of(floats(0.0, 9e-3), floats(1.1e-2, 5.0))),
    larger_first=st.booleans(),
)
def test_is_close(student, pair, larger_first):
    """is_close is true exactly when the values differ by less than 1e-2, in either order"""
    low, gap = pair
    # Both orders: `x - y < 1e-2` without abs() is right whenever x <= y.
    x, y = (low + gap, low) if larger_first else (low, low + gap)
    expected = abs(x - y) < 1e-2
    got = ask(
        student,
        "call_operator",
        "is_close",
        x,
        y,
        label="operators.is_close",
        called=call_text("operators.is_close", [x, y]),
        snippet=operator_snippet("is_close", [x, y]),
    )
    if got is not expected and not (is_number(got) and got == float(expected)):
        report(
            "operators.is_close gave the wrong answer.",
            called=call_text("operators.is_close", [x, y]),
            returned=got,
            expected=f"{expected} (|x - y| = {abs(x - y):.3g})",
            snippet=operator_snippet("is_close", [x, y]),
        )


@pytest.mark.task("0.1")
@given(x=st.one_of(floats(-1e6, -700.0), floats(700.0, 1e6)))
def test_sigmoid_does_not_overflow(student, x):
    """sigmoid stays finite and accurate for very large positive and negative inputs"""
    rtol, atol = sigmoid_tolerance(x)
    check_operator(
        student,
        "sigmoid",
        [x],
        sigmoid(x),
        rtol=rtol,
        atol=atol,
        hint="math.exp(-x) overflows for x < -709: use e^x / (1 + e^x) for negative x",
    )


# --------------------------------------------------------------------------- task 0.3
# Lists are never empty here: sum([]) and prod([]) have one check each (hidden tests).
_lists = st.lists(floats(-100.0, 100.0), min_size=1, max_size=8)
# Factors for products: magnitudes in [0.25, 4] (or exactly 0), so that products of up to 40
# factors stay far from underflow and every order of multiplication gives the same value
# up to rounding.
_factors = st.one_of(magnitudes(0.25, 4.0), st.just(0.0))


@pytest.mark.task("0.3")
@given(ls=_lists)
def test_negList(student, ls):
    """negList negates every element (built from map and neg)"""
    got = list_helper(student, "negList", ls)
    check_elementwise(student, "negList", [ls], got, [-x for x in ls], "neg", [[x] for x in ls])


@pytest.mark.task("0.3")
@given(
    pairs=st.lists(st.tuples(floats(-100.0, 100.0), floats(-100.0, 100.0)), min_size=1, max_size=8)
)
def test_addLists(student, pairs):
    """addLists adds two lists position by position (built from zipWith and add)"""
    a = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    got = list_helper(student, "addLists", a, b)
    check_elementwise(
        student, "addLists", [a, b], got, [x + y for x, y in pairs], "add", [list(p) for p in pairs]
    )


@pytest.mark.task("0.3")
@pytest.mark.parametrize("name", ["sum", "prod"])
@given(ls=st.lists(_factors, min_size=1, max_size=8))
def test_sum_and_prod(student, name, ls):
    """sum and prod fold the list with add / mul (built from reduce)"""
    check_fold(student, name, ls, list_helper(student, name, ls))
