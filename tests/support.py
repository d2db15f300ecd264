"""Trusted-side helpers for the tests of modules 0 and 1: tolerances, strategies, closed
forms, graph models, and the checks that keep each mistake in its own task.

Nothing here runs student code. Tests hold handles (the ``mt`` fixture) and read plain data
back from the worker; this module decides whether that data is right. Failures are worded
by the handle API's checks (grader/isolation/checks.py): what was called with which inputs,
what their code returned, what was expected (with the tolerance), and a few lines that
reproduce it in a Python shell.

Expected values are computed here with ``math`` (closed forms, an expression evaluator with
exact derivatives by forward mode), never with the student's own helpers.

Tolerances (measured on the reference, see the comment above ``RTOL`` below) are
chosen so that any correct implementation passes, whatever its style, and every real
mistake (a missing factor, a wrong sign, swapped arguments) is off by far more.
"""

from __future__ import annotations

import cmath
import functools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import pytest
from hypothesis import assume
from hypothesis import strategies as st

from grader.isolation.checks import (
    answers,
    brief,
    callee,
    check_close,
    check_numbers,
    faulted,
    fmt,
    is_number,
    pointing,
    report,
    reproduced,
    shell,
    tolerance_text,
    type_name,
    within,
)
from grader.isolation.handles import Handle, builtin, code, outcomes, reproducer
from grader.isolation.protocol import (
    StudentError,
    StudentFault,
)

# --------------------------------------------------------------------------- tolerances
# Every numeric check accepts |got - expected| <= atol + rtol * |expected|, both terms
# always present (minitorch-api.md). Measured by grader/tests/measure_tolerances.py (20 000
# random points per function from the domains below) and by hand on other correct styles:
# - forward of every operator vs the closed forms here: 0, except inv_back (3.3e-16 rel);
#   math.e ** x 3.7e-14 relative; x ** -1 2e-16;
# - sigmoid: the two-branch form 2.8e-16 relative; 0.5 * (1 + tanh(x / 2)) and
#   1 - 1 / (1 + e^x) up to 1.6e-16 *absolute* (2.4e-14 and 1.1e-13 relative where
#   sigmoid > 1e-3; e.g. 9e-18 off at x = -26 where sigmoid is 5e-12), inside ATOL;
# - log(x + 1e-6), the module-1 template's log, differs from log(x) by <= 1e-6 / x, and
#   log_back written d / (x + 1e-6) from d / x by <= 1e-6 / x relative (LOG_EPS);
# - backward of every ScalarFunction vs the closed forms: <= 3e-16 relative, except Sigmoid
#   (s * (1 - s)): up to 100% *relative* where sigmoid' < 1e-16, but <= 1.7e-16 * |d_output|
#   absolute, hence its absolute part 1e-12 * |d_output|;
# - graph gradients vs exact derivatives: <= 1e-13 of the sum of |path contributions|.
# Students also guard their formulas with small epsilons, correct in spirit: exp(x + 1e-9)
# (1e-9 relative), 1 / (x + 1e-12) for |x| >= 1e-3 (1e-9), -d / (x * x + 1e-12) for
# |x| >= 1e-2 (1e-8), log(x + 1e-9). No relative tolerance is tighter than 1e-7, so these
# pass (grader/tests/corpus/correct.toml: guard_epsilons); the smallest error of a real
# mistake is still 1e5x larger (a missing d_output factor is off by >= 20%, a wrong sign by
# 200%, a one-sided difference by epsilon * |f''| / 2).
RTOL = 1e-7  # closed forms: plain float formulas, allowing guard epsilons (above)
ATOL = 1e-12
# Operators whose right answer is one of their inputs, 0.0 or d (max, relu, relu_back, lt,
# eq): every correct style gets it exactly and no guard epsilon is right there, so these
# stay as strict as rounding: a looser relative tolerance would let max return the smaller
# of two values 1e-9 apart (close_pairs draws such gaps).
SELECT_RTOL = 1e-9
SELECT_ATOL = 1e-12
SELECTING = ("max", "relu", "relu_back", "lt", "eq")
LOG_EPS = 1.1e-6  # the template's log(x + 1e-6); its effect is <= 1.1e-6 / x absolute
CD_RTOL = 1e-5  # backward vs central differences of the student's forward
GRAPH_RTOL = 1e-5  # graph gradients, relative to the sum of |path contributions|
SWITCH_MARGIN = 0.05  # inputs stay this far from ReLU's kink and LT/EQ's switch points


# --------------------------------------------------------------------------- strategies
@functools.cache  # one strategy per bounds: composites draw them every example
def floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


@functools.cache
def away_from(point: float, margin: float, lo: float, hi: float) -> st.SearchStrategy[float]:
    """Floats in [lo, hi] at least ``margin`` away from ``point``."""
    return st.one_of(floats(point + margin, hi), floats(lo, point - margin))


@functools.cache
def magnitudes(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Floats with |x| in [lo, hi], either sign."""
    return st.one_of(floats(lo, hi), floats(-hi, -lo))


@functools.cache
def d_outputs() -> st.SearchStrategy[float]:
    """A random upstream gradient: |d| in [0.1, 0.8] or [1.25, 10], either sign.

    Never close to 1, so a backward that forgets to multiply by d_output is caught on every
    example (its result is off by at least 20%).
    """
    return st.one_of(floats(0.1, 0.8), floats(1.25, 10.0), floats(-0.8, -0.1), floats(-10.0, -1.25))


@st.composite
def close_pairs(draw: st.DrawFn, lo: float = -100.0, hi: float = 100.0) -> tuple[float, float]:
    """Two floats: equal, very close (closer than 1e-2) or far apart, in either order."""
    x = draw(floats(lo, hi))
    kind = draw(st.sampled_from(["equal", "close", "far"]))
    if kind == "equal":
        return x, x
    gap = draw(floats(1e-9, 9e-3)) if kind == "close" else draw(floats(9e-3, 50.0))
    y = x + gap if draw(st.booleans()) else x - gap
    return (x, y) if draw(st.booleans()) else (y, x)


@st.composite
def switch_pairs(draw: st.DrawFn) -> tuple[float, float]:
    """Two floats at least SWITCH_MARGIN apart (safe for LT/EQ derivatives), either order."""
    x = draw(floats(-50.0, 50.0))
    gap = draw(floats(SWITCH_MARGIN, 20.0))
    y = x + gap
    return (x, y) if draw(st.booleans()) else (y, x)


# --------------------------------------------------------------------------- closed forms
def sigmoid(x: float) -> float:
    """The logistic function, stable for every finite x.

    The hand-out computes it with tanh (within 1.6e-16 absolute, inside ATOL): the
    two-branch form is task 0.1's solution and stays with the grader."""
    # BEGIN GRADER-ONLY
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)
    # END GRADER-ONLY
    return 0.5 * (1.0 + math.tanh(0.5 * x))


# --------------------------------------------------------------------------- derivatives
# The value of each operation, as the tests compute it (closed forms of the forward).
OP_VALUES: dict[str, Callable[..., float]] = {
    "neg": lambda a: -a,
    "log": math.log,
    "exp": math.exp,
    "sigmoid": lambda a: sigmoid(a),
    "relu": lambda a: a if a > 0 else 0.0,
    "inv": lambda a: 1.0 / a,
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "lt": lambda a, b: 1.0 if a < b else 0.0,
    "gt": lambda a, b: 1.0 if a > b else 0.0,
    "eq": lambda a, b: 1.0 if a == b else 0.0,
}

# The same values for complex arguments (near the real line), for measured derivatives.
_COMPLEX_VALUES: dict[str, Callable[..., complex]] = {
    "neg": lambda a: -a,
    "log": cmath.log,
    "exp": cmath.exp,
    "sigmoid": lambda a: 1.0 / (1.0 + cmath.exp(-a)),
    "relu": lambda a: a if a.real > 0 else 0.0,
    "inv": lambda a: 1.0 / a,
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "lt": lambda a, b: 1.0 if a.real < b.real else 0.0,
    "gt": lambda a, b: 1.0 if a.real > b.real else 0.0,
    "eq": lambda a, b: 1.0 if a.real == b.real else 0.0,
}

# The grader judges derivatives against closed forms. A hand-out holds no closed form of a
# derivative its student must write (the *_back operators of task 0.1, every backward of
# task 1.4): there the table below is empty and each derivative is measured with a complex
# step, d f / d x = Im f(x + i h) / h for a tiny h (no subtraction, so as exact as the
# closed form; the tests' domains keep 0.05 or more from every kink), and derivative
# tolerances widen by DERIV_RTOL, a formality.
EXACT_DERIVATIVES: dict[str, Callable[..., tuple[float, ...]]] = {}
DERIV_RTOL = 1e-12
# BEGIN GRADER-ONLY
EXACT_DERIVATIVES.update(
    {
        "neg": lambda a: (-1.0,),
        "log": lambda a: (1.0 / a,),
        "exp": lambda a: (math.exp(a),),
        "sigmoid": lambda a: (sigmoid(a) * sigmoid(-a),),
        "relu": lambda a: (1.0 if a > 0 else 0.0,),
        "inv": lambda a: (-1.0 / (a * a),),
        "add": lambda a, b: (1.0, 1.0),
        "sub": lambda a, b: (1.0, -1.0),
        "mul": lambda a, b: (b, a),
        "div": lambda a, b: (1.0 / b, -a / (b * b)),
        "lt": lambda a, b: (0.0, 0.0),
        "gt": lambda a, b: (0.0, 0.0),
        "eq": lambda a, b: (0.0, 0.0),
    }
)
DERIV_RTOL = 0.0
# END GRADER-ONLY

_STEP = 1e-20


def measured_derivatives(op: str, *args: float) -> tuple[float, ...]:
    """The derivative of ``op`` along each argument, by the complex step."""
    out = []
    for i in range(len(args)):
        moved = [complex(a) for a in args]
        moved[i] += complex(0.0, _STEP)
        value = _COMPLEX_VALUES[op](*moved)
        out.append(complex(value).imag / _STEP)
    return tuple(out)


def local_derivatives(op: str, *args: float) -> tuple[float, ...]:
    """The derivative of operation ``op`` along each of its arguments, at ``args``."""
    exact = EXACT_DERIVATIVES.get(op)
    return exact(*args) if exact is not None else measured_derivatives(op, *args)


def _times_d(op: str) -> Callable[..., tuple[float, ...]]:
    """(args..., d) -> d times each local derivative of ``op`` (what backward returns)."""
    return lambda *args_and_d: tuple(
        args_and_d[-1] * g for g in local_derivatives(op, *args_and_d[:-1])
    )


def _back(op: str) -> Callable[[float, float], float]:
    """(x, d) -> d times the derivative of ``op`` at x (an operators.py *_back function)."""
    return lambda x, d: d * local_derivatives(op, x)[0]


@dataclass(frozen=True)
class Operator:
    """An operators.py function of task 0.1: its closed form and a domain for its inputs."""

    name: str
    arity: int
    exact: Callable[..., float]
    inputs: st.SearchStrategy[tuple[float, ...]]
    allow_bool: bool = False  # lt / eq may return True / False (True == 1.0)

    def tolerance(self, args: Sequence[float]) -> tuple[float, float]:
        if self.name in SELECTING:
            return SELECT_RTOL, SELECT_ATOL
        if self.name == "log":
            return RTOL, ATOL + LOG_EPS / args[0]
        if self.name == "log_back":
            # d / (x + 1e-6) vs d / x: relative difference <= 1.1e-6 / x
            return RTOL + LOG_EPS / args[0] + DERIV_RTOL, ATOL
        if self.name.endswith("_back"):
            return RTOL + DERIV_RTOL, ATOL
        return RTOL, ATOL


def _tuples(*parts: st.SearchStrategy[float]) -> st.SearchStrategy[tuple[float, ...]]:
    return st.tuples(*parts)


