"""Tasks 2.3 (tensor map, zip, reduce and the forwards) and 2.4 (the backwards).

Inputs are drawn here, contiguous or stored in a permuted order (non-contiguous), with
broadcast shapes for the two-input functions, and made with the given ``Tensor.make``.
Results are read by their own strides (tests/tensors.py), so only the task under test
decides. A backward is judged through its Function alone (forward, then backward on the
same Context, with an upstream gradient that is not all ones), after the given expansion
to each input's shape: against central differences of the student's own forward where it
is right, else against the exact gradient. ``Tensor.backward`` through a whole expression
has one test of its own.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from tensors import (
    CALLS,
    FUNCTIONS,
    READ,
    READ_FIRST,
    broadcast_pair,
    cells,
    check_array,
    check_backward,
    check_zip,
    expanded,
    fail,
    laid_out,
    layouts,
    make,
    read,
    shapes,
    their_permute_explains,
    values_in,
)

from grader.isolation.checks import answers, at_most
from grader.isolation.handles import code, outcomes
from grader.isolation.protocol import StudentFault

#: Functions whose backward the template gives (their forwards still test map and zip).
GIVEN_BACKWARD = ("Neg", "Add")


@st.composite
def inputs(draw, fn):
    """The input arrays of ``fn`` (broadcast shapes for two) and the order each is stored in."""
    shape_list = [draw(shapes(3, 4))] if fn.arity == 1 else list(draw(broadcast_pair()))
    arrays = [draw(cells(fn, shape)) for shape in shape_list]
    return arrays, [draw(layouts(a.shape)) for a in arrays]


# --------------------------------------------------------------------------- task 2.3


@pytest.mark.task("2.3")
@pytest.mark.parametrize("name", list(FUNCTIONS))
@at_most(25)
@given(data=st.data())
def test_forward_matches_numpy(mt, name, data):
    """A Tensor function's forward (map or zip, broadcast, any layout) matches NumPy"""
    fn = FUNCTIONS[name]
    arrays, orders = data.draw(inputs(fn), "inputs")
    out = CALLS[fn.call](*(make(mt, x, o) for x, o in zip(arrays, orders, strict=True)))
    check_zip(mt, out, fn.forward, arrays, orders, what=fn.call, atol=fn.atol)


@pytest.mark.task("2.3")
@at_most(30)
@given(shape=shapes(3, 4), data=st.data())
def test_sum_along_each_dimension(mt, shape, data):
    """sum(dim) keeps the dimension with size 1, for every dimension and layout"""
    array = data.draw(values_in(shape, -5.0, 5.0), "values")
    # Contiguous, and stored in reverse order (non-contiguous wherever two sizes exceed 1).
    backwards = tuple(reversed(range(len(shape))))
    tensors = [make(mt, array), make(mt, array, backwards)]
    outs = [t.sum(dim) for t in tensors for dim in range(len(shape))]
    sums = [array.sum(axis=dim, keepdims=True) for _ in tensors for dim in range(len(shape))]
    for k, (out, got) in enumerate(zip(outs, read(*outs, what="sum"), strict=True)):
        check_array(out, got, sums[k], what=f"sum({k % len(shape)})")


@pytest.mark.task("2.3")
@at_most(30)
@given(shape=shapes(4, 3), data=st.data())
def test_permute_of_a_tensor(mt, shape, data):
    """Tensor.permute gives the same values with dimensions reordered"""
    order = data.draw(st.permutations(range(len(shape))), "order")
    array = data.draw(values_in(shape, -5.0, 5.0), "values")
    layout = data.draw(layouts(shape), "layout")
    out = make(mt, array, layout).permute(*order)
    (reading,) = outcomes(code(mt, READ)(out))
    right = np.transpose(array, order)
    if not _same(_laid(reading), right) and their_permute_explains(
        mt, array, layout, order, reading, right
    ):
        return
    (got,) = read(out, what="permute")
    check_array(out, got, right, what=f"permute{tuple(order)}")


@pytest.mark.task("2.3")
@at_most(20)
@given(pair=broadcast_pair(), data=st.data())
def test_map_broadcasts_into_a_larger_output(mt, pair, data):
    """map into a given larger output broadcasts its input (as the given expand uses it)"""
    small = pair[0]
    big = tuple(np.broadcast_shapes(*pair))
    array = data.draw(values_in(small, -5.0, 5.0), "values")
    order = data.draw(layouts(small), "layout")
    a = make(mt, array, order)
    out = mt.Tensor.make([0.0] * int(np.prod(big)), big)
    a.f.neg_map(a, out)
    check_zip(mt, out, np.negative, [array], [order], what="a.f.neg_map(a, out)", out_shape=big)


