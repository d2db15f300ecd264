"""Task 0.1 (operators on floats) and task 0.3 (higher-order functions on lists).

Every check calls the student's code through a probe (tests/probes.py) and compares with a
closed form computed here (tests/support.py). map / zipWith / reduce get probe-side
functions, so a mistake in an operator of task 0.1 never costs points in task 0.3.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import (
    OPERATORS,
    RTOL,
    ask,
    call_text,
    check_number,
    check_numbers,
    check_operator,
    floats,
    fmt,
    is_number,
    magnitudes,
    operator_snippet,
    report,
    sigmoid,
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
@given(pair=st.tuples(floats(-100, 100), st.one_of(floats(0.0, 9e-3), floats(1.1e-2, 5.0))))
def test_is_close(student, pair):
    """is_close is true exactly when the values differ by less than 1e-2"""
    x, gap = pair
    y = x + gap
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
    check_operator(
        student,
        "sigmoid",
        [x],
        sigmoid(x),
        rtol=1e-6,
        atol=1e-12,
        hint="math.exp(-x) overflows for x < -709: use e^x / (1 + e^x) for negative x",
    )


# --------------------------------------------------------------------------- task 0.3
_lists = st.lists(floats(-100.0, 100.0), max_size=8)
# Factors for products: no tiny magnitudes, whose products would underflow to subnormals and
# make the result depend on the order of the multiplications.
_factors = st.one_of(magnitudes(1e-3, 4.0), st.just(0.0))


def _sum_tolerance(values: list[float]) -> float:
    """Summing in another order changes the result by rounding only."""
    return 1e-12 * (1.0 + math.fsum(abs(v) for v in values)) * (len(values) + 1)


@pytest.mark.task("0.3")
@pytest.mark.parametrize("fn", ["neg", "double", "square"])
@given(ls=_lists)
def test_map(student, fn, ls):
    """map(fn) applies fn to every element, in order (empty lists included)"""
    forms = {"neg": lambda x: -x, "double": lambda x: 2.0 * x, "square": lambda x: x * x}
    source = {"neg": "lambda x: -x", "double": "lambda x: 2.0 * x", "square": "lambda x: x * x"}
    called = f"operators.map({source[fn]})({fmt(ls)})"
    snippet = ["from minitorch import operators", called]
    got = ask(student, "map_list", fn, ls, label="operators.map", called=called, snippet=snippet)
    check_numbers(
        got, [forms[fn](x) for x in ls], what="operators.map", called=called, snippet=snippet
    )


@pytest.mark.task("0.3")
@given(pairs=st.lists(st.tuples(floats(-100.0, 100.0), floats(-100.0, 100.0)), max_size=8))
def test_zipWith(student, pairs):
    """zipWith(fn)(a, b) is [fn(a[0], b[0]), fn(a[1], b[1]), ...] in order"""
    a = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    got = ask(
        student,
        "zipwith_lists",
        "sub",
        a,
        b,
        label="operators.zipWith",
        called=f"operators.zipWith(lambda x, y: x - y)({fmt(a)}, {fmt(b)})",
    )
    check_numbers(
        got,
        [x - y for x, y in pairs],
        what="operators.zipWith",
        called=f"operators.zipWith(lambda x, y: x - y)({fmt(a)}, {fmt(b)})",
        snippet=[
            "from minitorch import operators",
            f"operators.zipWith(lambda x, y: x - y)({fmt(a)}, {fmt(b)})",
        ],
    )


@pytest.mark.task("0.3")
@pytest.mark.parametrize("fn", ["add", "mul", "max"])
@given(ls=st.lists(_factors, max_size=8), start=_factors)
def test_reduce(student, fn, ls, start):
    """reduce(fn, start) folds the list into one value (start for an empty list)"""
    got = ask(
        student,
        "reduce_list",
        fn,
        start,
        ls,
        label="operators.reduce",
        called=f"operators.reduce({fn}, {fmt(start)})({fmt(ls)})",
    )
    if fn == "add":
        expected = start + math.fsum(ls)
        atol = _sum_tolerance([start, *ls])
    elif fn == "mul":
        expected = math.prod([start, *ls])
        atol = 1e-12 * (abs(expected) + 1e-300) * (len(ls) + 1)
    else:
        expected = max([start, *ls])
        atol = 0.0
    source = {
        "add": "lambda acc, x: acc + x",
        "mul": "lambda acc, x: acc * x",
        "max": "lambda acc, x: max(acc, x)",
    }[fn]
    check_number(
        got,
        expected,
        what="operators.reduce",
        called=f"operators.reduce({source}, {fmt(start)})({fmt(ls)})",
        rtol=0.0,
        atol=atol,
        snippet=[
            "from minitorch import operators",
            f"operators.reduce({source}, {fmt(start)})({fmt(ls)})",
        ],
    )


def _list_helper(student, name, *lists):
    called = call_text(f"operators.{name}", lists)
    return ask(
        student,
        "list_helper",
        name,
        *lists,
        label=f"operators.{name}",
        called=called,
        snippet=["from minitorch import operators", called],
    )


def _own(student, op, *args):
    """The student's own operator on these values, through the very probe the 0.1 tests judge
    it with: an operator that is wrong only while a list helper is checked still costs 0.1."""
    return student.call("call_operator", op, *args, label=f"operators.{op}")


def _own_folds(student, op, start, ls):
    """The four ways of folding ``ls`` with the student's own ``op`` (for sum and prod)."""
    results = []
    for items in (ls, ls[::-1]):
        for acc_first in (True, False):
            acc = start
            for x in items:
                acc = _own(student, op, acc, x) if acc_first else _own(student, op, x, acc)
            results.append(acc)
    return results


