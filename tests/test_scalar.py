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
  then whole backward passes through Scalars. Those graphs use only the operators whose
  forward works (else: 1.2's); when the student's chain_rule is wrong (1.3's), a pass is
  judged in parts on the trusted side instead: each node's backward function against
  closed forms, topological_sort on the Scalars, backpropagate on stand-in variables of the
  same shape (support.expression_in_parts).

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
    Expression,
    Tally,
    ask_batch,
    at_most,
    chain_rule_checked,
    chain_rule_works,
    check_numbers,
    check_recorded,
    check_returned,
    close_pairs,
    d_outputs,
    expect,
    expression_checked,
    expression_lines,
    expression_text,
    expressions,
    fetched,
    floats,
    fmt,
    forwards,
    function_snippet,
    graph_ops,
    is_number,
    magnitudes,
    raised,
    report,
    require_judged,
    scalar_graph,
    scalar_order_checked,
    tolerance_text,
    within,
)

from grader.isolation.protocol import StudentError

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
    for args, out, got in zip(cases, outs, fetched(*outs, what=what, names=names), strict=True):
        rtol, atol = fn.forward_tolerance(args)
        check_returned(got, fn.forward(*args), out, what=what, rtol=rtol, atol=atol, names=names)


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
    graphs = [scalar_graph(mt, expr) for expr, _, _ in cases]
    outs = zip(cases, graphs, forwards(mt, graphs, what=what), strict=True)
    for (expr, expected, inputs), g, (data, history, value, reached) in outs:
        rtol, atol = _OWN_TOLERANCE[op](expr.values) if op in _OWN_TOLERANCE else (RTOL, ATOL)
        check_returned(value, expected, data, what=what, rtol=rtol, atol=atol, names=g.names)
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


@pytest.mark.task("1.4")
@pytest.mark.parametrize("name", STUDENT_FUNCTIONS)
@BATCHED
@given(data=st.data())
def test_function_backward(student, name, data):
    """ScalarFunction.backward matches the closed form times a random d_output"""
    fn = FUNCTIONS[name]
    cases = data.draw(batch_of(st.tuples(fn.inputs.map(list), d_outputs())), label="args, d")
    snippets = [function_snippet(name, args, d) for args, d in cases]
    calls = [
        f"{sn[1].split('; ')[1]}, then {name}.backward(ctx, {fmt(d)})"
        for (_, d), sn in zip(cases, snippets, strict=True)
    ]
    outs = ask_batch(
        student,
        "function_backward_many",
        [name, [[args, d] for args, d in cases]],
        label=f"{name}.backward",
        one_by_one=[
            ("function_backward", [name, args, d, []], called, sn)
            for (args, d), called, sn in zip(cases, calls, snippets, strict=True)
        ],
    )
    expect(outs, ("list", dict, len(cases)), probe="function_backward_many", what=name)
    for (args, d), called, snippet, out in zip(cases, calls, snippets, outs, strict=True):
        check_function_backward(student, name, args, d, out, called=called, snippet=snippet)


def check_function_backward(student, name, args, d, out, *, called, snippet):
    """One case of test_function_backward: the reply of ``function_backward``."""
    __tracebackhide__ = True
    fn = FUNCTIONS[name]
    probe = "function_backward"
    if "forward_error" in out:
        expect(out, {"forward_error": str}, probe=probe, what=f"{name}.backward")
    else:
        expect(
            out,
            {"forward": ANY, "grads": list, "points": ("list", ANY, 0)},
            probe=probe,
            what=f"{name}.backward",
        )
    expected = fn.grads(*args, d)
    rtol, atol = fn.backward_tolerance(args, d)
    rf, af = fn.forward_tolerance(args)
    if "forward_error" in out or not (
        is_number(out["forward"]) and within(out["forward"], fn.forward(*args), rf, af)
    ):
        # The forward is wrong (task 1.2), so its ctx is too: test backward on a Context
        # holding the usual saved values instead.
        check_backward_with_saved_values(student, name, args, d, out)
        return
    check_numbers(
        out["grads"],
        expected,
        what=f"{name}.backward",
        called=called,
        rtol=rtol,
        atol=atol,
        snippet=snippet,
        hint="backward returns d_output times the local derivative, one per input",
    )


def check_backward_with_saved_values(student, name, args, d, out):
    """Backward must give the closed form from a Context holding the inputs, the output,
    or both (the usual things a forward saves)."""
    __tracebackhide__ = True
    fn = FUNCTIONS[name]
    expected = fn.grads(*args, d)
    rtol, atol = fn.backward_tolerance(args, d)
    tried = []
    for saved in (args, [fn.forward(*args)], [*args, fn.forward(*args)]):
        try:
            grads = student.call(
                "function_backward_saved", name, saved, d, label=f"{name}.backward"
            )
        except StudentError as exc:
            if getattr(exc, "stands", False):
                # A `make test` run knows this fault fails every Context alike (backward is
                # not written yet, say): it tells it once, as what the test waits on.
                raised(
                    exc,
                    label=f"{name}.backward",
                    called=f"{name}.backward(ctx, {fmt(d)}) with ctx.saved_values = "
                    f"{fmt(tuple(saved))}",
                )
            tried.append(f"ctx.saved_values = {fmt(tuple(saved))}: raised {exc.type_name}")
            continue
        if (
            isinstance(grads, list)
            and len(grads) == len(expected)
            and all(
                is_number(g) and within(g, e, rtol, atol)
                for g, e in zip(grads, expected, strict=True)
            )
        ):
            return
        tried.append(f"ctx.saved_values = {fmt(tuple(saved))}: returned {fmt(grads)}")
    forward = out.get("forward_error") or fmt(out.get("forward"))
    report(
        f"{name}.backward is wrong (and {name}.forward too, see the task 1.2 tests).",
        called=f"{name}.backward(ctx, {fmt(d)}) for the input(s) {fmt(args)}",
        returned="; ".join(tried),
        expected=f"{fmt(list(expected))} ({tolerance_text(rtol, atol)})",
        hint=f"{name}.forward gave {forward} here, so its ctx could not be used either",
    )


@pytest.mark.task("1.4")
def test_topological_sort_on_scalars(student):
    """topological_sort orders graphs of real Scalars, which have their own == and no hash"""
    ops = graph_ops(student)  # operators whose forward works (else: task 1.2)
    tally = Tally()  # more than half of the graphs must be judged (require_judged)

    @at_most(20)  # cheap graphs; a sort that fails on Scalars fails on nearly all of them
    @given(expr=expressions(ops=ops))
    def check(expr):
        called = expression_text(expr.nodes, expr.values)
        tally.add(scalar_order_checked(student, expr, called=called), expr)

    check()
    require_judged(tally, "topological_sort")


@pytest.mark.task("1.4")
def test_expression_backward(student):
    """backward on random expression graphs matches exact derivatives and central differences"""
    own = chain_rule_works(student)  # if not (task 1.3's mistake), judged in parts
    ops = graph_ops(student)  # operators whose forward works (else: task 1.2)
    tally = Tally()  # more than half of the graphs must be judged (require_judged)

    @given(expr=expressions(ops=ops), d=d_outputs())
    def check(expr, d):
        called = "; ".join(expression_lines(expr.nodes, expr.values)[1:])
        judged = expression_checked(student, expr, d, own, label="Scalar.backward", called=called)
        tally.add(judged, expr)

    check()
    require_judged(tally)