_ANY = floats(-1e3, 1e3)
OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in [
        Operator("mul", 2, lambda x, y: x * y, _tuples(_ANY, _ANY)),
        Operator("add", 2, lambda x, y: x + y, _tuples(_ANY, _ANY)),
        Operator("neg", 1, lambda x: -x, _tuples(_ANY)),
        Operator("id", 1, lambda x: x, _tuples(_ANY)),
        Operator("max", 2, lambda x, y: x if x > y else y, close_pairs()),
        Operator("lt", 2, lambda x, y: 1.0 if x < y else 0.0, close_pairs(), allow_bool=True),
        Operator("eq", 2, lambda x, y: 1.0 if x == y else 0.0, close_pairs(), allow_bool=True),
        # sigmoid: the whole float range that matters, including where exp(-x) overflows
        Operator("sigmoid", 1, sigmoid, _tuples(st.one_of(floats(-50, 50), floats(-1e4, 1e4)))),
        Operator("relu", 1, lambda x: x if x > 0 else 0.0, _tuples(_ANY)),
        # log and log_back away from 0: the template's log(x + 1e-6) is off by 1e-6 / x
        Operator("log", 1, math.log, _tuples(floats(0.05, 1e6))),
        Operator("exp", 1, math.exp, _tuples(floats(-700.0, 700.0))),
        Operator("inv", 1, lambda x: 1.0 / x, _tuples(magnitudes(1e-3, 1e4))),
        Operator("log_back", 2, _back("log"), _tuples(floats(0.05, 1e4), d_outputs())),
        Operator("inv_back", 2, _back("inv"), _tuples(magnitudes(1e-2, 1e3), d_outputs())),
        Operator(
            "relu_back",
            2,
            _back("relu"),
            _tuples(away_from(0.0, SWITCH_MARGIN, -1e3, 1e3), d_outputs()),
        ),
    ]
}


@dataclass(frozen=True)
class Function:
    """A ScalarFunction: forward closed form, derivative closed form, input domain."""

    name: str
    arity: int
    forward: Callable[..., float]
    grads: Callable[..., tuple[float, ...]]  # (args..., d) -> d * local derivatives
    inputs: st.SearchStrategy[tuple[float, ...]]
    method: str  # how a Scalar expresses it: "x + y", "x.log()", ...

    def forward_tolerance(self, args: Sequence[float]) -> tuple[float, float]:
        if self.name == "Log":
            return RTOL, ATOL + LOG_EPS / args[0]
        return RTOL, ATOL

    def backward_tolerance(self, args: Sequence[float], d: float) -> tuple[float, float]:
        if self.name == "Sigmoid":
            # 1 - s cancels for large x: an absolute part, scaled by |d|
            return RTOL + DERIV_RTOL, 1e-12 * abs(d)
        if self.name == "Log":
            return RTOL + LOG_EPS / args[0] + DERIV_RTOL, ATOL
        return RTOL + DERIV_RTOL, ATOL * max(1.0, abs(d))


_SAFE = floats(-50.0, 50.0)
FUNCTIONS: dict[str, Function] = {
    name: Function(name, arity, OP_VALUES[op], _times_d(op), inputs, method)
    for name, op, arity, inputs, method in [
        ("Add", "add", 2, _tuples(_SAFE, _SAFE), "x + y"),
        ("Mul", "mul", 2, _tuples(_SAFE, _SAFE), "x * y"),
        ("Neg", "neg", 1, _tuples(_SAFE), "-x"),
        ("Inv", "inv", 1, _tuples(magnitudes(0.1, 50.0)), "1 / x"),
        ("Log", "log", 1, _tuples(floats(0.1, 100.0)), "x.log()"),
        ("Exp", "exp", 1, _tuples(floats(-30, 30)), "x.exp()"),
        ("Sigmoid", "sigmoid", 1, _tuples(_SAFE), "x.sigmoid()"),
        ("ReLU", "relu", 1, _tuples(away_from(0.0, SWITCH_MARGIN, -50.0, 50.0)), "x.relu()"),
        ("LT", "lt", 2, switch_pairs(), "x < y"),
        ("EQ", "eq", 2, switch_pairs(), "x == y"),
    ]
}


# The functions whose forward and backward are the student's work (task 1.2 / 1.4). Add and
# Log come with the template (forward and backward): graphs still use them.
STUDENT_FUNCTIONS = ["Mul", "Inv", "Neg", "Sigmoid", "ReLU", "Exp", "LT", "EQ"]


# --------------------------------------------------------------------------- handles: 0.1, 0.3, 0.4
# test_operators.py, test_module.py and their hidden twins: the student's objects are handles
# (grader/isolation/handles.py), every value is judged here, and a failure shows the Python
# lines that reproduce it (the recorded operations).
#: Fixed points where task 0.1's neg, add and mul are checked once per grade, before any list
#: helper runs. Only an operator found wrong here excuses a list helper that agrees with it
#: (``check_helper``): whether a task-0.3 check is excused is decided by this trusted
#: verdict, never by what the operator answers after it has seen the lists. A wrong value
#: here fails a test of task 0.1 (``test_list_operators_at_fixed_points``).
HEALTH_POINTS: dict[str, tuple[tuple[float, ...], ...]] = {
    "neg": ((1.5,), (-2.25,), (0.0,), (123.0,)),
    "add": ((1.5, 2.25), (-3.0, 0.5), (100.0, -0.125), (0.0, 0.0)),
    "mul": ((1.5, 2.0), (-3.0, 0.5), (0.0, 7.0), (4.0, 0.25)),
}
_OPERATOR_HEALTH: dict[int, dict[str, str]] = {}


def operator_health(mt: Handle) -> dict[str, str]:
    """{operator: what it got wrong} for neg, add and mul at ``HEALTH_POINTS``, asked once
    per grade (one round trip); an operator missing from it is right there."""
    if id(mt) not in _OPERATOR_HEALTH:
        cases = [(op, args) for op, points in HEALTH_POINTS.items() for args in points]
        broken: dict[str, str] = {}
        calls = [getattr(mt.operators, op)(*args) for op, args in cases]
        for (op, args), got in zip(cases, outcomes(*calls), strict=True):
            called, expected = f"operators.{op}({', '.join(map(fmt, args))})", OP_VALUES[op](*args)
            if isinstance(got, StudentError) and got.type_name == "ImportError":
                raise got  # a file that does not import: the report says so, once
            if op in broken:
                continue
            if getattr(got, "stands", False):  # `make test`: not written yet, say (told in
                broken[op] = got.waits_on  # full by the operator's own test)
            elif isinstance(got, StudentFault):
                kind = f" raised {got.type_name}" if isinstance(got, StudentError) else ""
                broken[op] = f"{called}{kind}: {got.message}"
            elif not (is_number(got) and within(got, expected, RTOL, ATOL)):
                broken[op] = f"{called} returned {fmt(got)}, not {fmt(expected)}"
        _OPERATOR_HEALTH[id(mt)] = broken
    return _OPERATOR_HEALTH[id(mt)]


def _expected(name: str, args: Sequence[list[float]]) -> tuple[Any, float, float]:
    """What helper ``name`` gives on ``args``, with (rtol, atol): another order of operations
    changes a sum by ~1e-16 * sum(|v|) per addition, a product by ~1e-16 relative per factor."""
    ls = args[0]
    if name == "negList":
        return [-x for x in ls], RTOL, ATOL
    if name == "addLists":
        return [x + y for x, y in zip(ls, args[1], strict=True)], RTOL, ATOL
    if name == "sum":
        return math.fsum(ls), RTOL, ATOL + 1e-12 * math.fsum(map(abs, ls)) * (len(ls) + 1)
    return math.prod(ls), RTOL + 1e-12 * (len(ls) + 1), ATOL


def _own(mt: Handle, op: str, name: str, args: Sequence[list[float]]) -> list[Any]:
    """What the student's own ``op`` gives where helper ``name`` uses it: a list of it on
    each position (negList, addLists), or the four ways of folding the list (sum, prod)."""
    fn = getattr(mt.operators, op)
    if name in ("negList", "addLists"):
        return [outcomes(*[fn(*a) for a in zip(*args, strict=True)]) if args[0] else []]
    folds = []
    for items in (args[0], args[0][::-1]):
        for acc_first in (True, False):
            acc: Any = 0.0 if name == "sum" else 1.0
            for x in items:
                acc = fn(acc, x) if acc_first else fn(x, acc)
            folds.append(acc)
    return outcomes(*folds) if args[0] else folds


def check_helper(mt: Handle, name: str, cases: Sequence[Sequence[list[float]]]) -> None:
    """negList / addLists / sum / prod on each case's lists, in one round trip. A list's
    result may be any iterable: it is read once, into a list. When the student's own neg /
    add / mul is wrong (task 0.1's mistake, found by ``operator_health``) and the helper
    agrees with it on these values, it is not charged again here."""
    __tracebackhide__ = True
    op = {"negList": "neg", "addLists": "add", "sum": "add", "prod": "mul"}[name]
    excusable, elementwise = op in operator_health(mt), name in ("negList", "addLists")
    fn, listed = getattr(mt.operators, name), builtin(mt, "list")
    calls = [fn(*args) for args in cases]
    results = [listed(call) if elementwise else call for call in calls]
    hint = f"{name} may return a list, a tuple or any iterable of floats" if elementwise else ""
    for args, call, result, got in zip(cases, calls, results, outcomes(*results), strict=True):
        expected, rtol, atol = _expected(name, args)
        if isinstance(got, StudentFault):  # the helper raised, or list() of what it returned
            faulted(got, result, f"list(operators.{name}(...))" if elementwise else "", hint)

        def right(v: Any, e: Any = expected, r: float = rtol, a: float = atol) -> bool:
            if type(e) is list:
                return type(v) is list and len(v) == len(e) and all(map(right, v, e))
            return is_number(v) and within(v, e, r, a)

        if right(got):
            continue
        theirs = _own(mt, op, name, args) if excusable else []
        if any(t == got for t in theirs) and not all(map(right, theirs)):
            continue
        if not elementwise:
            check_close(call, got, expected, rtol, atol)
            continue
        called, snippet = reproducer(call)[-1], reproducer(result)
        check_numbers(
            got, expected, what=callee([called]), called=called, rtol=RTOL, atol=ATOL,
            snippet=snippet, hint=hint,
        )  # fmt: skip


#: Trusted text run in the worker: what a Module method returned, with each Parameter
#: replaced by its id (the test knows the id of every Parameter it built).
IDS = "lambda items: [id(p) for p in items]"
NAMED_IDS = "lambda items: [[name, id(p)] for name, p in items]"


def module_tree(
    mt: Handle, spec: ModuleSpec
) -> tuple[dict[str, Handle], dict[str, Handle], dict[Handle, str]]:
    """Build ``spec``'s tree from the student's Module and Parameter, by attribute
    assignment and ``add_parameter``: ({module path: handle}, {parameter path: handle}, the
    names reproducers give the modules: root, root_a, root_a_b, ...)."""
    module, parameter = mt.Module, mt.Parameter
    modules: dict[str, Handle] = {}
    params: dict[str, Handle] = {}
    names = {module: "Module", parameter: "Parameter"}

    def build(spec: ModuleSpec, path: str) -> Handle:
        node = modules[path] = module()
        names[node] = "_".join(["root", *path.split(".")]) if path else "root"
        for name, value, how in spec["params"]:
            full = f"{path}.{name}" if path else name
            if how == "add":
                params[full] = node.add_parameter(name, value)
            else:
                params[full] = parameter(value)
                setattr(node, name, params[full])
        for name, child in spec["children"]:
            setattr(node, name, build(child, f"{path}.{name}" if path else name))
        return node

    build(spec, "")
    return modules, params, names


def tree_values(
    params: dict[str, Handle], *handles: Handle, what: str, names: dict[Handle, str]
) -> tuple[list[Any], dict[int, str]]:
    """The values of ``handles`` and {id: dotted path} of the tree's parameters, in one
    round trip (``answers``: a fault fails with the lines that build the tree)."""
    __tracebackhide__ = True
    ids = code(handles[0], "lambda *ps: [id(p) for p in ps]")(*params.values())
    *got, where = answers(*handles, ids, what=what, names=names)
    return got, dict(zip(where, params, strict=True))