@pytest.mark.task("2.3")
@at_most(20)
@given(data=st.data())
def test_is_close(mt, data):
    """is_close gives 1.0 where two tensors hold the same number, 0.0 where they are far apart"""
    # The tolerance is module 0's operators.is_close (students write 1e-2, 1e-5, <=, ...):
    # cells here are equal or at least 0.5 apart, the first larger, so that every such
    # is_close agrees and only IsClose.forward is judged.
    shape = data.draw(shapes(3, 3), "shape")
    b = data.draw(values_in(shape, -5.0, 5.0), "b")
    far = data.draw(values_in(shape, 0.0, 1.0), "far") > 0.5
    a = b + far * data.draw(values_in(shape, 0.5, 5.0), "gaps")
    out = make(mt, a).is_close(make(mt, b))
    (got,) = read(out, what="is_close")
    check_array(out, got, (~far) * 1.0, what="a.is_close(b)")


# --------------------------------------------------------------------------- task 2.4


@pytest.mark.task("2.4")
@pytest.mark.parametrize("name", [n for n in FUNCTIONS if n not in GIVEN_BACKWARD])
@at_most(20)
@given(data=st.data())
def test_backward_against_central_differences(mt, name, data):
    """backward(ctx, d) matches the gradient of the forward, for an upstream d not all ones"""
    fn = FUNCTIONS[name]
    # Same shapes, contiguous: layouts and broadcasting are task 2.3's (the given expand
    # brings a gradient to its input's shape), so a mistake there is not charged again.
    shape = data.draw(shapes(3, 3), "shape")
    arrays = [data.draw(cells(fn, shape), f"input {k}") for k in range(fn.arity)]
    d = data.draw(values_in(shape, -2.0, 2.0), "d_output")
    assume(not np.allclose(d, 1.0))
    check_backward(mt, fn, arrays, d)


@pytest.mark.task("2.4")
@at_most(20)
@given(data=st.data())
def test_permute_backward_with_upstream_gradient(mt, data):
    """Permute.backward sends each upstream cell back to the cell it came from"""
    shape = data.draw(shapes(4, 3).filter(lambda s: len(s) >= 3), "shape")
    # An order that is not its own inverse: permuting back by the order again is wrong.
    order = data.draw(
        st.permutations(range(len(shape))).filter(lambda o: list(np.argsort(o)) != list(o)),
        "order",
    )
    array = data.draw(values_in(shape, -5.0, 5.0), "values")
    d = data.draw(values_in(tuple(shape[i] for i in order), -2.0, 2.0), "d_output")
    expected = np.transpose(d, np.argsort(order))
    order_t = mt.tensor([float(i) for i in order])
    ctx = mt.Context()
    out = mt.Permute.forward(ctx, make(mt, array), order_t)
    (forward,) = outcomes(code(mt, READ)(out))  # before backward: see check_backward
    back = mt.Permute.backward(ctx, make(mt, d))
    if isinstance(forward, StudentFault) or not _same(
        laid_out(forward), np.transpose(array, order)
    ):
        # The forward is wrong (task 2.3's): the backward on the usual saved orders instead.
        tries = []
        for saved in (list(order), tuple(order), order_t):
            other = mt.Context()
            other.save_for_backward(saved)
            tries.append(mt.Permute.backward(other, make(mt, d)))
        for got in outcomes(*(code(mt, READ_FIRST)(b) for b in tries)):
            if not isinstance(got, StudentFault) and _same(_first_gradient(got, shape), expected):
                return
        back = tries[0]
    (readings,) = outcomes(code(mt, READ_FIRST)(back))
    first = readings[0] if isinstance(readings, list) and readings else readings
    inverse = [int(i) for i in np.argsort(order)]
    if not _same(_laid(first), expected) and their_permute_explains(
        mt, d, range(d.ndim), inverse, first, expected
    ):
        return
    (grads,) = answers(code(mt, READ_FIRST)(back), what="Permute.backward")
    grad = laid_out(grads[0])
    if isinstance(grad, str):
        fail(back, f"Permute.backward's gradient cannot be read: {grad}")
    got = expanded(grad, tuple(shape))
    if got is None:
        fail(back, f"Permute.backward's gradient has shape {grad.shape}, expected {shape}")
    check_array(back, got, expected, what=f"Permute.backward for order {tuple(order)}")


