"""Tasks 2.1 (indexing, strides, permute) and 2.2 (broadcasting) of tensor_data.py.

Every function is called as the given code calls it: indices, shapes and strides as NumPy
int arrays, ``out_index`` written in place. ``to_index`` is judged as a bijection onto the
valid indices, in any order (the template does not require it to invert
``index_to_position``); ``shape_broadcast`` against NumPy's own rule, the oracle here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from tensors import (
    BROADCAST_ANSWER,
    INTS,
    READ_DATA,
    broadcast_pair,
    clashing_pair,
    fail,
    laid_out,
    shapes,
    stored,
)

from grader.isolation.checks import answers, at_most, faulted
from grader.isolation.handles import code, outcomes
from grader.isolation.protocol import StudentError, StudentFault

# --------------------------------------------------------------------------- task 2.1


@pytest.mark.task("2.1")
@at_most(25)
@given(shape=shapes(4, 5), data=st.data())
def test_index_to_position(mt, shape, data):
    """index_to_position is the sum of index times stride, for any strides"""
    strides = data.draw(st.lists(st.integers(1, 30), min_size=len(shape), max_size=len(shape)))
    index = data.draw(st.tuples(*(st.integers(0, n - 1) for n in shape)))
    ints = code(mt, INTS)
    got = mt.index_to_position(ints(*index), ints(*strides))
    (position,) = answers(got, what="index_to_position")
    expected = sum(i * s for i, s in zip(index, strides, strict=True))
    if type(position) is not int or position != expected:
        fail(got, f"index_to_position returned {position!r}, expected the integer {expected}")


@pytest.mark.task("2.1")
@at_most(20)
@given(shape=shapes(4, 4))
def test_to_index_enumerates_every_index(mt, shape):
    """to_index over every ordinal gives every index of the shape exactly once"""
    ints = code(mt, INTS)
    array_shape, reads = ints(*shape), []
    for ordinal in range(math.prod(shape)):
        out = ints(*([0] * len(shape)))
        call = mt.to_index(ordinal, array_shape, out)
        reads.append((call, out.tolist()))
    got = answers(*(r for _, r in reads), what="to_index")
    seen: dict[tuple[int, ...], int] = {}
    for ordinal, ((call, _), index) in enumerate(zip(reads, got, strict=True)):
        index = tuple(index)
        if len(index) != len(shape) or not all(
            0 <= i < n for i, n in zip(index, shape, strict=True)
        ):
            fail(call, f"to_index({ordinal}) wrote {index}, not an index of shape {shape}")
        if index in seen:
            fail(
                call,
                f"to_index({ordinal}) wrote {index}, as to_index({seen[index]}) did: "
                "each ordinal must give a different index",
            )
        seen[index] = ordinal


@pytest.mark.task("2.1")
@at_most(30)
@given(shape=shapes(4, 4), data=st.data())
def test_permute_reorders_shape_and_strides(mt, shape, data):
    """TensorData.permute reads the same storage with dimensions reordered"""
    order = data.draw(st.permutations(range(len(shape))), "order")
    array = np.arange(math.prod(shape), dtype=float).reshape(shape)
    storage, strides = stored(array, range(len(shape)))
    original = mt.TensorData(storage, shape, strides)
    permuted = original.permute(*order)
    got, after = _read_data(mt, permuted, original)
    expected = np.transpose(array, order)
    if got.shape != expected.shape or not np.array_equal(got, expected):
        fail(
            permuted,
            f"permute{tuple(order)} of shape {tuple(shape)} reads {got.tolist()}, "
            f"expected {expected.tolist()}",
        )
    if after.shape != array.shape or not np.array_equal(after, array):
        fail(original, f"permute{tuple(order)} changed the TensorData it was called on: it "
             "must return a new TensorData over the same storage")  # fmt: skip


def _read_data(mt, *data):
    """TensorData read by their own shape, strides and storage (positions computed here)."""
    reader = code(mt, READ_DATA)
    arrays = []
    for h, reading in zip(data, answers(*(reader(d) for d in data), what="permute"), strict=True):
        array = laid_out(reading)
        if isinstance(array, str):
            fail(h, f"the TensorData cannot be read: {array}")
        arrays.append(array)
    return arrays


# --------------------------------------------------------------------------- task 2.2


@pytest.mark.task("2.2")
@at_most(40)
@given(pair=st.one_of(broadcast_pair(), clashing_pair()))
@example(pair=((2,), (4,)))  # a multiple is not enough: every seed asks it
def test_shape_broadcast_follows_numpy(mt, pair):
    """shape_broadcast gives NumPy's broadcast shape, or raises IndexingError"""
    a, b = pair
    got = mt.shape_broadcast(a, b)
    (result,) = outcomes(code(mt, "lambda s: [int(n) for n in s]")(got))
    try:
        expected = tuple(np.broadcast_shapes(a, b))
    except ValueError:
        if isinstance(result, StudentError) and result.type_name == "IndexingError":
            return
        hint = "these shapes do not broadcast, so it must raise IndexingError"
        if isinstance(result, StudentFault):  # another raise, or not written yet: told as such
            faulted(result, got, "shape_broadcast", hint)
        fail(got, f"shape_broadcast{(a, b)} gave {result!r}: {hint}")
    (result,) = answers(code(mt, "lambda s: [int(n) for n in s]")(got), what="shape_broadcast")
    if tuple(result) != expected:
        fail(got, f"shape_broadcast{(a, b)} returned {tuple(result)}, expected {expected}")


@pytest.mark.task("2.2")
@at_most(40)
@given(pair=broadcast_pair())
def test_broadcast_index(mt, pair):
    """broadcast_index maps every index of the big shape to the smaller shape's index"""
    small, other = pair
    big = tuple(np.broadcast_shapes(small, other))
    ints, both = code(mt, INTS), code(mt, BROADCAST_ANSWER)
    calls = {}
    for big_index in np.ndindex(*big):
        out = ints(*([0] * len(small)))
        call = mt.broadcast_index(ints(*big_index), ints(*big), ints(*small), out)
        calls[big_index] = (call, both(call, out))
    got = answers(*(answer for _, answer in calls.values()), what="broadcast_index")
    offset = len(big) - len(small)
    for (big_index, (call, _)), (written, returned) in zip(calls.items(), got, strict=True):
        expected = [0 if n == 1 else big_index[offset + k] for k, n in enumerate(small)]
        # The docstring asks for out_index written in place; a returned index is accepted
        # too (the student's own map and zip use it, and they are judged on their values).
        if written != expected and returned != expected:
            fail(
                call,
                f"broadcast_index{(big_index, big, small)} wrote {written}"
                + (f" and returned {returned}" if returned is not None else "")
                + f", expected {expected}",
            )