# ------------------------------------------------ test_autodiff.py (+ hidden), over handles


def central_differences(
    mt: Handle, fn: Differentiable, cases: Sequence[tuple[list[float], int, float | None]]
) -> tuple[list[Handle], list[Any], dict[Handle, str]]:
    """The student's central_difference of ``fn`` (sent as its source text) at each
    ``(vals, arg, epsilon)`` of ``cases`` (epsilon None: the default), in one round trip:
    the calls, their values and the names for their reproducers."""
    __tracebackhide__ = True
    fs = [code(mt, fn.source) for _ in cases]  # one each: a reproducer shows its own call only
    calls = [
        mt.central_difference(f, *vals, arg=arg, **({} if e is None else {"epsilon": e}))
        for f, (vals, arg, e) in zip(fs, cases, strict=True)
    ]
    names = dict.fromkeys(fs, "f")
    return calls, answers(*calls, what="central_difference", names=names), names


def central_called(fn: Differentiable, vals: Sequence[float], arg: int, e: float | None) -> str:
    eps = "" if e is None else f", epsilon={fmt(e)}"
    return f"central_difference({fn.source}, {', '.join(fmt(v) for v in vals)}, arg={arg}{eps})"


# Stand-in variables for topological_sort and backpropagate: they follow the Variable
# protocol of autodiff.py (as a Scalar does) with known local derivatives (edge weights), so
# these tests depend on autodiff.py alone. The worker defines them from this text.
STAND_IN = """class Variable:
    def __init__(self, index, parents=(), weights=(), constant=False):
        self.index, self.name, self.data, self.derivative = index, f"v{index}", 0.0, None
        self._parents, self._weights, self._constant = list(parents), list(weights), constant
        self.history = None if constant else History(self._parents)
    def __repr__(self):
        return self.name
    @property
    def unique_id(self):
        return 1000 + self.index
    def is_leaf(self):
        return not self._constant and not self._parents
    def is_constant(self):
        return self._constant
    @property
    def parents(self):
        return list(self._parents)
    def chain_rule(self, d_output):
        assert self._parents, "chain_rule called on a leaf or a constant"
        return [(p, w * d_output) for p, w in zip(self._parents, self._weights)]
    def accumulate_derivative(self, x):
        assert self.is_leaf(), "accumulate_derivative called on a variable that is not a leaf"
        self.derivative = x if self.derivative is None else self.derivative + x
class History:  # what a Scalar's history holds, for code that reads it
    def __init__(self, inputs):
        self.last_fn, self.ctx, self.inputs = ("node" if inputs else None), None, tuple(inputs)
"""


def stand_ins(mt: Handle, graph: Sequence[VarNode]) -> tuple[list[Handle], dict[Handle, str]]:
    """``graph`` built of stand-in variables in the worker: the nodes, and their names."""
    variable = code(mt, STAND_IN, name="Variable")
    nodes: list[Handle] = []
    for i, node in enumerate(graph):
        if node[0] == "node":
            parents = [nodes[j] for j, _ in node[1]]
            nodes.append(variable(i, parents, [float(w) for _, w in node[1]]))
        else:
            nodes.append(variable(i, constant=True) if node[0] == "const" else variable(i))
    return nodes, {n: f"v{i}" for i, n in enumerate(nodes)}


def stand_in_order(mt: Handle, graph: Sequence[VarNode]) -> tuple[Handle, Any, dict]:
    """``topological_sort`` of stand-ins of ``graph`` in one round trip: its handle, what it
    returned as node indices (-1: not a node of the graph; a fault: it raised; a string:
    the type of what it returned, not an iterable), and the nodes' names."""
    nodes, names = stand_ins(mt, graph)
    order = mt.topological_sort(nodes[-1])
    # Its type's name, asked before anything iterates ``order``: that fault is not its own.
    kind = builtin(mt, "getattr")(builtin(mt, "type")(order), "__name__")
    got = outcomes(kind, code(mt, _WHERE)(order, *nodes))
    if isinstance(got[0], StudentFault) or not isinstance(got[1], list):
        return order, got[0] if isinstance(got[0], StudentFault) else str(got[0]), names
    return order, got[1], names


def check_stand_in_order(mt: Handle, graph: Sequence[VarNode], called: str = "") -> None:
    """topological_sort on stand-ins of ``graph``: each reachable non-constant variable
    once, the output first, every variable before its parents."""
    __tracebackhide__ = True
    called = called or f"topological_sort(v{len(graph) - 1}) where {variable_graph_text(graph)}"
    order, got, names = stand_in_order(mt, graph)
    if isinstance(got, StudentFault):
        answers(order, what="topological_sort", called=called, names=names)
    with reproduced(order, names=names):
        if isinstance(got, str):
            headline = "topological_sort did not return an iterable of the graph's variables."
            report(headline, called=called, returned=f"a {got} object", expected="a list of them")
        problem = order_problem(graph, got)
        if problem:
            report_order_problem(graph, got, problem, called=called)


def check_stand_in_backpropagate(
    mt: Handle, graph: Sequence[VarNode], deriv: float, called: str = ""
) -> None:
    """backpropagate on stand-ins of ``graph``: each leaf gets the sum over paths of the
    products of the weights, times ``deriv``. When it does not, point at topological_sort if
    that is what went wrong (on stand-ins of its own)."""
    __tracebackhide__ = True
    output = len(graph) - 1
    called = called or f"backpropagate(v{output}, {fmt(deriv)}) where {variable_graph_text(graph)}"
    nodes, names = stand_ins(mt, graph)
    mt.backpropagate(nodes[output], deriv)
    leaves = [i for i, n in enumerate(graph) if n[0] == "leaf"]
    derivs = [nodes[i].derivative for i in leaves]
    adj, absadj = path_derivatives(graph, deriv)
    live = ancestors(graph)
    with pointing(lambda: order_pointer(graph, stand_in_order(mt, graph)[1])):
        got = answers(*derivs, what="backpropagate", called=called, names=names)
        with reproduced(*derivs, names=names):
            judge_derivatives(
                got,
                [adj[i] if i in live else 0.0 for i in leaves],
                [RTOL * absadj[i] + 1e-12 for i in leaves],
                [i not in live or absadj[i] == 0.0 for i in leaves],
                what="backpropagate",
                names=[f"v{i}" for i in leaves],
                lines=list,
                d=deriv,
                called=called,
                hint="a variable must receive the derivatives from all of its uses before it "
                "passes its own derivative on (process variables in topological order)",
            )


# --------------------------------------------------------------------------- 1.1 functions
@dataclass(frozen=True)
class Differentiable:
    """A function a test sends to central_difference (as source text), with its exact gradient."""

    name: str
    arity: int
    f: Callable[..., float]
    grad: Callable[..., tuple[float, ...]]
    source: str  # what the worker evaluates (trusted text, minitorch and math in scope)
    # (f(.., x + h, ..) - f(.., x - h, ..)) / (2 h) along each argument, worked out by hand
    # for this f: (args..., h) -> one value per argument. The general formula is task 1.1's
    # solution; these closed forms are not (grader/tests/test_closed_forms.py checks them).
    symmetric: Callable[..., tuple[float, ...]]


DIFFERENTIABLES: dict[str, Differentiable] = {
    d.name: d
    for d in [
        Differentiable(
            "square",
            1,
            lambda x: x * x,
            lambda x: (2 * x,),
            "lambda x: x * x",
            lambda x, h: (2 * x,),
        ),
        Differentiable(
            "cubic",
            2,
            lambda x, y: x * x * x - 2.0 * x * y + y,
            lambda x, y: (3 * x * x - 2 * y, 1.0 - 2 * x),
            "lambda x, y: x * x * x - 2.0 * x * y + y",
            lambda x, y, h: (3 * x * x + h * h - 2 * y, 1.0 - 2 * x),
        ),
        Differentiable(
            "product3",
            3,
            lambda x, y, z: x * y * z,
            lambda x, y, z: (y * z, x * z, x * y),
            "lambda x, y, z: x * y * z",
            lambda x, y, z, h: (y * z, x * z, x * y),
        ),
        Differentiable(
            "sin_exp",
            2,
            lambda x, y: math.sin(x) * math.exp(0.5 * y),
            lambda x, y: (
                math.cos(x) * math.exp(0.5 * y),
                0.5 * math.sin(x) * math.exp(0.5 * y),
            ),
            "lambda x, y: math.sin(x) * math.exp(0.5 * y)",
            lambda x, y, h: (
                math.cos(x) * math.exp(0.5 * y) * math.sin(h) / h,
                math.sin(x) * math.exp(0.5 * y) * math.sinh(0.5 * h) / h,
            ),
        ),
        Differentiable(
            "ratio",
            2,
            lambda x, y: x / (1.0 + y * y),
            lambda x, y: (1.0 / (1.0 + y * y), -2.0 * x * y / (1.0 + y * y) ** 2),
            "lambda x, y: x / (1.0 + y * y)",
            lambda x, y, h: (
                1.0 / (1.0 + y * y),
                -2.0 * x * y / ((1.0 + (y + h) ** 2) * (1.0 + (y - h) ** 2)),
            ),
        ),
    ]
}


def _shifted(vals: Sequence[float], arg: int, delta: float) -> list[float]:
    out = list(vals)
    out[arg] = out[arg] + delta
    return out


def central_forms(
    fn: Differentiable, vals: Sequence[float], arg: int, epsilon: float
) -> tuple[float, float]:
    """The two correct central differences of ``fn`` at ``vals`` along ``arg``: with step
    epsilon on each side (the course's definition, divided by 2 epsilon), and with step
    epsilon / 2 on each side (divided by epsilon; the template's docstring points at it)."""
    full = fn.symmetric(*vals, epsilon)[arg]
    half = fn.symmetric(*vals, epsilon / 2)[arg]
    return full, half


def central_tolerance(
    fn: Differentiable, vals: Sequence[float], arg: int, epsilon: float
) -> tuple[float, float]:
    """(rtol, atol) for a central difference with step ``epsilon``: rounding of the two
    values of f (about 1e-16 * |f| each) divided by the step, with a wide margin."""
    size = max(abs(fn.f(*_shifted(vals, arg, s * epsilon))) for s in (-1.0, -0.5, 0.0, 0.5, 1.0))
    return RTOL, 1e-12 * max(size, 1.0) / epsilon


def central_wrong_forms(
    fn: Differentiable, vals: Sequence[float], arg: int, epsilon: float
) -> list[float]:
    """What common mistakes give: one-sided differences (with step e and e/2, either side)
    and an ignored epsilon (the exact derivative, what a tiny fixed step approaches)."""
    f0 = fn.f(*vals)
    out = [fn.grad(*vals)[arg]]
    for step in (epsilon, epsilon / 2):
        out.append((fn.f(*_shifted(vals, arg, step)) - f0) / step)
        out.append((f0 - fn.f(*_shifted(vals, arg, -step))) / step)
    return out


def central_separated(fn: Differentiable, vals: Sequence[float], arg: int, epsilon: float) -> bool:
    """Whether every mistake of ``central_wrong_forms`` is off from both correct forms by
    100 times the tolerance or more (not so where f is locally linear or cubic-free)."""
    forms = central_forms(fn, vals, arg, epsilon)
    rtol, atol = central_tolerance(fn, vals, arg, epsilon)
    return all(
        abs(wrong - form) > 100.0 * (atol + rtol * abs(form))
        for wrong in central_wrong_forms(fn, vals, arg, epsilon)
        for form in forms
    )


