"""Trusted-side helpers for module 2's tests: tensors drawn here, read back by layout.

A student's tensor crosses as plain data: its shape, its strides and the numbers of its
storage (``READ``). Its values are then laid out *here*, from those strides, with the
positions computed on this side: a test of task 2.3 or 2.4 does not trust the student's own
``index_to_position`` (task 2.1) to read what it judges. Expected values come from NumPy,
the oracle on the trusted side: broadcasting by ``numpy.broadcast_shapes``, forwards by
NumPy's functions, gradients by closed forms and by central differences of the student's
own forward.

Inputs are made with the template's given constructor (``Tensor.make(storage, shape,
strides)``), never with the student's ``permute``: a permuted, non-contiguous input is a
layout drawn here, so a wrong ``permute`` (task 2.1) costs only the tests of permute.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import strategies as st

from grader.isolation.checks import answers, shell, shell_lines
from grader.isolation.handles import Handle, code, outcomes
from grader.isolation.protocol import StudentError, StudentFault

#: A tensor (or a number, as a backward may return) as plain data: [shape, strides,
#: storage], or a float. Trusted text, run by the worker on the student's object.
READ = (
    "lambda t: t if isinstance(t, (int, float)) else [[int(n) for n in t.shape], "
    "[int(s) for s in t._tensor.strides], [float(v) for v in t._tensor._storage]]"
)
#: A TensorData (not a Tensor) as ``READ`` reads a Tensor.
READ_DATA = (
    "lambda d: [[int(n) for n in d.shape], [int(s) for s in d.strides], "
    "[float(v) for v in d._storage]]"
)
#: Every value a backward returned, as ``READ`` reads each (one value or a tuple of them).
READ_ALL = f"lambda r: [({READ})(x) for x in (r if isinstance(r, (tuple, list)) else (r,))]"
#: Only the first value a backward returned (Permute's: the order's "gradient" is free).
READ_FIRST = f"lambda r: [({READ})(r[0] if isinstance(r, (tuple, list)) else r)]"
#: NumPy int arrays, as the given code passes indices, shapes and strides.
INTS = "lambda *xs: __import__('numpy').array(xs, dtype=__import__('numpy').int32)"

RTOL = 1e-9  # forwards: one float operation per cell, any correct style
ATOL = 1e-12
CD_RTOL = 1e-4  # backward vs central differences of the student's forward
CD_ATOL = 1e-6
SWITCH_MARGIN = 0.05  # inputs stay this far from ReLU's kink and LT/EQ's switch points


# --------------------------------------------------------------------------- strategies


def shapes(max_dims: int = 3, max_side: int = 4) -> st.SearchStrategy[tuple[int, ...]]:
    return st.lists(st.integers(1, max_side), min_size=1, max_size=max_dims).map(tuple)


@st.composite
def broadcast_pair(draw: st.DrawFn, max_dims: int = 3) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two shapes that broadcast: each a copy of a common shape with some sizes set to 1 and
    some leading dimensions dropped."""
    full = draw(shapes(max_dims, 3))

    def part() -> tuple[int, ...]:
        drop = draw(st.integers(0, len(full) - 1))
        return tuple(1 if draw(st.booleans()) else n for n in full[drop:])

    return part(), part()


