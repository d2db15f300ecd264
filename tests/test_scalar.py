"""Tasks 1.2 (forward), 1.3 (chain_rule) and 1.4 (backward) of Scalars and ScalarFunctions.

Each task is judged on its own as far as the code allows:
- 1.2 checks forward values and that every Scalar operator records its inputs (no backward).
- 1.3 checks chain_rule with functions whose derivatives are known constants, made in the
  worker from trusted text, so a wrong backward of task 1.4 cannot cost task-1.3 points (and
  once with a constant input before a leaf: constants may be left out, but not by shifting
  the other pairs).
- 1.4 checks each backward in isolation (forward then backward on one Context; on a Context
  holding the usual saved values when the forward is wrong), topological_sort on graphs of
  real Scalars (unhashable, with their own ==, unlike the stand-ins of test_autodiff.py),
  then whole backward passes through Scalars, built with handles (``mt``) and judged against
  exact derivatives. Those graphs use only the operators whose forward works (else: 1.2's);
  when the student's chain_rule is wrong (1.3's), a graph judges topological_sort only (each
  backward function and backpropagate have tests of their own).

Scalars are used as the template allows: forward and apply get floats, a Python float only
beside a Scalar, on the left only of + * / (the template has no __rsub__), and no constant
Scalars (template code never makes one) except in the one chain_rule check above. Add and
Log (forward and backward) come with the template, so they are not tested on their own;
graphs still use them.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import (
    ATOL,
    FUNCTIONS,
    LINEAR_COEFFS,
    NUMBER_LEFT,
    RTOL,
    STUDENT_FUNCTIONS,
    Expression,
    Graph,
    chain_rule_checked,
    check_backward,
    check_function_backward,
    check_order,
    check_recorded,
    close_pairs,
    d_outputs,
    expressions,
    floats,
    forwards,
    graph_ops,
    magnitudes,
    most_judged,
)

from grader.isolation.checks import answers, at_most, check_close

# --------------------------------------------------------------------------- task 1.2

_FORWARD_INPUTS = {
    "LT": close_pairs(-50.0, 50.0),
    "EQ": close_pairs(-50.0, 50.0),
    "ReLU": st.tuples(floats(-50.0, 50.0)),
    # far into both tails: a sigmoid written as 1 / (1 + exp(-x)) overflows below -709
    "Sigmoid": st.tuples(st.one_of(floats(-50.0, 50.0), floats(-1e3, 1e3))),
}


# The one-function tests check BATCH inputs per example in one call to the worker: the same
# number of points as one input per example at the full budget, for a fifth of the round
# trips and of hypothesis' bookkeeping (the most of a grade's time on a correct submission).
BATCH = 5
BATCHED = at_most(10)


def batch_of(strategy):
    return st.lists(strategy, min_size=BATCH, max_size=BATCH)


@pytest.mark.task("1.2")
@pytest.mark.parametrize("name", STUDENT_FUNCTIONS)
@BATCHED
@given(data=st.data())
def test_function_forward(mt, name, data):
    """ScalarFunction.forward matches the closed form"""
    fn, what = FUNCTIONS[name], f"{name}.forward"
    cases = data.draw(batch_of(_FORWARD_INPUTS.get(name, fn.inputs)), "args")
    ctxs = [mt.Context() for _ in cases]
    outs = [getattr(mt, name).forward(ctx, *args) for ctx, args in zip(ctxs, cases, strict=True)]
    names = dict.fromkeys(ctxs, "ctx")
    for args, out, got in zip(cases, outs, answers(*outs, what=what, names=names), strict=True):
        rtol, atol = fn.forward_tolerance(args)
        check_close(out, got, fn.forward(*args), rtol, atol, what=what, names=names)


# Scalar operators: (expected value, input domain) per operator.
_BINARY_OPS = {
    "add": (lambda a, b: a + b, st.tuples(floats(-50, 50), floats(-50, 50))),
    "sub": (lambda a, b: a - b, st.tuples(floats(-50, 50), floats(-50, 50))),
    "mul": (lambda a, b: a * b, st.tuples(floats(-50, 50), floats(-50, 50))),
    "div": (lambda a, b: a / b, st.tuples(floats(-50, 50), magnitudes(0.1, 50))),
    "lt": (lambda a, b: 1.0 if a < b else 0.0, close_pairs(-50.0, 50.0)),
    "gt": (lambda a, b: 1.0 if a > b else 0.0, close_pairs(-50.0, 50.0)),
    "eq": (lambda a, b: 1.0 if a == b else 0.0, close_pairs(-50.0, 50.0)),
}
_UNARY_OPS = {
    "neg": (lambda a: -a, floats(-50, 50)),
    "log": (FUNCTIONS["Log"].forward, floats(0.05, 100.0)),
    "exp": (FUNCTIONS["Exp"].forward, floats(-50.0, 50.0)),
    "sigmoid": (FUNCTIONS["Sigmoid"].forward, st.one_of(floats(-50.0, 50.0), floats(-1e3, 1e3))),
    "relu": (FUNCTIONS["ReLU"].forward, floats(-50.0, 50.0)),
}
_OWN_TOLERANCE = {
    "log": FUNCTIONS["Log"].forward_tolerance,
    "sigmoid": FUNCTIONS["Sigmoid"].forward_tolerance,
}
_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "lt": "<", "gt": ">", "eq": "=="}


@st.composite
def operator_cases(draw, op):
    """(graph, expected value, the inputs it must reach): one operation on Scalars, or with a
    Python float on one side (on the left only for + * /: the template has no __rsub__)."""
    if op in _UNARY_OPS:
        a = draw(_UNARY_OPS[op][1])
        return Expression([["var", 0], [op, 0]], [a]), _UNARY_OPS[op][0](a), [0]
    a, b = draw(_BINARY_OPS[op][1])
    expected = _BINARY_OPS[op][0](a, b)
    sides = ["scalars", "number right"] + (["number left"] if op in NUMBER_LEFT else [])
    sides = draw(st.sampled_from(sides))
    if sides == "scalars":
        return Expression([["var", 0], ["var", 1], [op, 0, 1]], [a, b]), expected, [0, 1]
    if sides == "number right":
        return Expression([["var", 0], ["num", b], [op, 0, 1]], [a]), expected, [0]
    return Expression([["num", a], ["var", 0], [op, 0, 1]], [b]), expected, [0]


@pytest.mark.task("1.2")
@pytest.mark.parametrize("op", list(_BINARY_OPS) + list(_UNARY_OPS))
@BATCHED
@given(data=st.data())
def test_scalar_operator(mt, op, data):
    """Scalar operator gives the right value and records its inputs in the history"""
    cases = data.draw(batch_of(operator_cases(op)), label="cases")
    what = f"Scalar {_SYMBOLS[op]}" if op in _SYMBOLS else f"Scalar.{op}"
    graphs = [Graph(mt, expr) for expr, _, _ in cases]
    outs = zip(cases, graphs, forwards(mt, graphs, what=what), strict=True)
    for (expr, expected, inputs), g, (data, history, value, reached) in outs:
        rtol, atol = _OWN_TOLERANCE[op](expr.values) if op in _OWN_TOLERANCE else (RTOL, ATOL)
        check_close(data, value, expected, rtol, atol, what=what, names=g.names)
        check_recorded(history, reached, inputs, what=what, names=g.names)


# --------------------------------------------------------------------------- task 1.3


@pytest.mark.task("1.3")
@pytest.mark.parametrize(
    "name", list(LINEAR_COEFFS), ids=["one_input", "two_inputs", "three_inputs"]
)
@at_most(20)  # fixed derivatives: a mistake shows on every example
@given(data=st.data(), d=d_outputs())
def test_chain_rule_pairs(mt, name, data, d):
    """chain_rule pairs every input with its local derivative times d_output"""
    coeffs = LINEAR_COEFFS[name]
    values = [data.draw(floats(-10.0, 10.0), label=f"x{i}") for i in range(len(coeffs))]
    chain_rule_checked(mt, values, coeffs, d)


# A constant input (Scalar(c, None), the template's is_constant) before a leaf: chain_rule may
# leave constants out or keep them (minitorch-api.md, 1.3), but every leaf keeps its own
# derivative. Template code never makes constants: this is the one check that has them.
_CONSTANT_CASES = {"constant_first": ("Lin2", [0]), "constant_between": ("Lin3", [1])}


@pytest.mark.task("1.3")
@pytest.mark.parametrize("case", list(_CONSTANT_CASES))
@at_most(10)  # one mistake shows on every example
@given(data=st.data(), d=d_outputs())
def test_chain_rule_with_a_constant_input(mt, case, data, d):
    """chain_rule gives each non-constant input its own derivative when a constant comes first"""
    name, constants = _CONSTANT_CASES[case]
    coeffs = LINEAR_COEFFS[name]
    values = [data.draw(floats(-10.0, 10.0), label=f"x{i}") for i in range(len(coeffs))]
    chain_rule_checked(mt, values, coeffs, d, constants=constants)


# --------------------------------------------------------------------------- task 1.4
_BACKWARD_CASES = {
    name: batch_of(st.tuples(FUNCTIONS[name].inputs.map(list), d_outputs()))
    for name in STUDENT_FUNCTIONS
}


@pytest.mark.task("1.4")
@pytest.mark.parametrize("name", STUDENT_FUNCTIONS)
@BATCHED
@given(data=st.data())
def test_function_backward(mt, name, data):
    """ScalarFunction.backward matches the closed form times a random d_output"""
    check_function_backward(mt, name, data.draw(_BACKWARD_CASES[name], label="args, d"))


@pytest.mark.task("1.4")
@most_judged  # more than half of the graphs must be judged (not: a forward mistake, 1.2's)
@at_most(20)  # cheap graphs; a sort that fails on Scalars fails on nearly all of them
@given(data=st.data())
def test_topological_sort_on_scalars(mt, data):
    """topological_sort orders graphs of real Scalars, which have their own == and no hash"""
    check_order(mt, data.draw(expressions(ops=graph_ops(mt)), label="graph"))


@pytest.mark.task("1.4")
@most_judged
@given(data=st.data(), d=d_outputs())
def test_expression_backward(mt, data, d):
    """backward on random expression graphs matches the exact derivatives"""
    check_backward(mt, data.draw(expressions(ops=graph_ops(mt)), label="graph"), d)