def check_central_difference(
    got: Any,
    fn: Differentiable,
    vals: Sequence[float],
    arg: int,
    epsilon: float,
    *,
    called: str,
    snippet: Sequence[str] = (),
) -> None:
    """``got`` must match one of the two correct central differences (``central_forms``)."""
    __tracebackhide__ = True
    full, half = central_forms(fn, vals, arg, epsilon)
    rtol, atol = central_tolerance(fn, vals, arg, epsilon)
    if is_number(got) and (within(got, full, rtol, atol) or within(got, half, rtol, atol)):
        return
    report(
        "central_difference returned the wrong value."
        if is_number(got)
        else f"central_difference returned a {type_name(got)}, not a number.",
        called=called,
        returned=got,
        expected=f"{fmt(full)} = (f(x + e) - f(x - e)) / (2 e), or {fmt(half)} = "
        f"(f(x + e/2) - f(x - e/2)) / e, with e = epsilon = {fmt(epsilon)} "
        f"({tolerance_text(rtol, atol)})",
        snippet=snippet,
        hint="step epsilon along argument `arg` only, on both sides of the point",
    )


# --------------------------------------------------------------------------- expression graphs
UNARY = ("neg", "log", "exp", "sigmoid", "relu")
BINARY = ("add", "sub", "mul", "div", "lt", "gt", "eq")

# An expression graph (real Scalars) is a list of nodes, each referring to earlier ones by
# index; the last is the output: ["var", i] the i-th input as a leaf Scalar; ["num", c] the
# Python float c beside a Scalar (apply wraps it as a leaf Scalar(c)); [op, j] with op in
# UNARY (-a, a.log(), ...); [op, j, k] with op in BINARY (a + b, a - b, ..., a == b).
Node = list

# Binary operators that may have a Python number on the left: the template gives Scalar
# __radd__, __rmul__ and __rtruediv__, but no __rsub__ (and tests never put a number on
# the left of a comparison).
NUMBER_LEFT = ("add", "mul", "div")


@dataclass(frozen=True)
class NodeInfo:
    value: float
    jac: tuple[float, ...]  # d node / d var_i (exact, forward mode)
    absjac: tuple[float, ...]  # sum over paths of |products|: the scale for rounding
    reaches: frozenset[int]  # vars the node depends on through the graph
    scalar: bool  # False for a plain number ("num")
    slack: float = 0.0  # how far a correct value may be off: log(x + 1e-6) is allowed
    gslack: tuple[float, ...] = ()  # the same for each derivative d node / d var_i

    def value_ok(self, got: Any) -> bool:
        """Whether a student's value for this node is right (allowing the log EPS)."""
        return is_number(got) and within(got, self.value, 1e-7, 1e-9 + 2.0 * self.slack)


def _local(op: str, a: float, b: float | None) -> tuple[float, tuple[float, ...]]:
    """(value, local derivatives) of one op at its operand values."""
    args = (a,) if b is None else (a, b)
    return OP_VALUES[op](*args), local_derivatives(op, *args)


def node_info(node: Node, infos: Sequence[NodeInfo], values: Sequence[float]) -> NodeInfo:
    """The trusted value and exact derivatives of one node, given the earlier nodes."""
    n = len(values)
    zero = (0.0,) * n
    kind = node[0]
    if kind == "var":
        i = node[1]
        jac = tuple(1.0 if k == i else 0.0 for k in range(n))
        return NodeInfo(values[i], jac, jac, frozenset([i]), True)
    if kind == "num":
        return NodeInfo(float(node[1]), zero, zero, frozenset(), False)
    operands = [infos[j] for j in node[1:]]
    value, local = _local(kind, operands[0].value, operands[1].value if len(operands) > 1 else None)
    jac = [0.0] * n
    absjac = [0.0] * n
    gslack = [0.0] * n
    slack = LOG_EPS / operands[0].value if kind == "log" else 0.0
    deviations = _local_deviations(kind, operands)
    for info, d, dev in zip(operands, local, deviations, strict=False):
        slack += abs(d) * info.slack
        for k in range(n):
            jac[k] += d * info.jac[k]
            absjac[k] += abs(d) * info.absjac[k]
            gslack[k] += abs(d) * (info.gslack[k] if info.gslack else 0.0) + dev * info.absjac[k]
    reaches = frozenset().union(*(o.reaches for o in operands))
    return NodeInfo(value, tuple(jac), tuple(absjac), reaches, True, slack, tuple(gslack))


def _local_deviations(op: str, operands: Sequence[NodeInfo]) -> tuple[float, ...]:
    """How far each local derivative may be off when the operands are off by their slack
    (first order), plus the log EPS in log's own derivative 1 / (x + 1e-6)."""
    a = operands[0]
    if op == "mul":
        return (operands[1].slack, a.slack)
    if op == "div":
        b = operands[1]
        return (
            b.slack / b.value**2,
            a.slack / b.value**2 + 2.0 * abs(a.value) * b.slack / abs(b.value) ** 3,
        )
    if op == "log":
        return ((a.slack + LOG_EPS) / a.value**2,)
    if op == "exp":
        return (math.exp(a.value) * 2.0 * a.slack,)
    if op == "sigmoid":
        return (0.1 * a.slack,)  # |sigmoid''| <= 0.1
    return (0.0,) * len(operands)


def analyse(nodes: Sequence[Node], values: Sequence[float]) -> list[NodeInfo]:
    infos: list[NodeInfo] = []
    for node in nodes:
        infos.append(node_info(node, infos, values))
    return infos


def valid_node(node: Node, infos: Sequence[NodeInfo], values: Sequence[float]) -> NodeInfo | None:
    """The new node's info when it keeps the graph inside every op's safe domain, else None.

    Log sees >= 0.5, Exp <= 3, a divisor is >= 0.25 in size, ReLU and comparisons stay
    SWITCH_MARGIN away from their switch point (comparing a node with itself is safe),
    every value stays within 50 and every derivative within 1000, so perturbing an input
    by a central-difference step never crosses a kink.
    """
    op = node[0]
    a = infos[node[1]]
    b = infos[node[2]] if len(node) > 2 else None
    if op == "log" and a.value < 0.5:
        return None
    if op == "exp" and a.value > 3.0:
        return None
    if op == "relu" and abs(a.value) < SWITCH_MARGIN:
        return None
    if op == "div" and b is not None and abs(b.value) < 0.25:
        return None
    if op in ("lt", "gt", "eq") and b is not None and node[1] != node[2]:
        if abs(a.value - b.value) < SWITCH_MARGIN:
            return None
    new = node_info(node, infos, values)
    return new if abs(new.value) <= 50.0 and all(abs(j) <= 1000.0 for j in new.absjac) else None


@dataclass(frozen=True)
class Expression:
    """A graph of Scalar operations (the node format documented beside ``Node``) and its
    input values."""

    nodes: list[Node]
    values: list[float]

    def infos(self) -> list[NodeInfo]:
        """``analyse`` of the graph, worked out once (several checks of an example ask)."""
        if "_infos" not in self.__dict__:
            self.__dict__["_infos"] = analyse(self.nodes, self.values)
        return self.__dict__["_infos"]


def _draw_node(draw: Any, op: str, a: int, count: int, infos: list[Any]) -> list[Any]:
    """One node applying ``op`` to node ``a`` (and, for a binary ``op``, to a node drawn from
    the ``count`` so far, on either side where a number may stand on the left)."""
    if op in UNARY:
        return [op, a]
    b = draw(st.integers(0, count - 1))
    left_ok = infos[b].scalar or op in NUMBER_LEFT
    return [op, b, a] if left_ok and draw(st.booleans()) else [op, a, b]


@functools.cache  # one strategy per arguments: building one costs more than a draw
@st.composite
def expressions(
    draw: st.DrawFn,
    ops: Sequence[str] = UNARY + BINARY,
    max_vars: int = 3,
    max_ops: int = 8,
    numbers: bool = True,
) -> Expression:
    """A random expression graph with 1..max_vars inputs, built to stay in every domain.

    Operands are drawn among all earlier nodes, so variables and intermediates get reused
    (x * x, diamonds, a node feeding ops at different depths). Python floats are mixed in
    when ``numbers`` is set: on the right of any binary operator, on the left only of
    + * / (NUMBER_LEFT). No constant Scalars: template code never makes them.
    """
    n_vars = draw(st.integers(1, max_vars))
    values = [draw(floats(-3.0, 3.0)) for _ in range(n_vars)]
    nodes: list[Node] = [["var", i] for i in range(n_vars)]
    if numbers:
        for _ in range(draw(st.integers(0, 2))):
            nodes.append(["num", draw(floats(-3.0, 3.0))])
    infos = analyse(nodes, values)
    fallback = next((op for op in ("sigmoid", "neg") if op in ops), None)
    for _ in range(draw(st.integers(1, max_ops))):
        scalars = [i for i, info in enumerate(infos) if info.scalar]
        op = draw(st.sampled_from(list(ops)))
        # Prefer recent nodes a little, so graphs get deep as well as wide.
        a = draw(st.sampled_from(scalars[-4:] if draw(st.booleans()) else scalars))
        node = _draw_node(draw, op, a, len(nodes), infos)
        info = valid_node(node, infos, values)
        if info is None and fallback is not None:
            node = [fallback, a]
            info = valid_node(node, infos, values)
        if info is None:
            continue
        nodes.append(node)
        infos.append(info)
    if not infos[-1].reaches or not infos[-1].scalar:
        # The output must depend on an input: join the last node with x0.
        last = len(nodes) - 1
        joiner = next((op for op in ("add", "mul", "sub") if op in ops), None)
        unary = next((op for op in ops if op in UNARY and op not in ("log", "relu")), None)
        if joiner is not None:
            left_ok = infos[-1].scalar or joiner in NUMBER_LEFT
            nodes.append([joiner, last, 0] if left_ok else [joiner, 0, last])
        elif unary is not None:
            nodes.append([unary, 0])
        else:
            nodes.append([ops[0], 0] if ops[0] in UNARY else [ops[0], 0, 0])
    return Expression(nodes, values)


@functools.cache
@st.composite
def continued_expressions(draw: st.DrawFn, ops: Sequence[str]) -> tuple[Expression, int]:
    """(expr, k): the nodes of ``expr`` up to k are a first graph, whose output t<k> has been
    through backward() once; the nodes after k are a second graph built on top of it, so the
    output y depends on t<k> and on the first graph's intermediates (the shape of
    ``t = x * x; t.backward(); y = 3 * t; y.backward()``). The first operation after k uses
    t<k>, each later one the operation before it, with another operand drawn among all
    earlier nodes; comparisons are left out there when another operator works (they would
    make y flat in t<k>)."""
    first = draw(expressions(ops=ops, max_ops=5))
    nodes = [list(n) for n in first.nodes]
    values = list(first.values)
    k = len(nodes) - 1
    assume(nodes[k][0] not in ("var", "num"))
    infos = analyse(nodes, values)
    chain_ops = [op for op in ops if op not in ("lt", "gt", "eq")] or list(ops)
    fallback = [op for op in ("sigmoid", "neg") if op in ops]
    last = k
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(chain_ops))
        node = _draw_node(draw, op, last, len(nodes), infos)
        info = valid_node(node, infos, values)
        for f in fallback if info is None else ():
            node = [f, last]
            info = valid_node(node, infos, values)
            if info is not None:
                break
        if info is None:
            continue
        nodes.append(node)
        infos.append(info)
        last = len(nodes) - 1
    assume(last != k)
    return Expression(nodes, values), k


# Fixed one-operation checks of each Scalar operator: (graph, values, expected value, inputs
# the result must reach). Used to find the operators whose forward works, so that graph
# tests of task 1.4 only combine those (a forward mistake is task 1.2's).
def _op_cases() -> dict[str, list[tuple[list[Node], list[float], float, list[int]]]]:
    binary_points = {
        "add": [(0.75, -1.25)],
        "sub": [(0.75, -1.25), (2.5, 0.5)],
        "mul": [(1.5, -0.4)],
        "div": [(1.5, -0.4), (-0.6, 2.5)],
        "lt": [(0.3, 0.8), (0.8, 0.3)],
        "gt": [(0.3, 0.8), (0.8, 0.3)],
        "eq": [(0.5, 0.7), (0.7, 0.7)],
    }
    unary_points = {
        "neg": [0.6],
        "log": [2.0, 0.4],
        "exp": [0.5, -1.5],
        "sigmoid": [-0.7, 1.2],
        "relu": [-0.5, 1.5],
    }
    cases: dict[str, list[tuple[list[Node], list[float], float, list[int]]]] = {}
    for op, points in binary_points.items():
        cases[op] = []
        for a, b in points:
            value, _ = _local(op, a, b)
            cases[op] += [
                ([["var", 0], ["var", 1], [op, 0, 1]], [a, b], value, [0, 1]),
                ([["var", 0], ["num", b], [op, 0, 1]], [a], value, [0]),
            ]
            if op in NUMBER_LEFT:
                cases[op].append(([["num", a], ["var", 0], [op, 0, 1]], [b], value, [0]))
    for op, points in unary_points.items():
        cases[op] = [([["var", 0], [op, 0]], [a], _local(op, a, None)[0], [0]) for a in points]
    return cases


