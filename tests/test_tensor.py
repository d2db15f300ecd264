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
from support import answers, at_most
from tensors import (
    CALLS,
    CD_ATOL,
    CD_RTOL,
    FUNCTIONS,
    READ_ALL,
    SWITCH_MARGIN,
    broadcast_pair,
    check_array,
    expanded,
    fail,
    laid_out,
    layouts,
    make,
    read,
    shapes,
    values_in,
)

from grader.isolation.handles import code

UNARY = [name for name, f in FUNCTIONS.items() if f.arity == 1]
BINARY = [name for name, f in FUNCTIONS.items() if f.arity == 2]


@st.composite
def inputs(draw, fn, small: bool = False):
    """The input arrays of ``fn`` and the order each is stored in."""
    if fn.arity == 1:
        shape_list = [draw(shapes(3, 3 if small else 4))]
    else:
        shape_list = list(draw(broadcast_pair()))
    arrays = []
    for shape in shape_list:
        if fn.switch and fn.name != "ReLU":  # few values, so that ties and both sides occur
            cells = st.sampled_from([-2.0, -1.0, 0.0, 0.5, 1.0])
            size = int(np.prod(shape))
            arrays.append(
                np.array(draw(st.lists(cells, min_size=size, max_size=size))).reshape(shape)
            )
        else:
            arrays.append(draw(values_in(shape, fn.lo, fn.hi)))
    if fn.name == "ReLU":
        assume(np.all(np.abs(arrays[0]) > SWITCH_MARGIN))
    orders = [draw(layouts(a.shape)) for a in arrays]
    return arrays, orders


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
    (got,) = read(out, what=fn.call)
    check_array(out, got, fn.forward(*arrays), what=fn.call, atol=fn.atol)


@pytest.mark.task("2.3")
@at_most(30)
@given(shape=shapes(3, 4), data=st.data())
def test_sum_along_each_dimension(mt, shape, data):
    """sum(dim) keeps the dimension with size 1, for every dimension and any layout"""
    array = data.draw(values_in(shape, -5.0, 5.0), "values")
    t = make(mt, array, data.draw(layouts(shape), "layout"))
    outs = [t.sum(dim) for dim in range(len(shape))]
    for dim, (out, got) in enumerate(zip(outs, read(*outs, what="sum"), strict=True)):
        check_array(out, got, array.sum(axis=dim, keepdims=True), what=f"sum({dim})")


@pytest.mark.task("2.3")
@at_most(30)
@given(shape=shapes(4, 3), data=st.data())
def test_permute_of_a_tensor(mt, shape, data):
    """Tensor.permute gives the same values with dimensions reordered"""
    order = data.draw(st.permutations(range(len(shape))), "order")
    array = data.draw(values_in(shape, -5.0, 5.0), "values")
    out = make(mt, array, data.draw(layouts(shape), "layout")).permute(*order)
    (got,) = read(out, what="permute")
    check_array(out, got, np.transpose(array, order), what=f"permute{tuple(order)}")


@pytest.mark.task("2.3")
@at_most(20)
@given(data=st.data())
def test_is_close(mt, data):
    """is_close gives 1.0 where two tensors differ by less than 1e-2, else 0.0"""
    shape = data.draw(shapes(3, 3), "shape")
    a = data.draw(values_in(shape, -5.0, 5.0), "a")
    gaps = data.draw(values_in(shape, 0.0, 5e-3), "close") * data.draw(
        st.sampled_from([1.0, 4.0, 100.0]), "scale"
    )
    b = a + gaps
    out = make(mt, a).is_close(make(mt, b))
    (got,) = read(out, what="is_close")
    check_array(out, got, (np.abs(a - b) < 1e-2) * 1.0, what="a.is_close(b)")


# --------------------------------------------------------------------------- task 2.4