@st.composite
def clashing_pair(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two shapes that do not broadcast: one dimension, aligned right, has sizes that differ
    and neither is 1 (including (2,) with (4,): a multiple is not enough)."""
    a, b = draw(broadcast_pair())
    k = draw(st.integers(1, min(len(a), len(b))))
    n = draw(st.integers(2, 4))
    m = draw(st.integers(2, 4).filter(lambda v: v != n))
    a, b = list(a), list(b)
    a[-k], b[-k] = n, m
    return tuple(a), tuple(b)


def values_in(shape: Sequence[int], lo: float, hi: float) -> st.SearchStrategy[np.ndarray]:
    size = math.prod(shape)
    cells = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    return st.lists(cells, min_size=size, max_size=size).map(
        lambda xs: np.array(xs, dtype=float).reshape(shape)
    )


def cells(fn: Fn, shape: Sequence[int]) -> st.SearchStrategy[np.ndarray]:
    """Input values for ``fn``: few distinct ones for LT and EQ, so that ties and both sides
    occur; none near ReLU's kink; else its domain."""
    size = math.prod(shape)
    if fn.name in ("LT", "EQ"):
        # 0.001 is close to 0 but not equal: an EQ written with is_close is told apart
        few = st.sampled_from([-2.0, -1.0, 0.0, 0.001, 0.5, 1.0])
        return st.lists(few, min_size=size, max_size=size).map(
            lambda xs: np.array(xs).reshape(shape)
        )
    if fn.name == "ReLU":
        away = st.floats(SWITCH_MARGIN, fn.hi) | st.floats(fn.lo, -SWITCH_MARGIN)
        return st.lists(away, min_size=size, max_size=size).map(
            lambda xs: np.array(xs).reshape(shape)
        )
    return values_in(shape, fn.lo, fn.hi)


@st.composite
def layouts(draw: st.DrawFn, shape: Sequence[int]) -> tuple[int, ...]:
    """A dimension order for storing a tensor of ``shape``: identity (contiguous) or any
    permutation (a non-contiguous tensor, as a permute makes)."""
    order = list(range(len(shape)))
    if draw(st.booleans()):
        order = draw(st.permutations(order))
    return tuple(order)


# --------------------------------------------------------------------------- layouts


def strides_of(shape: Sequence[int]) -> tuple[int, ...]:
    """Contiguous (row-major) strides."""
    out, step = [], 1
    for n in reversed(shape):
        out.append(step)
        step *= n
    return tuple(reversed(out))


def stored(array: np.ndarray, order: Sequence[int]) -> tuple[list[float], tuple[int, ...]]:
    """``array`` stored with its dimensions laid out in ``order`` (outermost first): the
    storage list and the strides that read it back as ``array``."""
    physical = np.ascontiguousarray(np.transpose(array, order))
    inner = strides_of(physical.shape)
    strides = [0] * array.ndim
    for k, dim in enumerate(order):
        strides[dim] = inner[k]
    return [float(v) for v in physical.ravel()], tuple(strides)


def make(mt: Handle, array: np.ndarray, order: Sequence[int] | None = None) -> Handle:
    """The student's Tensor holding ``array``, stored in ``order`` (contiguous when None),
    made by the given constructor ``Tensor.make``."""
    storage, strides = stored(array, order or range(array.ndim))
    return mt.Tensor.make(storage, tuple(array.shape), strides)


def laid_out(reading: Any) -> np.ndarray | str:
    """The array a ``READ`` reading holds, positions computed here; a text saying what is
    wrong when the layout cannot be read (a position outside the storage, a bad shape)."""
    if isinstance(reading, (int, float)) and not isinstance(reading, bool):
        return np.array(float(reading))
    shape, strides, storage = reading
    if len(shape) != len(strides) or any(n < 1 for n in shape):
        return f"shape {tuple(shape)} with strides {tuple(strides)}"
    out = np.empty(shape)
    for index in np.ndindex(*shape):
        position = sum(i * s for i, s in zip(index, strides, strict=True))
        if not 0 <= position < len(storage):
            return (
                f"shape {tuple(shape)} and strides {tuple(strides)} reach position {position} "
                f"at index {index}, outside its storage of {len(storage)}"
            )
        out[index] = storage[position]
    return out


# --------------------------------------------------------------------------- checks


def read(*handles: Handle, what: str) -> list[np.ndarray]:
    """The arrays the student's tensors ``handles`` hold, in one round trip; a raise, a hang
    or an unreadable layout fails the test with the lines that reproduce it."""
    __tracebackhide__ = True
    reader = code(handles[0], READ)
    readings = answers(*(reader(h) for h in handles), what=what)
    arrays = []
    for h, reading in zip(handles, readings, strict=True):
        array = laid_out(reading)
        if isinstance(array, str):
            fail(h, f"{what}: the result cannot be read: {array}")
        arrays.append(array)
    return arrays


def fail(h: Handle, headline: str, *rest: str, before: Sequence[Handle] = ()) -> None:
    """Fail the test: the headline, the call that made ``h``, ``rest`` (returned, expected)
    and the lines that rebuild ``h`` in a Python shell (after ``before``: a forward whose
    Context a backward reads)."""
    __tracebackhide__ = True
    lines = shell(*before, h)
    text = [headline, f"  called:   {lines[-1]}", *rest, *shell_lines(lines)]
    pytest.fail("\n".join(text), pytrace=False)


def _cells(array: np.ndarray) -> str:
    return np.array2string(array, precision=6, separator=", ").replace("\n", "")


def check_array(
    h: Handle,
    got: np.ndarray,
    expected: np.ndarray,
    *,
    what: str,
    rtol: float = RTOL,
    atol: float = ATOL,
    before: Sequence[Handle] = (),
) -> None:
    """``got`` (read from ``h``) has ``expected``'s shape and values within tolerance."""
    __tracebackhide__ = True
    if got.shape != expected.shape:
        fail(
            h,
            f"{what} has shape {got.shape}, expected {expected.shape}",
            f"  returned: {_cells(got)}",
            f"  expected: {_cells(expected)}",
            before=before,
        )
    bad = ~np.isclose(got, expected, rtol=rtol, atol=atol)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        fail(
            h,
            f"{what} is wrong at index {index} ({int(bad.sum())} of {bad.size} cells wrong)",
            f"  returned: {_cells(got)}",
            f"  expected: {_cells(expected)} (each within {rtol:g} * |expected| + {atol:g})",
            before=before,
        )


def expanded(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray | None:
    """A gradient a backward returned, brought to its input's ``shape`` as the given
    ``Tensor.expand`` does: broadcast, then summed over the dimensions the input had
    broadcast. None when it does not broadcast with the input."""
    try:
        full = np.broadcast_shapes(grad.shape, shape)
    except ValueError:
        return None
    g = np.broadcast_to(grad, full)
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for dim, n in enumerate(shape):
        if n == 1 and g.shape[dim] != 1:
            g = g.sum(axis=dim, keepdims=True)
    return g if g.shape == shape else None


@dataclass(frozen=True)
class Fn:
    """One tensor function as the tests use it: the Tensor expression that calls it, its
    NumPy forward, its exact gradient (``d_output`` -> one array per input) and the values
    its inputs are drawn from."""

    name: str
    arity: int
    call: str  # the Tensor expression, over a and b: "a.sigmoid()", "a * b"
    forward: Any
    grads: Any
    lo: float = -5.0
    hi: float = 5.0
    switch: bool = False  # LT/EQ/ReLU: no central differences (inputs near switch points)
    #: absolute tolerance of the forward: the template's module-0 log is log(x + 1e-6),
    #: within 1e-6 / x of log(x) (inputs >= 0.1)
    atol: float = ATOL


#: Each ``Fn.call`` as a function of handles.
CALLS = {
    "-a": lambda a: -a,
    "a.sigmoid()": lambda a: a.sigmoid(),
    "a.relu()": lambda a: a.relu(),
    "a.log()": lambda a: a.log(),
    "a.exp()": lambda a: a.exp(),
    "a + b": lambda a, b: a + b,
    "a * b": lambda a, b: a * b,
    "a < b": lambda a, b: a < b,
    "a == b": lambda a, b: a == b,
}


def _sig(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(x / 2.0))


FUNCTIONS = {
    f.name: f
    for f in (
        Fn("Neg", 1, "-a", np.negative, lambda d, a: (-d,)),
        Fn("Sigmoid", 1, "a.sigmoid()", _sig, lambda d, a: (d * _sig(a) * (1 - _sig(a)),)),
        Fn("ReLU", 1, "a.relu()", lambda a: np.maximum(a, 0.0), lambda d, a: (d * (a > 0),),
           switch=True),
        Fn("Log", 1, "a.log()", np.log, lambda d, a: (d / a,), lo=0.1, hi=10.0, atol=1.1e-5),
        Fn("Exp", 1, "a.exp()", np.exp, lambda d, a: (d * np.exp(a),)),
        Fn("Add", 2, "a + b", np.add, lambda d, a, b: (d, d)),
        Fn("Mul", 2, "a * b", np.multiply, lambda d, a, b: (d * b, d * a)),
        Fn("LT", 2, "a < b", lambda a, b: (a < b) * 1.0, lambda d, a, b: (0 * d, 0 * d),
           switch=True),
        Fn("EQ", 2, "a == b", lambda a, b: (a == b) * 1.0, lambda d, a, b: (0 * d, 0 * d),
           switch=True),
    )
}  # fmt: skip


# --------------------------------------------------------------------------- backward

_H = 1e-6  # central differences: the step, relative to max(1, |x|)


def _saved_styles(fn: Fn, arrays: Sequence[np.ndarray]) -> list[list[Any]]:
    """What a forward usually saves: the inputs, the output, or both (module 1's rule), or
    the inputs' shapes (what LT and EQ need for zero gradients)."""
    out = fn.forward(*arrays)
    return [list(arrays), [out], [*arrays, out], [tuple(x.shape) for x in arrays]]


def check_backward(mt: Handle, fn: Fn, arrays: Sequence[np.ndarray], d: np.ndarray) -> None:
    """``fn``'s backward after its forward on one Context, with upstream gradient ``d``: each
    input's gradient, after the given expansion to the input's shape, matches central
    differences of the student's own forward (``fn.switch``: the exact gradient). Where the
    forward is wrong (task 2.3's), the backward is judged on a Context holding the usual
    saved values instead, against the exact gradient."""
    __tracebackhide__ = True
    function = getattr(mt, fn.name)
    ctx = mt.Context()
    out = function.forward(ctx, *(make(mt, x) for x in arrays))
    points = []  # the inputs with one cell moved up, then down: central differences
    if not fn.switch:
        for k, x in enumerate(arrays):
            for index in np.ndindex(*x.shape):
                for sign in (1.0, -1.0):
                    shifted = [y.copy() for y in arrays]
                    shifted[k][index] += sign * _H * max(1.0, abs(x[index]))
                    points.append(shifted)
    moved = [function.forward(mt.Context(), *(make(mt, y) for y in p)) for p in points]
    reader = code(mt, READ)
    got = outcomes(*(reader(h) for h in (out, *moved)))
    for fault in got:
        _raise_unless_error(fault)
    values = [laid_out(g) if not isinstance(g, StudentFault) else None for g in got]
    exact = [expanded(np.asarray(g) * np.ones(d.shape), x.shape) for g, x in
             zip(fn.grads(d, *arrays), arrays, strict=True)]  # fmt: skip
    # Central differences of a forward judge a backward only where that forward is right at
    # every point they read; elsewhere (task 2.3's mistake) the usual saved values decide.
    if not all(_forward_right(fn, v, p) for v, p in zip(values, [arrays, *points], strict=True)):
        return _with_saved(mt, fn, arrays, d, exact)
    # Called only now: a backward that raises fails what its Context made, the forward too.
    back = function.backward(ctx, make(mt, d))
    expected = exact
    if not fn.switch:
        steps = iter(values[1:])
        expected = []
        for x in arrays:
            estimate = np.empty(x.shape)
            for index in np.ndindex(*x.shape):
                up, down = next(steps), next(steps)
                estimate[index] = np.sum(d * (up - down)) / (2 * _H * max(1.0, abs(x[index])))
            expected.append(estimate)
    grads = _gradients(back, fn, arrays, out)
    for k, (got, want) in enumerate(zip(grads, expected, strict=True)):
        check_array(back, got, want, what=f"{fn.name}.backward, gradient of input {k}",
                    rtol=CD_RTOL, atol=CD_ATOL, before=(out,))  # fmt: skip


def _forward_right(fn: Fn, value: Any, inputs: Sequence[np.ndarray]) -> bool:
    want = fn.forward(*inputs)
    return (
        isinstance(value, np.ndarray)
        and value.shape == want.shape
        and bool(np.allclose(value, want, rtol=RTOL, atol=fn.atol))
    )


def _raise_unless_error(fault: Any) -> None:
    """A forward that raised is judged like a wrong one; a hang or a crash is not."""
    if isinstance(fault, StudentFault) and not isinstance(fault, StudentError):
        raise fault
    if isinstance(fault, StudentError) and fault.type_name == "ImportError":
        raise fault


def _gradients(back: Handle, fn: Fn, arrays: Sequence[np.ndarray], out: Handle) -> list[np.ndarray]:
    """The gradients ``back`` (a backward's return) holds, each expanded to its input's shape
    as the given chain_rule does; fails the test when there are too few or one is unusable."""
    __tracebackhide__ = True
    (readings,) = answers(code(back, READ_ALL)(back), what=f"{fn.name}.backward")
    if len(readings) < fn.arity:
        fail(
            back,
            f"{fn.name}.backward returned {len(readings)} value(s); {fn.name} has "
            f"{fn.arity} input(s), so it must return one gradient for each",
            before=(out,),
        )
    grads = []
    for k, (reading, x) in enumerate(zip(readings, arrays, strict=False)):
        grad = laid_out(reading)
        if isinstance(grad, str):
            fail(
                back,
                f"{fn.name}.backward's gradient for input {k} cannot be read: {grad}",
                before=(out,),
            )
        got = expanded(grad, x.shape)
        if got is None:
            fail(
                back,
                f"{fn.name}.backward's gradient for input {k} has shape {grad.shape}, "
                f"which does not broadcast to the input's shape {x.shape}",
                before=(out,),
            )
        grads.append(got)
    return grads


def _with_saved(
    mt: Handle, fn: Fn, arrays: Sequence[np.ndarray], d: np.ndarray, exact: list[np.ndarray]
) -> None:
    """The forward is wrong: pass when, on a Context holding one of the usual saved values,
    the backward gives the exact gradient; else fail with what each try gave."""
    __tracebackhide__ = True
    function, tries = getattr(mt, fn.name), []
    for saved in _saved_styles(fn, arrays):
        ctx = mt.Context()
        ctx.save_for_backward(*(make(mt, x) if isinstance(x, np.ndarray) else x for x in saved))
        tries.append(function.backward(ctx, make(mt, d)))
    reader = code(mt, READ_ALL)
    tried = []
    for readings in outcomes(*(reader(b) for b in tries)):
        if isinstance(readings, StudentFault):
            _raise_unless_error(readings)
            tried.append(f"raised {getattr(readings, 'type_name', 'an error')}")
            continue
        arrays_got = [laid_out(r) for r in readings[: fn.arity]]
        ok = len(arrays_got) == fn.arity and all(
            isinstance(g, np.ndarray)
            and (e := expanded(g, x.shape)) is not None
            and np.allclose(e, want, rtol=CD_RTOL, atol=CD_ATOL)
            for g, x, want in zip(arrays_got, arrays, exact, strict=True)
        )
        if ok:
            return
        tried.append("gave the wrong gradient")
    fail(
        tries[0],
        f"{fn.name}.backward is wrong (and {fn.name}.forward too, see the task 2.3 tests): on a "
        "Context holding the inputs, the output, both, or their shapes, it " + "; ".join(tried),
        "  expected: " + "; ".join(np.array2string(e, precision=6) for e in exact),
    )


# --------------------------------------------------------------------------- zip, fairly

#: broadcast_index's answer, written in place or returned (both are accepted by task 2.2).
BROADCAST_ANSWER = "lambda r, out: [out.tolist(), None if r is None else [int(v) for v in r]]"


def check_zip(
    mt: Handle,
    out: Handle,
    forward: Any,
    arrays: Sequence[np.ndarray],
    orders: Sequence[Sequence[int]],
    *,
    what: str,
    atol: float = ATOL,
    out_shape: tuple[int, ...] | None = None,
) -> None:
    """``out``, a zip (or a map: one array) of the student's tensors made from ``arrays``
    stored in ``orders``, holds ``forward`` of them, broadcast to ``out_shape`` (by default
    the inputs' broadcast shape). Where it does not, and the student's own broadcast_index
    (task 2.2's) is wrong at these shapes, the result the template's zip loop gives with
    that broadcast_index is accepted too: a 2.2 mistake is not charged again here."""
    __tracebackhide__ = True
    out_shape = out_shape or tuple(np.broadcast_shapes(*(x.shape for x in arrays)))
    (reading,) = outcomes(code(mt, READ)(out))
    expected = forward(*(np.broadcast_to(x, out_shape) for x in arrays))
    got = laid_out(reading) if not isinstance(reading, StudentFault) else reading
    if (
        isinstance(got, np.ndarray)
        and got.shape == expected.shape
        and np.allclose(got, expected, rtol=RTOL, atol=atol)
    ):
        return
    if _zip_with_their_broadcast(mt, forward, arrays, orders, got, atol, out_shape):
        return
    (got,) = read(out, what=what)  # a raise or a hang fails here, with its traceback
    check_array(out, got, expected, what=what, atol=atol)


def _zip_with_their_broadcast(
    mt: Handle,
    forward: Any,
    arrays: Sequence[np.ndarray],
    orders: Sequence[Sequence[int]],
    got: Any,
    atol: float,
    out_shape: tuple[int, ...],
) -> bool:
    """Whether ``got`` is what the template's zip loop gives when broadcast_index is the
    student's, and that broadcast_index is wrong here (its answers are read, one call per
    output cell and input; each input is read at the position its own strides give)."""
    ints, both = code(mt, INTS), code(mt, BROADCAST_ANSWER)
    asked = []
    for x in arrays:
        for index in np.ndindex(*out_shape):
            small = ints(*([0] * x.ndim))
            call = mt.broadcast_index(ints(*index), ints(*out_shape), ints(*x.shape), small)
            asked.append(both(call, small))
    answers_ = iter(outcomes(*asked))
    theirs: list[dict[tuple[int, ...], Any]] = []
    wrong = False
    for x in arrays:
        offset = len(out_shape) - x.ndim
        table = {}
        for index in np.ndindex(*out_shape):
            answer = next(answers_)
            if isinstance(answer, StudentFault):
                table[index] = answer
                wrong = True
                continue
            written, returned = answer
            mine = returned if returned is not None else written
            right = [0 if n == 1 else index[offset + k] for k, n in enumerate(x.shape)]
            wrong |= mine != right
            table[index] = tuple(mine)
        theirs.append(table)
    if not wrong:
        return False
    raised = [v for table in theirs for v in table.values() if isinstance(v, StudentFault)]
    if raised:  # the template's loop raises where their broadcast_index does
        return raised_in(got, raised[0], "broadcast_index")
    result = np.empty(out_shape)
    for index in np.ndindex(*out_shape):
        cells = []
        for x, order, table in zip(arrays, orders, theirs, strict=True):
            storage, strides = stored(x, order)
            small = table[index]
            if len(small) != x.ndim:
                return False
            position = sum(i * s for i, s in zip(small, strides, strict=True))
            if not -len(storage) <= position < len(storage):  # numpy raises IndexError
                return isinstance(got, StudentError) and got.type_name == "IndexError"
            cells.append(storage[position])
        result[index] = forward(*(np.array(c) for c in cells))
    return (
        isinstance(got, np.ndarray)
        and got.shape == out_shape
        and bool(np.allclose(got, result, rtol=RTOL, atol=atol))
    )


def their_permute_explains(
    mt: Handle,
    array: np.ndarray,
    layout: Sequence[int],
    order: Sequence[int],
    got: Any,
    right: np.ndarray,
) -> bool:
    """Whether ``got`` (a ``READ`` reading, or the fault that stopped it) is what the
    student's own ``TensorData.permute`` (task 2.1's) makes of ``array`` stored in
    ``layout``, where that permute is wrong: a Permute that calls it is then right, and the
    2.1 mistake is not charged again. Both raising counts as the same only when their
    permute raised (``StudentError``), on a tensor made afresh for this check."""
    fresh = make(mt, array, layout)
    (theirs,) = outcomes(code(mt, READ_DATA)(fresh._tensor.permute(*order)))
    if isinstance(theirs, StudentFault):
        return raised_in(got, theirs, "permute")
    laid = laid_out(theirs)
    if isinstance(laid, np.ndarray) and laid.shape == right.shape and np.array_equal(laid, right):
        return False  # their permute is right: the mistake is Permute's own
    return not isinstance(got, StudentFault) and got == theirs


def raised_in(got: Any, helper: Any, name: str) -> bool:
    """Whether ``got`` is the raise of the student's own helper ``name`` (task 2.1's or
    2.2's), which raised ``helper`` on its own: the same exception, raised inside ``name``.
    A function not written yet (NotImplementedError) is never excused by another."""
    return (
        isinstance(got, StudentError)
        and isinstance(helper, StudentError)
        and helper.type_name == got.type_name != "NotImplementedError"
        and f", in {name}" in (got.traceback or "")
    )