OP_CASES = _op_cases()


class Tally:
    """The examples a graph test tried and those it could judge (``require_judged``), overall
    and among the informative ones: graphs whose output depends on an input, by the trusted
    closed forms. A flat graph is judged by a backward that returns zeros everywhere, so
    skips chosen where graphs are not flat must not leave only flat ones judged."""

    def __init__(self) -> None:
        self.tried = self.judged = 0
        self.informative = self.informative_judged = 0

    def add(self, judged: bool, *exprs: Expression) -> None:
        self.tried += 1
        self.judged += bool(judged)
        if any(any(j != 0.0 for j in e.infos()[-1].jac) for e in exprs):
            self.informative += 1
            self.informative_judged += bool(judged)


def require_judged(tally: Tally, what: str = "Scalar.backward") -> None:
    """Fail unless the test judged more than half of the examples it tried, and more than
    half of those whose output depends on the inputs.

    An example is skipped only when the student's forward values or wiring differ from the
    trusted ones (task 1.2's mistake). Graph tests draw only operators whose forward passed
    the trusted health check (``healthy_ops``), so honest code is judged on nearly every
    example; student code that changes its forward values between calls (only where a
    graph's output is not flat, say) must not turn its wrong backward into a pass made of
    flat graphs. Only trusted data decides whether a test passes: it never passes on a few
    examples.
    """
    __tracebackhide__ = True
    for judged, tried, which in (
        (tally.judged, max(tally.tried, 1), "graphs tried"),
        (
            tally.informative_judged,
            tally.informative,
            "graphs tried whose output depends on an input",
        ),
    ):
        if tried and judged * 2 <= tried:
            pytest.fail(
                f"{what} could be checked on only {judged} of the {tried} {which}. On "
                "the others, building the graph raised or gave forward values that differ "
                "from the right ones, although every operator in these graphs gave the right "
                "values in the forward checks made first (task 1.2): the forward values "
                "changed from one call to the next. A test must check more than half of its "
                "graphs, so this one fails. Make each Scalar operation give the same, right "
                "value whenever it is called.",
                pytrace=False,
            )


# Replacements for an operator whose forward is wrong, in order of preference: each keeps the
# fixed shapes inside every op's domain (inputs in [0.2, 2], values in the shapes below 50).
_SUBSTITUTES = {
    "add": ("mul", "sub"),
    "sub": ("add", "mul"),
    "mul": ("add", "sub"),
    "div": ("mul", "add", "sub"),
    "lt": ("gt", "mul", "add"),
    "gt": ("lt", "mul", "add"),
    "eq": ("lt", "gt", "mul", "add"),
    "neg": ("sigmoid", "exp"),
    "log": ("sigmoid", "neg"),
    "exp": ("sigmoid", "neg"),
    "sigmoid": ("neg", "exp"),
    "relu": ("sigmoid", "neg"),
}


def substitute_ops(nodes: Sequence[Node], ops: Sequence[str]) -> list[Node]:
    """``nodes`` with every operator outside ``ops`` swapped for a working one of the same
    arity, so a fixed graph shape is still judged when one of its operators' forward is
    wrong (task 1.2's mistake). Fails when an operator has no working replacement."""
    __tracebackhide__ = True
    out: list[Node] = []
    for node in nodes:
        op = node[0]
        if op in ("var", "num") or op in ops:
            out.append(list(node))
            continue
        swap = next((s for s in _SUBSTITUTES[op] if s in ops), None)
        if swap is None:
            pytest.fail(
                f"Scalar.backward could not be checked on this graph shape: Scalar {op} and "
                f"every operator that could stand in for it ({', '.join(_SUBSTITUTES[op])}) "
                "give wrong forward values. Fix the forward tests (task 1.2) first.",
                pytrace=False,
            )
        out.append([swap, *node[1:]])
    return out


# --------------------------------------------------------------------------- variable graphs
VarNode = list  # ["leaf"] | ["const"] | ["node", [[j, w], ...]]


# Edge weights of stand-in graphs: a fixed set keeps generation cheap; none is 0, and sums of
# path products only cancel by coincidence, which the tolerance (relative to the sum of
# |contributions|) does not mind.
WEIGHTS = (0.5, 0.75, 1.5, 2.0, -0.5, -1.25, -2.0, 1.0, -1.0)


@st.composite
def variable_graphs(draw: st.DrawFn, max_inner: int = 8, constants: bool = False) -> list[VarNode]:
    """A random DAG of stand-in variables: leaves and inner nodes (and, with ``constants``,
    one or two constant inputs: only for the one test of "non-constant Variables").

    Inner nodes take 1-3 parents among all earlier nodes (repeats allowed: x used twice),
    so diamonds, shared intermediates at different depths and unreachable nodes appear.
    """
    graph: list[VarNode] = [["leaf"] for _ in range(draw(st.integers(1, 3)))]
    if constants:
        graph += [["const"] for _ in range(draw(st.integers(1, 2)))]
    if constants:  # the first inner node uses a leaf and a constant
        graph.append(["node", [[0, draw(st.sampled_from(WEIGHTS))], [len(graph) - 1, 1.5]]])
    for _ in range(draw(st.integers(1, max_inner))):
        lo = max(0, len(graph) - 3) if draw(st.booleans()) else 0
        parents = [
            [draw(st.integers(lo, len(graph) - 1)), draw(st.sampled_from(WEIGHTS))]
            for _ in range(draw(st.integers(1, 3)))
        ]
        graph.append(["node", parents])
    return compact(graph)


def compact(graph: Sequence[VarNode]) -> list[VarNode]:
    """``graph`` without the nodes its output cannot reach, renumbered in order.

    Student code only ever sees the output and, through ``parents``, what it reaches, so the
    other nodes change nothing; leaving them out keeps shrunk examples free of dead nodes.
    """
    keep = sorted(ancestors(graph))
    new_index = {old: new for new, old in enumerate(keep)}
    out: list[VarNode] = []
    for old in keep:
        node = graph[old]
        if node[0] == "node":
            out.append(["node", [[new_index[j], w] for j, w in node[1]]])
        else:
            out.append([node[0]])
    return out


def chain_graph(depth: int, weights: Sequence[float], twice: bool = False) -> list[VarNode]:
    """A chain ``depth`` variables deep: one leaf, then depth - 1 nodes each on the last.

    With ``twice`` each node uses the previous one twice (x * x style), a ladder of
    diamonds where every variable receives two contributions.
    """
    graph: list[VarNode] = [["leaf"]]
    for i in range(depth - 1):
        w = weights[i % len(weights)]
        parents = [[i, w], [i, -0.5 * w]] if twice else [[i, w]]
        graph.append(["node", parents])
    return graph


def path_derivatives(graph: Sequence[VarNode], deriv: float) -> tuple[list[float], list[float]]:
    """d(output)/d(node) * deriv for every node, and the sum of |path contributions|."""
    n = len(graph)
    adj = [0.0] * n
    absadj = [0.0] * n
    adj[-1] = deriv
    absadj[-1] = abs(deriv)
    for i in range(n - 1, -1, -1):  # parents always have smaller indices
        if graph[i][0] != "node":
            continue
        for j, w in graph[i][1]:
            adj[j] += w * adj[i]
            absadj[j] += abs(w) * absadj[i]
    return adj, absadj


def variable_graph_text(graph: Sequence[VarNode]) -> str:
    parts = []
    for i, n in enumerate(graph):
        if n[0] == "node":
            parts.append(f"v{i} = " + " + ".join(f"{fmt(w)}*v{j}" for j, w in n[1]))
        else:
            parts.append(f"v{i} = {n[0]}")
    text = "; ".join(parts)
    return text if len(text) < 600 else text[:600] + " ..."


# --------------------------------------------------------------------------- modules
ModuleSpec = dict  # {"params": [[name, value, "attr" | "add"]], "children": [[name, spec]]}
_PARAM_NAMES = ["p1", "p2", "weight", "bias"]
_CHILD_NAMES = ["a", "b", "layer1", "layer2"]


@st.composite
def module_specs(draw: st.DrawFn, depth: int = 2) -> ModuleSpec:
    """A random Module tree description, up to ``depth`` levels of children."""
    params = draw(st.lists(st.sampled_from(_PARAM_NAMES), max_size=3, unique=True))
    spec_params = [
        [p, draw(floats(-10.0, 10.0)), draw(st.sampled_from(["attr", "attr", "add"]))]
        for p in params
    ]
    children = []
    if depth > 0:
        names = draw(st.lists(st.sampled_from(_CHILD_NAMES), max_size=3, unique=True))
        children = [[n, draw(module_specs(depth - 1))] for n in names]
    return {"params": spec_params, "children": children}


def module_paths(spec: ModuleSpec, prefix: str = "") -> dict[str, ModuleSpec]:
    """Every module of the tree by dotted path ("" is the root)."""
    out = {prefix: spec}
    for name, child in spec["children"]:
        out.update(module_paths(child, f"{prefix}.{name}" if prefix else name))
    return out


# --------------------------------------------------------------------------- one graph model
# Both notations above (an expression of Scalars, ``Node``; stand-in variables, ``VarNode``)
# are lists of nodes that refer to earlier ones by index, the last the output. What a
# topological order or a backward pass must give is judged here for either, through
# ``inputs``.
def inputs(node: list) -> list[int]:
    """The nodes ``node`` is computed from, in either notation."""
    if node[0] == "node":
        return [j for j, _ in node[1]]
    return [] if node[0] in ("var", "num", "leaf", "const") else list(node[1:])


def ancestors(nodes: Sequence[list], outputs: Sequence[int] = ()) -> set[int]:
    """The nodes ``outputs`` (by default the last node) are computed from, themselves too."""
    seen: set[int] = set()
    stack = list(outputs) or [len(nodes) - 1]
    while stack:
        j = stack.pop()
        if j not in seen:
            seen.add(j)
            stack.extend(inputs(nodes[j]))
    return seen


def _stand_ins(nodes: Sequence[list]) -> bool:
    return nodes[-1][0] in ("leaf", "const", "node")


def node_name(nodes: Sequence[list], j: int) -> str:
    """Node j as messages and reproducers name it: v3 (a stand-in variable); x0, t3 or y (a
    Scalar); a Python number as itself."""
    kind = nodes[j][0]
    if _stand_ins(nodes):
        return f"v{j}"
    if j == len(nodes) - 1:
        return "y"
    return (
        f"x{nodes[j][1]}"
        if kind == "var"
        else fmt(float(nodes[j][1]))
        if kind == "num"
        else f"t{j}"
    )