@pytest.mark.task("2.4")
@pytest.mark.parametrize("name", list(FUNCTIONS))
@at_most(20)
@given(data=st.data())
def test_backward_against_central_differences(mt, name, data):
    """backward(ctx, d) matches the gradient of the forward, for an upstream d not all ones"""
    fn = FUNCTIONS[name]
    arrays, orders = data.draw(inputs(fn, small=True), "inputs")
    out_shape = np.broadcast_shapes(*(x.shape for x in arrays))
    d = data.draw(values_in(out_shape, -2.0, 2.0), "d_output")
    assume(not np.allclose(d, 1.0))
    ctx = mt.Context()
    tensors = [make(mt, x, o) for x, o in zip(arrays, orders, strict=True)]
    forward = getattr(mt, name).forward
    out = forward(ctx, *tensors)
    back = getattr(mt, name).backward(ctx, make(mt, d))
    # the student's forward moved one cell at a time, for central differences (smooth only)
    h = 1e-6
    shifted = []
    if not fn.switch:
        for k, x in enumerate(arrays):
            for index in np.ndindex(*x.shape):
                for sign in (1.0, -1.0):
                    moved = [y.copy() for y in arrays]
                    moved[k][index] += sign * h * max(1.0, abs(x[index]))
                    shifted.append(forward(mt.Context(), *(make(mt, y) for y in moved)))
    got_out, *moved_out = read(out, *shifted, what=f"{name}.forward")
    (grads,) = answers(code(mt, READ_ALL)(back), what=f"{name}.backward")
    if len(grads) < fn.arity:
        fail(
            back,
            f"{name}.backward returned {len(grads)} value(s); {name} has {fn.arity} "
            "inputs, so it must return one gradient for each",
        )
    exact = fn.grads(d, *arrays)
    forward_right = got_out.shape == out_shape and np.allclose(
        got_out, fn.forward(*arrays), rtol=1e-9, atol=1e-12
    )
    pos = 0
    for k, x in enumerate(arrays):
        grad = laid_out(grads[k])
        if isinstance(grad, str):
            fail(back, f"{name}.backward's gradient for input {k} cannot be read: {grad}")
        got = expanded(grad, x.shape)
        if got is None:
            fail(
                back,
                f"{name}.backward's gradient for input {k} has shape {grad.shape}, "
                f"which does not broadcast to the input's shape {x.shape}",
            )
        expected = expanded(np.asarray(exact[k]) * np.ones(out_shape), x.shape)
        if forward_right and not fn.switch:
            estimate = np.empty(x.shape)
            for index in np.ndindex(*x.shape):
                up, down = moved_out[pos], moved_out[pos + 1]
                pos += 2
                step = h * max(1.0, abs(x[index]))
                estimate[index] = np.sum(d * (up - down)) / (2 * step)
            expected = estimate
        check_array(
            back,
            got,
            expected,
            what=f"{name}.backward, gradient of input {k}",
            rtol=CD_RTOL,
            atol=CD_ATOL,
        )


@pytest.mark.task("2.4")
@at_most(20)
@given(data=st.data())
def test_permute_backward_with_upstream_gradient(mt, data):
    """Permute.backward sends each upstream cell back to the cell it came from"""
    shape = data.draw(shapes(3, 3), "shape")
    order = data.draw(st.permutations(range(len(shape))), "order")
    array = data.draw(values_in(shape, -5.0, 5.0), "values")
    d = data.draw(values_in(tuple(shape[i] for i in order), -2.0, 2.0), "d_output")
    ctx = mt.Context()
    mt.Permute.forward(ctx, make(mt, array), mt.tensor([float(i) for i in order]))
    back = mt.Permute.backward(ctx, make(mt, d))
    (grads,) = answers(code(mt, READ_ALL)(back), what="Permute.backward")
    grad = laid_out(grads[0])
    if isinstance(grad, str):
        fail(back, f"Permute.backward's gradient cannot be read: {grad}")
    got = expanded(grad, tuple(shape))
    expected = np.transpose(d, np.argsort(order))
    if got is None:
        fail(back, f"Permute.backward's gradient has shape {grad.shape}, expected {shape}")
    check_array(back, got, expected, what=f"Permute.backward for order {tuple(order)}")


@pytest.mark.task("2.4")
@at_most(20)
@given(data=st.data())
def test_tensor_backward_through_an_expression(mt, data):
    """Tensor.backward fills x.grad and y.grad through (x * y).sigmoid() + x.exp(), summed"""
    x_shape, y_shape = data.draw(broadcast_pair(2), "shapes")
    xa = data.draw(values_in(x_shape, -2.0, 2.0), "x")
    ya = data.draw(values_in(y_shape, -2.0, 2.0), "y")
    x, y = make(mt, xa), make(mt, ya)
    x.requires_grad_(True)
    y.requires_grad_(True)
    z = ((x * y).sigmoid() + x.exp()).sum()
    z.backward()
    sig = 0.5 * (1.0 + np.tanh(xa * ya / 2.0))
    full = np.broadcast_shapes(x_shape, y_shape)
    dx = expanded(sig * (1 - sig) * ya * np.ones(full) + np.exp(xa) * np.ones(full), x_shape)
    dy = expanded(sig * (1 - sig) * xa * np.ones(full), y_shape)
    gx, gy = read(x.grad, y.grad, what="Tensor.backward")
    check_array(x.grad, gx, dx, what="x.grad", rtol=1e-7, atol=1e-10)
    check_array(y.grad, gy, dy, what="y.grad", rtol=1e-7, atol=1e-10)
