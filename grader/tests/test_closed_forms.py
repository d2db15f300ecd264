"""The closed forms that stand in for solutions in the public tests are right.

tests/support.py judges central_difference (task 1.1) with central differences of its test
functions worked out by hand, so the hand-out does not hold the general formula; here each
is compared with the formula itself, at random points and steps. The hand-out measures local
derivatives by a complex step (``support.measured_derivatives``) instead of holding the
backward closed forms (tasks 0.1 and 1.4); here the measurement is compared with the closed
forms the grader uses.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

import support as S  # noqa: E402

finite = st.floats(-2.0, 2.0, allow_nan=False)


@pytest.mark.parametrize("name", list(S.DIFFERENTIABLES))
@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.data(), h=st.floats(0.005, 0.5))
def test_symmetric_closed_forms_equal_the_difference_quotient(name, data, h):
    fn = S.DIFFERENTIABLES[name]
    vals = [data.draw(finite) for _ in range(fn.arity)]
    closed = fn.symmetric(*vals, h)
    for arg in range(fn.arity):
        up, down = list(vals), list(vals)
        up[arg] += h
        down[arg] -= h
        quotient = (fn.f(*up) - fn.f(*down)) / (2 * h)
        size = max(abs(fn.f(*up)), abs(fn.f(*down)), 1.0)
        assert closed[arg] == pytest.approx(quotient, rel=1e-9, abs=1e-13 * size / h)


# The tests' domains for each operation: away from log's and 1/x's pole, from ReLU's kink
# and from the comparisons' switch points, as every test draws them.
DOMAINS = {
    "neg": [st.floats(-50, 50)],
    "log": [st.floats(0.05, 1e4)],
    "exp": [st.floats(-30, 30)],
    "sigmoid": [st.floats(-50, 50)],
    "relu": [st.one_of(st.floats(-1e3, -0.05), st.floats(0.05, 1e3))],
    "inv": [st.one_of(st.floats(-1e3, -0.01), st.floats(0.01, 1e3))],
    "add": [st.floats(-50, 50), st.floats(-50, 50)],
    "sub": [st.floats(-50, 50), st.floats(-50, 50)],
    "mul": [st.floats(-50, 50), st.floats(-50, 50)],
    "div": [st.floats(-50, 50), st.floats(0.25, 50)],
}


@pytest.mark.parametrize("op", list(DOMAINS))
@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.data())
def test_measured_derivatives_match_the_closed_forms(op, data):
    """The hand-out's measured derivatives are within its DERIV_RTOL of the closed forms."""
    args = [data.draw(domain) for domain in DOMAINS[op]]
    exact = S.EXACT_DERIVATIVES[op](*args)
    measured = S.measured_derivatives(op, *args)
    for m, e in zip(measured, exact, strict=True):
        assert m == pytest.approx(e, rel=1e-13, abs=1e-280)  # below: subnormal
    assert S.DERIV_RTOL == 0.0  # the grader's copy: closed forms (the hand-out's: 1e-12)


@pytest.mark.parametrize("op", ["lt", "gt", "eq"])
def test_measured_comparison_derivatives_are_zero_away_from_the_switch(op):
    for a, b in ((1.0, 1.2), (-3.0, -3.06), (40.0, -40.0)):
        assert S.measured_derivatives(op, a, b) == (0.0, 0.0)