def order_problem(nodes: Sequence[list], order: Any) -> str | None:
    """What is wrong with what topological_sort returned for the output, or None. ``order``
    holds node indices, -1 for an object that is no node of the graph.

    Stand-in variables: each non-constant variable the output reaches, once, and nothing
    else. Scalars: a Scalar made inside an operation (the -b of a - b, a number wrapped by
    apply) may appear too, and an input used twice (``["var", 0]`` twice) is one Scalar."""
    strict, what = (True, "variable") if _stand_ins(nodes) else (False, "Scalar")
    if not isinstance(order, list) or not all(type(i) is int for i in order):
        return f"topological_sort did not return an iterable of the graph's {what}s"
    first: dict[int, int] = {}
    canon = [first.setdefault(n[1], j) if n[0] == "var" else j for j, n in enumerate(nodes)]
    order = [canon[i] if 0 <= i < len(nodes) else -1 for i in order]
    name, output = functools.partial(node_name, nodes), canon[-1]
    expected = {canon[j] for j in ancestors(nodes) if nodes[j][0] not in ("num", "const")}
    if strict and -1 in order:
        return "topological_sort returned an object that is not a variable of the graph"
    known = [i for i in order if i >= 0]
    twice = sorted(i for i, count in Counter(known).items() if count > 1)
    if twice:
        return f"topological_sort returned {', '.join(map(name, twice))} more than once"
    if strict and any(nodes[i][0] == "const" for i in known):
        return "topological_sort returned a constant (is_constant() is True): leave them out"
    missing, extra = sorted(expected - set(known)), sorted(set(known) - expected) if strict else []
    if missing or extra:
        told = [f"left out {', '.join(map(name, missing))}"] if missing else []
        told += (
            [f"returned {', '.join(map(name, extra))}, which it does not reach"] if extra else []
        )
        return f"topological_sort({name(output)}) {' and '.join(told)}"
    if order[0] != output:
        how = " (it returned the leaves first)" if order[-1] == output else ""
        given = f"{name(output)}, the {what} it is given{how}"
        return f"topological_sort({name(output)}) must start with {given}"
    position = {i: k for k, i in enumerate(order) if i >= 0}
    for j in sorted(expected):
        for k in sorted({canon[k] for k in inputs(nodes[j])} & expected):
            if position[k] < position[j]:
                return (
                    f"topological_sort({name(output)}) put {name(k)} before {name(j)}, but "
                    f"{name(k)} is {'a parent' if strict else 'an input'} of {name(j)}"
                )
    return None


def report_order_problem(
    nodes: Sequence[list], order: Any, problem: str, *, called: str, snippet: Sequence[str] = ()
) -> NoReturn:
    """Fail with ``problem``, what ``order_problem`` found in ``order``."""
    __tracebackhide__ = True
    rule, hint = "each Scalar y depends on once, y first, each before its inputs", ""
    if _stand_ins(nodes):
        members = brief([f"v{j}" for j in sorted(ancestors(nodes)) if nodes[j][0] != "const"])
        rule = f"each of {members} once, v{len(nodes) - 1} first, each before its parents"
    elif "left out" in problem:
        hint = MEMBERSHIP_HINT
    shown = (
        [node_name(nodes, i) if type(i) is int and 0 <= i < len(nodes) else "other" for i in order]
        if isinstance(order, list)
        else order
    )
    report(
        f"{problem}.",
        called=called,
        returned=brief(shown) if isinstance(shown, list) else fmt(shown),
        expected=rule,
        snippet=snippet,
        hint=hint,
    )


def order_pointer(nodes: Sequence[list], order: Any) -> str:
    """For a failing backward pass: what is wrong with topological_sort there, or ""."""
    if isinstance(order, StudentError):
        return f"topological_sort raised {order.type_name} on this graph (see its tests)"
    problem = order_problem(nodes, order)
    return f"your {problem} here (see the topological_sort tests)" if problem else ""


def _table(names: Sequence[str], values: Sequence[Any]) -> str:
    return "{" + ", ".join(f"{n}: {fmt(v)}" for n, v in zip(names, values, strict=True)) + "}"


def judge_derivatives(
    got: Sequence[Any],
    expected: Sequence[float],
    atols: Sequence[float],
    may_keep_none: Sequence[bool],
    *,
    what: str,
    names: Sequence[str],
    lines: Callable[[], list[str]],
    d: float,
    called: str = "",
    hint: str = "",
) -> None:
    """The leaves' derivatives after a backward pass started with ``d``: each within RTOL
    and its atol of ``expected``; a leaf of ``may_keep_none`` (the output does not depend on
    it, or only through zero local derivatives) may keep None. ``lines`` makes the
    reproducer, only for a failure (it costs more than the check)."""
    __tracebackhide__ = True

    def right(values: Sequence[Any], scale: float = 1.0) -> list[bool]:
        return [
            (v is None and skip) or (is_number(v) and within(v * scale, e, RTOL, a))
            for v, e, a, skip in zip(values, expected, atols, may_keep_none, strict=True)
        ]

    for i, ok in enumerate(right(got)):
        if ok:
            continue
        value, shown = got[i], lines()
        if d != 1.0 and all(right(got, d)):  # every one off by the factor d exactly
            hint = f"the pass starts from the derivative it is given ({fmt(d)} here), not 1.0"
        report(
            f"{what}: {names[i]}.derivative is {'None' if value is None else 'wrong'}.",
            called=called or _called(shown),
            returned=_table(names, got),
            expected=f"{_table(names, expected)} (each within {max(atols):.2g} and "
            f"{RTOL:.0e} of its size)",
            snippet=shown if len(shown) <= 40 else [],
            hint=hint
            or (
                "every leaf the output depends on must receive a derivative"
                if value is None
                else ""
            ),
        )


# --------------------------------------------------------------------------- test_scalar*.py 1.4
# tests/test_scalar.py and tests/hidden/test_scalar_hidden.py, task 1.4. A graph (an
# ``Expression``) is built on the trusted side by applying handle operators to Scalar handles
# (``x0 * 1.5``, ``t2.log()``); backward runs in the student's process and only plain numbers
# come back, in one round trip per example, judged against the exact derivatives (``analyse``).
# Attribution: graphs use only operators whose forward works (``graph_ops``, else task 1.2's),
# a graph whose forward values are not the trusted ones is not judged (``most_judged``
# counts), and when chain_rule is wrong (task 1.3's) only topological_sort is judged on a
# graph: each backward function and backpropagate have tests of their own.
_APPLY: dict[str, Callable[..., Any]] = {
    "neg": lambda a: -a, "log": lambda a: a.log(), "exp": lambda a: a.exp(),
    "sigmoid": lambda a: a.sigmoid(), "relu": lambda a: a.relu(), "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b, "mul": lambda a, b: a * b, "div": lambda a, b: a / b,
    "lt": lambda a, b: a < b, "gt": lambda a, b: a > b, "eq": lambda a, b: a == b,
}  # fmt: skip
# the position of each Scalar of an order among the nodes, by identity (-1: no node)
_WHERE = (
    "lambda order, *nodes: [next((j for j, n in enumerate(nodes) if n is v), -1) for v in order]"
)
_ZERO = "lambda *xs: [setattr(x, 'derivative', None) for x in xs]"
# Every Scalar the output's history reaches, each with its inputs' positions and its
# function's local derivatives times d (``last_fn._backward(ctx, d)``): the parts a backward
# pass is made of, for judging them when chain_rule (task 1.3's) is wrong.
_PARTS = """
def parts(d, y, *leaves):
    index, nodes, stack = {}, [], [y]
    while stack and len(nodes) < 5000:
        n = stack.pop()
        if id(n) in index:
            continue
        index[id(n)] = len(nodes)
        nodes.append(n)
        h = getattr(n, "history", None)
        if h is not None and getattr(h, "last_fn", None) is not None:
            stack.extend(x for x in h.inputs if hasattr(x, "history"))
    out = []
    for n in nodes:
        h = n.history
        if h is None or getattr(h, "last_fn", None) is None:
            out.append(None)
            continue
        local = h.last_fn._backward(h.ctx, d)
        local = list(local) if isinstance(local, (tuple, list)) else [local]
        out.append([[index.get(id(x), -1) for x in h.inputs], local])
    return [out, [index.get(id(x), -1) for x in leaves]]
"""


def derivatives_from_parts(parts: Any, d: float) -> list[float] | None:
    """The leaves' derivatives a correct backpropagation would give from the student's own
    local derivatives (``_PARTS``), computed here; None when the parts are not usable."""
    if not (isinstance(parts, list) and len(parts) == 2 and isinstance(parts[0], list)):
        return None
    nodes, leaves = parts
    n = len(nodes)
    for node in nodes:
        if node is None:
            continue
        ok = isinstance(node, list) and len(node) == 2 and isinstance(node[1], list)
        if not ok or len(node[0]) != len(node[1]) or not all(is_number(v) for v in node[1]):
            return None
        if not all(type(i) is int and -1 <= i < n for i in node[0]):
            return None
    order: list[int] = []  # inputs before the nodes using them (iteratively: graphs are deep)
    seen: set[int] = set()
    for start in range(n):
        stack = [(start, False)]
        while stack:
            k, done = stack.pop()
            if done:
                order.append(k)
            elif k not in seen:
                seen.add(k)
                stack.append((k, True))
                stack.extend((i, False) for i in (nodes[k] or [[]])[0] if i >= 0)
    grad = [0.0] * n
    grad[0] = d
    for k in reversed(order):
        if nodes[k] is not None:
            for i, local in zip(nodes[k][0], nodes[k][1], strict=True):
                if i >= 0:
                    grad[i] += grad[k] * (local / d)
    return [grad[i] if 0 <= i < n else 0.0 for i in leaves]


class Graph:
    """``expr`` built with handles: ``leaves``, ``nodes`` (a float for a number) and their
    ``names`` in reproducers (x0, t3, y; a second graph w0, s3, z)."""

    def __init__(self, mt: Any, expr: Expression, upto: int = 0, style: str = "xty") -> None:
        self.expr, self.style = expr, style
        self.leaves = [mt.Scalar(v) for v in expr.values]
        self.nodes: list[Any] = []
        self.names: dict[Any, str] = {h: f"{style[0]}{i}" for i, h in enumerate(self.leaves)}
        self.extend(upto or len(expr.nodes))

    def extend(self, upto: int) -> None:
        for j in range(len(self.nodes), upto):
            kind, *args = self.expr.nodes[j]
            if kind in ("var", "num"):
                self.nodes.append(self.leaves[args[0]] if kind == "var" else float(args[0]))
                continue
            self.nodes.append(_APPLY[kind](*[self.nodes[k] for k in args]))
            last = j == len(self.expr.nodes) - 1
            self.names[self.nodes[j]] = self.style[2] if last else f"{self.style[1]}{j}"

    @property
    def y(self) -> Any:
        return self.nodes[-1]

    def data(self, start: int = 0) -> list[tuple[int, Any]]:
        """(node, handle of its .data) of each computed node from ``start`` on."""
        kinds = [node[0] for node in self.expr.nodes]
        return [
            (j, self.nodes[j].data)
            for j in range(start, len(self.nodes))
            if kinds[j] not in ("var", "num")
        ]

    def forward_ok(self, data: list[tuple[int, Any]], got: Sequence[Any]) -> bool:
        """Whether the student's forward values are the trusted ones (else: task 1.2's)."""
        infos = self.expr.infos()
        for (j, _), value in zip(data, got, strict=True):
            if isinstance(value, StudentFault):
                _raise_unless_student_error(value)
            if not infos[j].value_ok(value):
                return False
        return True

    def lines(self, *targets: Any) -> list[str]:
        """The shell lines that rebuild ``targets`` (shown as one list), or the graph."""
        if not targets:
            return reproducer(self.y, names=self.names)[:-1]
        lines = reproducer(*targets, names=self.names)
        n = len(targets)
        return lines if n == 1 else [*lines[:-n], "[" + ", ".join(lines[-n:]) + "]"]


def _raise_unless_student_error(fault: StudentFault) -> None:
    """A hang, a crash, the budget or a file that does not import stops the test as is."""
    if not isinstance(fault, StudentError) or " could not be imported: " in fault.message:
        raise fault


def _called(lines: Sequence[str], targets: int = 1) -> str:
    """The statements of reproducer ``lines`` on one line (a long graph: its ends)."""
    statements = list(lines[1 : len(lines) - targets])
    if len(statements) > 14:
        statements = [*statements[:7], f"... ({len(statements) - 10} more) ...", *statements[-3:]]
    return "; ".join(statements)


def _raised(fault: Any, what: str, lines: Callable[[], list[str]], hint: str = "") -> None:
    """Fail with what student code raised, when ``fault`` is one; ``lines`` makes the
    reproducer (only then: it costs more than the check)."""
    __tracebackhide__ = True
    if isinstance(fault, StudentFault):
        _raise_unless_student_error(fault)
        shown = lines()
        faulted(fault, None, what, hint, shown, called=_called(shown))