@pytest.mark.task("0.3")
@given(ls=_lists)
def test_negList(student, ls):
    """negList negates every element (built from map and neg)"""
    out = _list_helper(student, "negList", ls)
    # Judge the composition, not operators.neg (task 0.1): either closed form is accepted
    # when the student's own neg gives something else on these values.
    expected = [-x for x in ls]
    if out["result"] != expected:
        own = [_own(student, "neg", x) for x in ls]
        if own != expected and out["result"] == own:
            return
    check_numbers(
        out["result"],
        expected,
        what="operators.negList",
        called=call_text("operators.negList", [ls]),
        snippet=["from minitorch import operators", call_text("operators.negList", [ls])],
    )


@pytest.mark.task("0.3")
@given(pairs=st.lists(st.tuples(floats(-100.0, 100.0), floats(-100.0, 100.0)), max_size=8))
def test_addLists(student, pairs):
    """addLists adds two lists position by position (built from zipWith and add)"""
    a = [p[0] for p in pairs]
    b = [p[1] for p in pairs]
    out = _list_helper(student, "addLists", a, b)
    expected = [x + y for x, y in pairs]
    if out["result"] != expected:
        own = [_own(student, "add", x, y) for x, y in pairs]
        if own != expected and out["result"] == own:
            return
    check_numbers(
        out["result"],
        expected,
        what="operators.addLists",
        called=call_text("operators.addLists", [a, b]),
        snippet=["from minitorch import operators", call_text("operators.addLists", [a, b])],
    )


@pytest.mark.task("0.3")
@pytest.mark.parametrize("name", ["sum", "prod"])
@given(ls=st.lists(_factors, max_size=8))
def test_sum_and_prod(student, name, ls):
    """sum and prod fold the list with add / mul (0.0 and 1.0 for an empty list)"""
    out = _list_helper(student, name, ls)
    if name == "sum":
        expected = math.fsum(ls)
        atol = _sum_tolerance(ls)
    else:
        expected = math.prod(ls)
        atol = 1e-12 * abs(expected) * (len(ls) + 1) + 1e-300
    got = out["result"]
    # If the student's own add / mul (task 0.1) is wrong, folding with it is accepted.
    if not (is_number(got) and math.isclose(got, expected, rel_tol=RTOL, abs_tol=atol)):
        op, start = ("add", 0.0) if name == "sum" else ("mul", 1.0)
        folds = _own_folds(student, op, start, ls)
        folds_ok = all(
            is_number(p) and math.isclose(p, expected, rel_tol=RTOL, abs_tol=atol) for p in folds
        )
        if not folds_ok and any(got == p for p in folds):
            return
    check_number(
        got,
        expected,
        what=f"operators.{name}",
        called=call_text(f"operators.{name}", [ls]),
        rtol=0.0,
        atol=atol,
        snippet=["from minitorch import operators", call_text(f"operators.{name}", [ls])],
    )