def _first_gradient(readings, shape):
    grad = laid_out(readings[0]) if readings else "nothing"
    return None if isinstance(grad, str) else expanded(grad, tuple(shape))


def _sig(v):
    return 0.5 * (1.0 + np.tanh(v / 2.0))


def _dsig(v):
    return _sig(v) * (1 - _sig(v))


#: Terms of the expression Tensor.backward runs through: (the Tensor expression over x and
#: y, its NumPy value, its gradients to x and y times d). A term joins the expression only
#: where every forward it uses is right at the example's inputs (else: task 2.3's).
TERMS = {
    "(x * y).sigmoid()": (
        lambda x, y: (x * y).sigmoid(),
        lambda x, y: _sig(x * y),
        lambda x, y, d: (d * _dsig(x * y) * y, d * _dsig(x * y) * x),
    ),
    "x.exp()": (
        lambda x, y: x.exp(), lambda x, y: np.exp(x), lambda x, y, d: (d * np.exp(x), 0 * d)
    ),
    "x.relu() * y": (
        lambda x, y: x.relu() * y,
        lambda x, y: np.maximum(x, 0) * y,
        lambda x, y, d: (d * (x > 0) * y, d * np.maximum(x, 0)),
    ),
    "-(x.log())": (
        lambda x, y: -(x.log()), lambda x, y: -np.log(x), lambda x, y, d: (-d / x, 0 * d)
    ),
}  # fmt: skip


@pytest.mark.task("2.4")
@at_most(20)
@given(data=st.data())
def test_tensor_backward_through_an_expression(mt, data):
    """Tensor.backward(d) fills x.grad and y.grad through a sum of terms, (x * y).sigmoid(), ..."""
    shape = data.draw(shapes(2, 3), "shape")
    xa = data.draw(values_in(shape, 0.5, 3.0), "x")  # positive, for log
    ya = data.draw(values_in(shape, -2.0, 2.0), "y")
    d = data.draw(values_in(shape, -2.0, 2.0), "d")
    x, y = make(mt, xa), make(mt, ya)
    terms = {text: term[0](x, y) for text, term in TERMS.items()}
    reader = code(mt, READ)
    healthy = [
        text
        for (text, term), got in zip(
            TERMS.items(), outcomes(*(reader(t) for t in terms.values())), strict=True
        )
        if not isinstance(got, StudentFault) and _same(laid_out(got), term[1](xa, ya))
    ]
    if not healthy:
        pytest.fail(
            "Tensor.backward could not be checked: no term of the expression has the "
            "right forward. Fix the forward tests (task 2.3) first.",
            pytrace=False,
        )
    x, y = make(mt, xa), make(mt, ya)
    x.requires_grad_(True)
    y.requires_grad_(True)
    z = TERMS[healthy[0]][0](x, y)
    for text in healthy[1:]:
        z = z + TERMS[text][0](x, y)
    z.backward(make(mt, d))
    dx = sum(TERMS[text][2](xa, ya, d)[0] for text in healthy)
    dy = sum(TERMS[text][2](xa, ya, d)[1] for text in healthy)
    gx, gy = read(x.grad, y.grad, what=f"({' + '.join(healthy)}).backward(d)")
    # The template's module-0 log is log(x + 1e-6): its gradient is off by up to 1e-6 / x**2
    # times d (8e-6 here); real mistakes are off by far more.
    check_array(x.grad, gx, dx, what="x.grad", rtol=1e-5, atol=2e-5)
    check_array(y.grad, gy, dy, what="y.grad", rtol=1e-5, atol=2e-5)


def _laid(reading):
    """A reading laid out, or None for a fault or an unreadable layout."""
    if isinstance(reading, StudentFault):
        return None
    array = laid_out(reading)
    return array if isinstance(array, np.ndarray) else None


def _same(got, want):
    return (
        isinstance(got, np.ndarray)
        and got.shape == want.shape
        and np.allclose(got, want, rtol=1e-9, atol=1.1e-5)
    )