_HEALTHY: dict[int, tuple[str, ...]] = {}
_CHAIN_RULE_OK: dict[int, bool] = {}


def graph_ops(mt: Any) -> tuple[str, ...]:
    """The Scalar operators whose forward value and recorded inputs are right on fixed cases
    (``OP_CASES``), asked once per session in one round trip: graphs of task 1.4 use only
    these (a forward mistake is task 1.2's). Fails when none works."""
    __tracebackhide__ = True
    if id(mt) not in _HEALTHY:
        reach, asked = code(mt, REACHES, name="reaches"), []
        for op, cases in OP_CASES.items():
            for graph, values, _, inputs in cases:
                g = Graph(mt, Expression(graph, values))
                asked.append((op, g.expr.infos()[-1], inputs, g.y.data, reach(g.y, *g.leaves)))
        got = outcomes(*[h for *_, data, reached in asked for h in (data, reached)])
        broken = set()
        for (op, info, inputs, *_), data, reached in zip(asked, got[::2], got[1::2], strict=True):
            for fault in (data, reached):
                if isinstance(fault, StudentFault):
                    _raise_unless_student_error(fault)
            if not info.value_ok(data) or reached != inputs:
                broken.add(op)
        _HEALTHY[id(mt)] = tuple(op for op in UNARY + BINARY if op not in broken)
    if not _HEALTHY[id(mt)]:
        pytest.fail(
            "Scalar.backward could not be checked: no Scalar operator gives the right "
            "forward value with its inputs recorded. Fix the forward tests (task 1.2) first.",
            pytrace=False,
        )
    return _HEALTHY[id(mt)]


def chain_rule_works(mt: Any) -> bool:
    """Whether chain_rule (task 1.3) is right on the 1.3 tests' trusted linear functions (one,
    two, three inputs, one input twice), once per session. It only chooses how graphs are
    judged (``check_backward``), never whether."""
    if id(mt) not in _CHAIN_RULE_OK:
        ok, d = True, -2.5
        cases = [([0.75], [3.0]), ([0.5, -1.5], [2.0, -5.0]), ([0.5, -1.5, 2.25], [2.0, -5.0, 0.5])]
        for values, coeffs in [*cases, ([0.5], [2.0, -5.0])]:  # the last: x used twice
            twice = len(values) < len(coeffs)
            try:
                pairs, _ = chain_rule_pairs(mt, values, coeffs, d, twice=twice)
            except (pytest.fail.Exception, StudentFault):
                ok = False
                break
            if chain_rule_problem(pairs, coeffs, d, twice=twice) is not None:
                ok = False
                break
        _CHAIN_RULE_OK[id(mt)] = ok
    return _CHAIN_RULE_OK[id(mt)]


_TALLIES: list[Tally] = []  # of the ``most_judged`` tests running now


