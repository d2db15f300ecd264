"""Tasks 1.2 (forward), 1.3 (chain_rule) and 1.4 (backward) of Scalars and ScalarFunctions.

Each task is judged on its own as far as the code allows:
- 1.2 checks forward values and that every Scalar operator records its inputs (no backward).
- 1.3 checks chain_rule with probe-side functions whose derivatives are known constants, so
  a wrong backward of task 1.4 cannot cost task-1.3 points (and once with a constant input
  before a leaf: constants may be left out, but not by shifting the other pairs).
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
    ANY,
    ATOL,
    FUNCTIONS,
    LINEAR_COEFFS,
    NUMBER_LEFT,
    RTOL,
    STUDENT_FUNCTIONS,
    ask,
    ask_batch,
    at_most,
    chain_rule_problem,
    check_backward,
    check_function_backward,
    check_number,
    check_order,
    close_pairs,
    d_outputs,
    expect,
    expression_lines,
    expressions,
    floats,
    fmt,
    function_snippet,
    graph_ops,
    magnitudes,
    most_judged,
    report,
)

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
def test_function_forward(student, name, data):
    """ScalarFunction.forward matches the closed form"""
    fn = FUNCTIONS[name]
    cases = [list(a) for a in data.draw(batch_of(_FORWARD_INPUTS.get(name, fn.inputs)), "args")]
    snippets = [function_snippet(name, args) for args in cases]
    got = ask_batch(
        student,
        "function_forward",
        [name, cases],
        label=f"{name}.forward",
        one_by_one=[
            ("function_forward", [name, [a]], sn[1], sn)
            for a, sn in zip(cases, snippets, strict=True)
        ],
    )
    expect(got, ("list", ANY, len(cases)), probe="function_forward", what=f"{name}.forward")
    for args, value, snippet in zip(cases, got, snippets, strict=True):
        rtol, atol = fn.forward_tolerance(args)
        check_number(
            value,
            fn.forward(*args),
            what=f"{name}.forward",
            called=snippet[1],
            rtol=rtol,
            atol=atol,
            snippet=snippet,
        )


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
_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "lt": "<", "gt": ">", "eq": "=="}


@st.composite
def operator_cases(draw, op):
    """A one-operation graph: Scalars on both sides, or a Python float on one side (on the
    left only for + * /: the template has no __rsub__)."""
    if op in _UNARY_OPS:
        a = draw(_UNARY_OPS[op][1])
        return [["var", 0], [op, 0]], [a], _UNARY_OPS[op][0](a), [0]
    a, b = draw(_BINARY_OPS[op][1])
    expected = _BINARY_OPS[op][0](a, b)
    sides = ["scalars", "number right"] + (["number left"] if op in NUMBER_LEFT else [])
    sides = draw(st.sampled_from(sides))
    if sides == "scalars":
        return [["var", 0], ["var", 1], [op, 0, 1]], [a, b], expected, [0, 1]
    if sides == "number right":
        return [["var", 0], ["num", b], [op, 0, 1]], [a], expected, [0]
    return [["num", a], ["var", 0], [op, 0, 1]], [b], expected, [0]


@pytest.mark.task("1.2")
@pytest.mark.parametrize("op", list(_BINARY_OPS) + list(_UNARY_OPS))
@BATCHED
@given(data=st.data())
def test_scalar_operator(student, op, data):
    """Scalar operator gives the right value and records its inputs in the history"""
    cases = data.draw(batch_of(operator_cases(op)), label="cases")
    lines_of = [expression_lines(graph, values) for graph, values, _, _ in cases]
    outs = ask_batch(
        student,
        "expression_forward_many",
        [[[graph, values] for graph, values, _, _ in cases]],
        label=f"Scalar {op}",
        one_by_one=[
            ("expression_forward", [graph, values], "; ".join(lines[1:]), [*lines, "y.data"])
            for (graph, values, _, _), lines in zip(cases, lines_of, strict=True)
        ],
    )
    name = f"Scalar {_SYMBOLS.get(op, op)}" if op in _SYMBOLS else f"Scalar.{op}"
    expect(outs, ("list", dict, len(cases)), probe="expression_forward_many", what=name)
    for (graph, values, expected, inputs), lines, out in zip(cases, lines_of, outs, strict=True):
        called = "; ".join(lines[1:])
        snippet = [*lines, "y.data"]
        expect(
            out,
            {"data": ("list", ANY, len(graph)), "reaches": ("list", ANY, len(graph))},
            probe="expression_forward_many",
            what=name,
        )
        if op in ("log", "sigmoid"):
            rtol, atol = FUNCTIONS[op.capitalize()].forward_tolerance(values)
        else:
            rtol, atol = RTOL, ATOL
        check_number(
            out["data"][-1],
            expected,
            what=name,
            called=called,
            rtol=rtol,
            atol=atol,
            snippet=snippet,
        )
        reached = out["reaches"][-1]
        if sorted(reached) != inputs:
            report(
                f"{name} does not record its inputs: the result is not connected to them.",
                called=called,
                returned=f"a Scalar whose history reaches [{', '.join(f'x{i}' for i in reached)}]",
                expected=f"a Scalar whose history reaches [{', '.join(f'x{i}' for i in inputs)}]",
                snippet=[*lines, "y.history"],
                hint="build the result with a ScalarFunction's apply (e.g. Add.apply(self, b)), "
                "which records the inputs for backpropagation",
            )


# --------------------------------------------------------------------------- task 1.3


@pytest.mark.task("1.3")
@pytest.mark.parametrize(
    "name", list(LINEAR_COEFFS), ids=["one_input", "two_inputs", "three_inputs"]
)
@given(data=st.data(), d=d_outputs())
def test_chain_rule_pairs(student, name, data, d):
    """chain_rule pairs every input with its local derivative times d_output"""
    coeffs = LINEAR_COEFFS[name]
    values = [data.draw(floats(-10.0, 10.0), label=f"x{i}") for i in range(len(coeffs))]
    formula = " + ".join(f"{c} * x{i}" for i, c in enumerate(coeffs))
    inputs = ", ".join(f"Scalar({fmt(v)})" for v in values)
    called = (
        f"y.chain_rule({fmt(d)}) where y = F.apply({inputs}) and F is a ScalarFunction "
        f"with forward {formula} and backward returning {coeffs} times d_output"
    )
    out = ask(
        student,
        "chain_rule_pairs",
        name,
        values,
        d,
        label="Scalar.chain_rule",
        called=called,
    )
    expect(out, {"pairs": ANY}, probe="chain_rule_pairs", what="Scalar.chain_rule")
    problem = chain_rule_problem(out["pairs"], coeffs, d)
    args = ", ".join(chr(97 + i) for i in range(len(coeffs)))
    fwd = " + ".join(f"{c} * {chr(97 + i)}" for i, c in enumerate(coeffs))
    bwd = ", ".join(f"{c} * d" for c in coeffs)
    snippet = [
        "from minitorch import Scalar, ScalarFunction",
        f"class F(ScalarFunction): forward = staticmethod(lambda ctx, {args}: {fwd}); "
        f"backward = staticmethod(lambda ctx, d: ({bwd},))",
        f"list(F.apply({inputs}).chain_rule({fmt(d)}))",
    ]
    if problem:
        expected = [[i, c * d] for i, c in enumerate(coeffs)]
        report(
            f"Scalar.chain_rule is wrong: {problem}.",
            called=called,
            returned=f"pairs (input index, derivative): {fmt(out['pairs'])}",
            expected=f"{fmt(expected)} (in any order)",
            snippet=snippet,
            hint="call history.last_fn._backward(history.ctx, d_output) and pair each "
            "result with history.inputs, in order",
        )


# A constant input (Scalar(c, None), the template's is_constant) before a leaf: chain_rule may
# leave constants out or keep them (minitorch-api.md, 1.3), but every leaf keeps its own
# derivative. Template code never makes constants: this is the one check that has them.
_CONSTANT_CASES = {"constant_first": ("Lin2", [0]), "constant_between": ("Lin3", [1])}


@pytest.mark.task("1.3")
@pytest.mark.parametrize("case", list(_CONSTANT_CASES))
@at_most(10)  # one mistake shows on every example
@given(data=st.data(), d=d_outputs())
def test_chain_rule_with_a_constant_input(student, case, data, d):
    """chain_rule gives each non-constant input its own derivative when a constant comes first"""
    name, constants = _CONSTANT_CASES[case]
    coeffs = LINEAR_COEFFS[name]
    values = [data.draw(floats(-10.0, 10.0), label=f"x{i}") for i in range(len(coeffs))]
    inputs = ", ".join(
        f"Scalar({fmt(v)}, None)" if i in constants else f"Scalar({fmt(v)})"
        for i, v in enumerate(values)
    )
    called = (
        f"y.chain_rule({fmt(d)}) where y = F.apply({inputs}) (Scalar(c, None) is a constant) "
        f"and F's backward returns {coeffs} times d_output"
    )
    out = ask(
        student,
        "chain_rule_with_constants",
        name,
        values,
        constants,
        d,
        label="Scalar.chain_rule",
        called=called,
    )
    expect(out, {"pairs": ANY}, probe="chain_rule_with_constants", what="Scalar.chain_rule")
    problem = chain_rule_problem(out["pairs"], coeffs, d, constants)
    if problem:
        args = ", ".join(chr(97 + i) for i in range(len(coeffs)))
        fwd = " + ".join(f"{c} * {chr(97 + i)}" for i, c in enumerate(coeffs))
        bwd = ", ".join(f"{c} * d" for c in coeffs)
        expected = [[i, c * d] for i, c in enumerate(coeffs) if i not in constants]
        report(
            f"Scalar.chain_rule is wrong when an input is a constant: {problem}.",
            called=called,
            returned=f"pairs (input index, derivative): {fmt(out['pairs'])}",
            expected=f"{fmt(expected)} (in any order; the constant input "
            f"{', '.join(str(i) for i in constants)} may be left out or given any value)",
            snippet=[
                "from minitorch import Scalar, ScalarFunction",
                f"class F(ScalarFunction): forward = staticmethod(lambda ctx, {args}: {fwd}); "
                f"backward = staticmethod(lambda ctx, d: ({bwd},))",
                f"list(F.apply({inputs}).chain_rule({fmt(d)}))",
            ],
            hint="pair each input with the derivative at its own position before leaving "
            "constants out (zip the inputs with the derivatives, then filter the pairs)",
        )


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