def most_judged(test: Callable[..., None]) -> Callable[..., None]:
    """Fail a graph test unless it judged more than half of its examples (``require_judged``):
    the checks below count each example they try."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        __tracebackhide__ = True
        _TALLIES.append(Tally())
        try:
            test(*args, **kwargs)
        finally:
            tally = _TALLIES.pop()
        require_judged(tally)

    return run


def _count(judged: bool, *exprs: Expression) -> bool:
    if _TALLIES:
        _TALLIES[-1].add(judged, *exprs)
    return judged


def check_backward(mt: Any, expr: Expression, d: float) -> bool:
    """y.backward(d) gives each leaf d times its exact derivative (when chain_rule is wrong,
    ``check_order`` instead). False when not judged (a forward mistake, task 1.2's)."""
    __tracebackhide__ = True
    if not chain_rule_works(mt):
        return check_in_parts(mt, expr, d)
    g = Graph(mt, expr)
    data = g.data()
    g.y.backward(d)
    derivs = [x.derivative for x in g.leaves]
    got = outcomes(*[h for _, h in data], *derivs)
    if not g.forward_ok(data, got[: len(data)]):
        return _count(False, expr)
    with pointing(lambda: _scalar_order_pointer(mt, expr)):
        judge_graph(expr, d, got[len(data) :], lambda: g.lines(*derivs))
    return _count(True, expr)


def judge_graph(
    expr: Expression,
    d: float,
    got: Sequence[Any],
    lines: Callable[[], list[str]],
    what: str = "",
    leaf: str = "x",
) -> None:
    """The leaves' derivatives after backward(d) on ``expr``: d times the exact ones, within
    GRAPH_RTOL of the sum of |path contributions| (and the log EPS upstream)."""
    __tracebackhide__ = True
    what = f"Scalar.backward{what}"
    for value in got:
        _raised(value, what, lines)
    out = expr.infos()[-1]
    judge_derivatives(
        got,
        [d * j for j in out.jac],
        [
            abs(d) * (GRAPH_RTOL * s + 2.0 * k) + 1e-12
            for s, k in zip(out.absjac, out.gslack, strict=True)
        ],
        [d * j == 0.0 or i not in out.reaches for i, j in enumerate(out.jac)],
        what=what,
        names=[f"{leaf}{i}" for i in range(len(got))],
        lines=lines,
        d=d,
    )


def check_in_parts(mt: Any, expr: Expression, d: float) -> bool:
    """When chain_rule is wrong (task 1.3's), a backward pass in parts: topological_sort(y)
    on the graph's Scalars, and the leaves' derivatives that this graph's own backward
    functions give (each ``last_fn._backward(ctx, d)``, chained here): a wrong backward
    function still fails, whatever chain_rule does."""
    __tracebackhide__ = True
    if not check_order(mt, expr):
        return False
    g = Graph(mt, expr)
    data = g.data()
    parts = code(mt, _PARTS, name="parts")(d, g.y, *g.leaves)
    got = outcomes(*[h for _, h in data], parts)
    if not g.forward_ok(data, got[:-1]):
        return False  # check_order counted this example already
    lines = lambda: g.lines(parts)  # noqa: E731
    _raised(got[-1], "Scalar.backward's functions (last_fn._backward)", lines)
    derivs = derivatives_from_parts(got[-1], d)
    if derivs is None:
        report(
            "Scalar.backward could not be checked in parts: the history of the output does "
            "not give one local derivative per input",
            called=_called(lines()),
            returned=fmt(got[-1]),
            expected="last_fn._backward(ctx, d) gives one number per input of each Scalar",
            snippet=lines(),
        )
    judge_graph(expr, d, derivs or [], lines, " (in parts: chain_rule is judged in 1.3)")
    return True


def check_order(mt: Any, expr: Expression) -> bool:
    """topological_sort(y) on the graph's own Scalars (their own ==, no hash): each Scalar y
    depends on once, y first, each before its inputs. False when not judged."""
    __tracebackhide__ = True
    g = Graph(mt, expr)
    data = g.data()
    order = code(mt, _WHERE)(mt.topological_sort(g.y), *g.nodes)
    got = outcomes(*[h for _, h in data], order)
    if not g.forward_ok(data, got[:-1]):
        return _count(False, expr)
    nodes, order = expr.nodes, got[-1]

    def lines() -> list[str]:
        named = [g.names[g.nodes[j]] for j in sorted(ancestors(nodes)) if nodes[j][0] != "num"]
        table = ", ".join(f"id({n}): {n!r}" for n in dict.fromkeys(named))
        order = "minitorch.topological_sort(y)"
        return [*g.lines(), f"names = {{{table}}}", f'[names.get(id(v), "other") for v in {order}]']

    unhashable = isinstance(order, StudentError) and "unhashable" in order.message
    _raised(order, "topological_sort", lines, UNHASHABLE_HINT if unhashable else "")
    problem = order_problem(nodes, order)
    if problem:
        called = f"topological_sort(y) where {_called(lines(), 2)}"
        report_order_problem(nodes, order, problem, called=called, snippet=lines())
    return _count(True, expr)


def _scalar_order_pointer(mt: Any, expr: Expression) -> str:
    g = Graph(mt, expr)
    return order_pointer(
        expr.nodes, outcomes(code(mt, _WHERE)(mt.topological_sort(g.y), *g.nodes))[0]
    )


MEMBERSHIP_HINT = (
    "`in` on a list compares Scalars with ==, which builds an EQ Scalar (true whenever two "
    "values are equal): keep unique_ids in a set instead"
)


def check_continued(mt: Any, expr: Expression, k: int, d_first: float, d: float) -> bool:
    """backward(d_first) on a first graph (nodes up to k), the leaves' derivatives set back
    to None (as optim.SGD.zero_grad), then backward(d) on a second graph built on the first
    one's Scalars gives its derivatives as on a fresh graph: nothing of the first pass may
    stay on shared Scalars. Accumulation across backward calls is not tested."""
    __tracebackhide__ = True
    if not chain_rule_works(mt):
        return check_in_parts(mt, expr, d)
    g = Graph(mt, expr, upto=k + 1)
    data = g.data()
    g.nodes[k].backward(d_first)
    first = [x.derivative for x in g.leaves]
    zero = code(mt, _ZERO)
    g.names[zero] = "zero_grad"
    zero(*g.leaves)
    g.extend(len(expr.nodes))
    data += g.data(k + 1)
    g.y.backward(d)
    second = [x.derivative for x in g.leaves]
    got = outcomes(*[h for _, h in data], *first, *second)
    n, m = len(data), len(data) + len(first)
    if not g.forward_ok(data, got[:n]):
        return _count(False, expr)
    with pointing(lambda: _scalar_order_pointer(mt, expr)):
        head = Expression(expr.nodes[: k + 1], expr.values)
        judge_graph(head, d_first, got[n:m], lambda: g.lines(*first))
        what = " on a second graph built on the first (after zeroing the leaves)"
        judge_graph(expr, d, got[m:], lambda: g.lines(*second), what)
    return _count(True, expr)


def check_two_graphs(mt: Any, first: Expression, second: Expression, d: float) -> bool:
    """backward(d) on one graph, then backward() on another: each gets its own derivatives."""
    __tracebackhide__ = True
    if not chain_rule_works(mt):
        return check_in_parts(mt, first, d) and check_in_parts(mt, second, 1.0)
    g1, g2 = Graph(mt, first), Graph(mt, second, style="wsz")
    data1, data2 = g1.data(), g2.data()
    g1.y.backward(d)
    g2.y.backward()
    derivs = [x.derivative for x in g1.leaves + g2.leaves]
    got = outcomes(*[h for _, h in data1 + data2], *derivs)
    n, m, k = len(data1), len(data1) + len(data2), len(data1) + len(data2) + len(g1.leaves)
    if not (g1.forward_ok(data1, got[:n]) and g2.forward_ok(data2, got[n:m])):
        return _count(False, first, second)
    g1.names.update(g2.names)
    judge_graph(first, d, got[m:k], lambda: g1.lines(*derivs))
    judge_graph(second, 1.0, got[k:], lambda: g1.lines(*derivs), " on a second graph", "w")
    return _count(True, first, second)


def check_function_backward(mt: Any, name: str, cases: Sequence[tuple[list[float], float]]) -> None:
    """``name``.backward after its forward on one Context, for each (args, d): d times the
    local derivatives, one per input. Where the forward is wrong (task 1.2's), on a Context
    holding the usual saved values instead: the inputs, the output, or both."""
    __tracebackhide__ = True
    fn, function = FUNCTIONS[name], getattr(mt, name)
    made = []
    for args, d in cases:
        ctx = mt.Context()
        made.append((ctx, function.forward(ctx, *args), function.backward(ctx, d)))
    got = outcomes(*[h for _, forward, grads in made for h in (forward, grads)])
    for (args, d), (ctx, _, grads), forward, backward in zip(
        cases, made, got[::2], got[1::2], strict=True
    ):
        if isinstance(forward, StudentFault):
            _raise_unless_student_error(forward)
        if not (
            is_number(forward) and within(forward, fn.forward(*args), *fn.forward_tolerance(args))
        ):
            _with_saved(mt, name, args, d, forward)
            continue
        names = {ctx: "ctx", function: name}
        lines = functools.cache(lambda grads=grads, names=names: reproducer(grads, names=names))
        _raised(backward, f"{name}.backward", lines)
        if not _close(backward, fn.grads(*args, d), *fn.backward_tolerance(args, d)):
            check_numbers(
                backward if isinstance(backward, list) else [backward],
                fn.grads(*args, d),
                what=f"{name}.backward",
                called=_called(lines(), 0),
                rtol=fn.backward_tolerance(args, d)[0],
                atol=fn.backward_tolerance(args, d)[1],
                snippet=lines(),
                hint="backward returns d_output times the local derivative, one per input",
            )


def _close(got: Any, expected: Sequence[float], rtol: float, atol: float) -> bool:
    got = got if isinstance(got, list) else [got]
    return len(got) == len(expected) and all(
        is_number(g) and within(g, e, rtol, atol) for g, e in zip(got, expected, strict=True)
    )


def _with_saved(mt: Any, name: str, args: list[float], d: float, forward: Any) -> None:
    __tracebackhide__ = True
    fn, function = FUNCTIONS[name], getattr(mt, name)
    expected, tolerance, tries = fn.grads(*args, d), fn.backward_tolerance(args, d), []
    for saved in (args, [fn.forward(*args)], [*args, fn.forward(*args)]):
        ctx = mt.Context()
        ctx.save_for_backward(*saved)
        tries.append((f"ctx.saved_values = {fmt(tuple(saved))}", function.backward(ctx, d)))
    tried = []
    for (text, _), grads in zip(tries, outcomes(*[h for _, h in tries]), strict=True):
        if isinstance(grads, StudentFault):
            _raise_unless_student_error(grads)
            if getattr(grads, "stands", False):  # a make test run tells it once
                raise grads
        elif _close(grads, expected, *tolerance):
            return
        tried.append(
            f"{text}: "
            + (
                f"raised {grads.type_name}"
                if isinstance(grads, StudentError)
                else f"returned {fmt(grads)}"
            )
        )
    shown = f"raised {forward.type_name}" if isinstance(forward, StudentError) else fmt(forward)
    report(
        f"{name}.backward is wrong (and {name}.forward too, see the task 1.2 tests).",
        called=f"{name}.backward(ctx, {fmt(d)}) for the input(s) {fmt(args)}",
        returned="; ".join(tried),
        expected=f"{fmt(list(expected))} ({tolerance_text(*tolerance)})",
        hint=f"{name}.forward gave {shown} here, so its ctx could not be used either",
    )


#: Said when topological_sort raises TypeError: unhashable type: 'Scalar'.
UNHASHABLE_HINT = (
    "a Scalar cannot go in a set or be a dict key: Scalar defines __eq__ (it builds an EQ "
    "Scalar), so Python gives it no __hash__. Keep the unique_ids in the set instead"
)


# ------------------------------------------------ test_scalar(_hidden).py, tasks 1.2, 1.3: handles
# Trusted text for the worker (handles.code): which of ``leaves`` y reaches through
# history.inputs, for what no handle reads.
REACHES = """
def reaches(y, *leaves):
    seen, stack, found = set(), [y], set()
    while stack and len(seen) < 5000:
        v = stack.pop()
        if id(v) not in seen:
            seen.add(id(v))
            found.update(i for i, x in enumerate(leaves) if x is v)
            stack.extend(getattr(getattr(v, "history", None), "inputs", None) or ())
    return sorted(found)
"""


def forwards(mt: Handle, graphs: Sequence[Graph], *, what: str) -> list[tuple]:
    """(y.data, y.history, y.data's value, the leaves y reaches) for the output y of each
    graph, in one round trip (``answers``)."""
    __tracebackhide__ = True
    ys = [g.nodes[-1] for g in graphs]
    datas, histories = [y.data for y in ys], [y.history for y in ys]
    reaches = code(mt, REACHES, name="reaches")  # after datas: no part of their reproducers
    walks = [reaches(y, *g.leaves) for y, g in zip(ys, graphs, strict=True)]
    names = {h: name for g in graphs for h, name in g.names.items()}
    got = answers(*datas, *walks, what=what, names=names)
    return list(zip(datas, histories, got[: len(ys)], got[len(ys) :], strict=True))


def check_recorded(history: Handle, reached: Any, inputs: list[int], *, what: str, names) -> None:
    """y (whose ``history`` handle is given) must reach exactly the leaves ``inputs``."""
    __tracebackhide__ = True
    if reached != inputs:
        lines = shell(history, names=names)
        called = "; ".join(line for line in lines if not line.startswith("import "))
        shown = fmt(reached) if not isinstance(reached, list) else brief([f"x{i}" for i in reached])
        report(
            f"{what} does not record its inputs: the result is not connected to them.",
            called=called,
            returned=f"a Scalar whose history reaches {shown}",
            expected=f"a Scalar whose history reaches {brief([f'x{i}' for i in inputs])}",
            snippet=lines,
            hint="build the result with a ScalarFunction's apply (e.g. Add.apply(self, b)), "
            "which records the inputs for backpropagation",
        )


def linear_function(mt: Handle, coeffs: Sequence[float], as_tuple: bool) -> Handle:
    """A ScalarFunction with forward sum(c * x) and backward c * d per input, made in the
    worker from this text: chain_rule (1.3) is judged without the student's backward (1.4).
    The coefficients go through ctx, so a chain_rule that does not pass history.ctx gets them
    wrong. A one-input backward returns a bare float (the template's Log) unless ``as_tuple``."""
    xs = ", ".join(f"x{i}" for i in range(len(coeffs)))
    total = " + ".join(f"{c!r} * x{i}" for i, c in enumerate(coeffs))
    saved = ", ".join(repr(c) for c in coeffs)
    one = len(coeffs) == 1 and not as_tuple
    backward = "sum(ctx.saved_values) * d" if one else "tuple(c * d for c in ctx.saved_values)"
    return code(
        mt,
        "type('F', (minitorch.ScalarFunction,), {"
        f"'forward': staticmethod(lambda ctx, {xs}: ctx.save_for_backward({saved}) or {total}), "
        f"'backward': staticmethod(lambda ctx, d: {backward})}})",
    )


# Trusted text: chain_rule's pairs as plain data, [index of the input or -1, derivative].
_INDEXED = (
    "lambda ps, *xs: [[next((i for i, x in enumerate(xs) if x is p[0]), -1), p[1]] "
    "if type(p) in (tuple, list) and len(p) == 2 else None for p in ps]"
)


def chain_rule_pairs(
    mt: Handle, values: Sequence[float], coeffs: Sequence[float], d: float,
    constants: Sequence[int] = (), twice: bool = False,
) -> tuple[Any, list[str]]:  # fmt: skip
    """(pairs as [input index or -1, derivative], reproducer lines) of ``y.chain_rule(d)``,
    y = F(*inputs), F = ``linear_function``, its history made from the template's parts, not
    through ``apply``, which a student may have edited (task 1.2 judges it). Inputs: leaves,
    constants (``Scalar(v, None)``) at ``constants``; with ``twice``, one leaf twice. A
    one-input F follows the student's own Log.backward (a float, or a 1-tuple for students
    who call backward directly): both are built, the trusted side picks one. One round trip."""
    __tracebackhide__ = True
    log_ctx = mt.Context()
    log_ctx.save_for_backward(2.0)
    asked, built = [mt.Log.backward(log_ctx, 1.0)], []
    for as_tuple in [False, True] if len(coeffs) == 1 else [True]:
        xs = [mt.Scalar(v, None) if i in constants else mt.Scalar(v) for i, v in enumerate(values)]
        fn, ctx = linear_function(mt, coeffs, as_tuple), mt.Context()
        forward = fn.forward(ctx, *(values * 2 if twice else values))
        y = mt.Scalar(forward, mt.ScalarHistory(fn, ctx, tuple(xs * 2 if twice else xs)))
        shown = builtin(mt, "list")(y.chain_rule(d))
        names = {fn: "F", ctx: "ctx", y: "y", **{x: f"x{i}" for i, x in enumerate(xs)}}
        built.append((shown, names))
        asked.append(code(mt, _INDEXED)(shown, *xs))
    got = outcomes(*asked)
    pick = -1 if isinstance(got[0], list) else 0
    (shown, names), pairs = built[pick], got[1:][pick]
    if isinstance(pairs, StudentFault):
        faulted(pairs, shown, "Scalar.chain_rule", names=names)
    return pairs, reproducer(shown, names=names)


def chain_rule_checked(
    mt: Handle, values: Sequence[float], coeffs: Sequence[float], d: float,
    constants: Sequence[int] = (), twice: bool = False,
) -> None:  # fmt: skip
    """``chain_rule_pairs`` judged here: each leaf input once with c * d (a constant may be
    left out, or kept with any value); with ``twice``, one pair per argument."""
    __tracebackhide__ = True
    pairs, lines = chain_rule_pairs(mt, values, coeffs, d, constants, twice)
    problem = chain_rule_problem(pairs, coeffs, d, constants, twice)
    if problem is None:
        return
    uses = [0, 0] if twice else list(range(len(values)))
    right = [[i, c * d] for i, c in zip(uses, coeffs, strict=True) if i not in constants]
    when = ""
    hint = (
        "call history.last_fn._backward(history.ctx, d_output) and pair each "
        "result with history.inputs, in order"
    )
    if twice:
        when = " when an input is used twice"
        hint = "one pair per argument of the function, in order: do not merge or drop them"
    if constants:
        when = " when an input is a constant"
        hint = (
            "pair each input with the derivative at its own position before leaving "
            "constants out (zip the inputs with the derivatives, then filter the pairs)"
        )
    free = "; the constant input may be left out or given any value" if constants else ""
    report(
        f"Scalar.chain_rule is wrong{when}: {problem}.",
        called=f"y.chain_rule({fmt(d)}) where y = F({', '.join(f'x{i}' for i in uses)}) "
        f"and F's backward returns {fmt(list(coeffs))} times d_output"
        + "".join(f" (x{i} a constant: Scalar(v, None))" for i in constants),
        returned=f"pairs (input index, derivative): {fmt(pairs)}",
        expected=f"{fmt(right)} (in any order{free})",
        snippet=lines,
        hint=hint,
    )


# --------------------------------------------------------------------------- chain_rule
LINEAR_COEFFS = {"Lin1": [3.0], "Lin2": [2.0, -5.0], "Lin3": [2.0, -5.0, 0.5]}


def chain_rule_problem(
    pairs: Any,
    coeffs: Sequence[float],
    d: float,
    constants: Sequence[int] = (),
    twice: bool = False,
) -> str | None:
    """What is wrong with chain_rule's pairs ([input index or -1, derivative]) for a trusted
    linear function of ``coeffs``, or None.

    Each argument that is a leaf Scalar comes back once with its coefficient times d, in any
    order. With ``twice`` one Scalar is both arguments and comes back twice, once with each
    coefficient: merging the two pairs (or keeping one) loses a term of the derivative. An
    input in ``constants`` (a constant Scalar) may be left out, or kept once with any value
    (minitorch-api.md, 1.3); nothing else may appear.
    """
    if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        return "chain_rule did not return a list of (input, derivative) pairs"
    owed = [[0 if twice else i, c * d] for i, c in enumerate(coeffs) if i not in constants]
    kept: set[int] = set()
    for index, value in pairs:
        if not is_number(index) or index < 0:
            return "chain_rule paired a derivative with an object that is not an input"
        if index in constants and index not in kept:
            kept.add(index)
            continue
        due = [k for k, (i, _) in enumerate(owed) if i == index]
        if not due:
            return f"chain_rule returned input {index} more than once"
        right = [k for k in due if is_number(value) and within(value, owed[k][1], RTOL, ATOL)]
        if not right:
            should = fmt(owed[due[0]][1])
            return f"chain_rule gave input {index} the derivative {fmt(value)}, not {should}"
        del owed[right[0]]
    if owed:
        return f"chain_rule left out {'a pair of ' if twice else ''}input {owed[0][0]}"
    return None
