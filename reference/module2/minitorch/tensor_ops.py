"""Elementwise and reducing loops over tensors, and the backend built from them (task 2.3).

Three low-level loops do all the numeric work of module 2: `tensor_map` (one input),
`tensor_zip` (two inputs) and `tensor_reduce` (fold one dimension). They take raw
(storage, shape, strides) triples, never Tensors, so that later modules can swap in
faster versions (numba, CUDA) with the same calling convention.

`SimpleOps` wraps each loop in a function on tensors that allocates the output, and
`TensorBackend` turns one such ops class into the named operations (`add_zip`,
`relu_map`, ...) that the autodiff Functions call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from typing_extensions import Protocol

from . import operators

# MAX_DIMS and Index are not used here, but loops written against the course's template
# may use them (fixed index buffers) without importing them, so they stay in scope.
from .tensor_data import (
    MAX_DIMS,  # noqa: F401
    Index,  # noqa: F401
    Shape,
    Storage,
    Strides,
    broadcast_index,
    index_to_position,
    shape_broadcast,
    to_index,
)

if TYPE_CHECKING:
    from .tensor import Tensor

MapLoop = Callable[[Storage, Shape, Strides, Storage, Shape, Strides], None]
ZipLoop = Callable[
    [Storage, Shape, Strides, Storage, Shape, Strides, Storage, Shape, Strides], None
]
ReduceLoop = Callable[[Storage, Shape, Strides, Storage, Shape, Strides, int], None]

__all__ = [
    "MapProto",
    "TensorOps",
    "TensorBackend",
    "SimpleOps",
    "SimpleBackend",
    "tensor_map",
    "tensor_zip",
    "tensor_reduce",
]


class MapProto(Protocol):
    """A map on tensors: `out` may be given to write into an existing tensor."""

    def __call__(self, x: Tensor, out: Tensor | None = ..., /) -> Tensor:
        """Apply the map to `x`, into `out` if given."""
        ...


class TensorOps:
    """The operations a backend must provide; each returns a function on tensors."""

    @staticmethod
    def map(fn: Callable[[float], float]) -> MapProto:
        """Lift a float function to an elementwise function on tensors."""
        raise NotImplementedError

    @staticmethod
    def zip(fn: Callable[[float, float], float]) -> Callable[[Tensor, Tensor], Tensor]:
        """Lift a float function of two arguments to tensors, with broadcasting."""
        raise NotImplementedError

    @staticmethod
    def reduce(
        fn: Callable[[float, float], float], start: float = 0.0
    ) -> Callable[[Tensor, int], Tensor]:
        """Lift a float fold to a reduction of one dimension of a tensor."""
        raise NotImplementedError

    @staticmethod
    def matrix_multiply(a: Tensor, b: Tensor) -> Tensor:
        """Batched matrix product (module 3)."""
        raise NotImplementedError("Not implemented in this assignment")

    cuda = False


class TensorBackend:
    """The named tensor operations that Functions call, built from one ops class.

    A Tensor carries its backend (`t.f`), so the same Function code runs on any ops
    class: the simple loops of this module, or faster ones later.
    """

    def __init__(self, ops: type[TensorOps]) -> None:
        # Elementwise maps.
        self.neg_map = ops.map(operators.neg)
        self.sigmoid_map = ops.map(operators.sigmoid)
        self.relu_map = ops.map(operators.relu)
        self.log_map = ops.map(operators.log)
        self.exp_map = ops.map(operators.exp)
        self.id_map = ops.map(operators.id)
        self.inv_map = ops.map(operators.inv)

        # Elementwise zips. The *_back ones take (input, upstream derivative) in that
        # order, like operators.log_back(x, d).
        self.add_zip = ops.zip(operators.add)
        self.mul_zip = ops.zip(operators.mul)
        self.lt_zip = ops.zip(operators.lt)
        self.eq_zip = ops.zip(operators.eq)
        self.is_close_zip = ops.zip(operators.is_close)
        self.relu_back_zip = ops.zip(operators.relu_back)
        self.log_back_zip = ops.zip(operators.log_back)
        self.inv_back_zip = ops.zip(operators.inv_back)

        # Reductions; the start value is what an empty fold gives.
        self.add_reduce = ops.reduce(operators.add, 0.0)
        self.mul_reduce = ops.reduce(operators.mul, 1.0)

        self.matrix_multiply = ops.matrix_multiply
        self.cuda = ops.cuda


class SimpleOps(TensorOps):
    """The plain-Python backend: allocates outputs and runs the loops of this module."""

    @staticmethod
    def map(fn: Callable[[float], float]) -> MapProto:
        """Elementwise `fn` on a tensor.

        Without `out`, the result has the input's shape. With `out`, the input is
        broadcast to `out`'s shape and written there (Tensor.expand relies on this).
        """
        f = tensor_map(fn)

        def ret(a: Tensor, out: Tensor | None = None) -> Tensor:
            if out is None:
                out = a.zeros(a.shape)
            f(*out.tuple(), *a.tuple())
            return out

        return ret

    @staticmethod
    def zip(fn: Callable[[float, float], float]) -> Callable[[Tensor, Tensor], Tensor]:
        """Elementwise `fn` on two tensors, broadcast to a common shape."""
        f = tensor_zip(fn)

        def ret(a: Tensor, b: Tensor) -> Tensor:
            if a.shape != b.shape:
                c_shape = shape_broadcast(a.shape, b.shape)
            else:
                c_shape = a.shape
            out = a.zeros(c_shape)
            f(*out.tuple(), *a.tuple(), *b.tuple())
            return out

        return ret

    @staticmethod
    def reduce(
        fn: Callable[[float, float], float], start: float = 0.0
    ) -> Callable[[Tensor, int], Tensor]:
        """Fold dimension `dim` of a tensor with `fn`, keeping it with size 1.

        The output is filled with `start` before the loop runs, so a loop may fold onto
        the value already in each output cell.
        """
        f = tensor_reduce(fn)

        def ret(a: Tensor, dim: int) -> Tensor:
            out_shape = list(a.shape)
            out_shape[dim] = 1
            out = a.zeros(tuple(out_shape))
            out._tensor._storage[:] = start
            f(*out.tuple(), *a.tuple(), dim)
            return out

        return ret

    @staticmethod
    def matrix_multiply(a: Tensor, b: Tensor) -> Tensor:
        """Batched matrix product: module 3, not this one."""
        raise NotImplementedError("Not implemented in this assignment")

    is_cuda = False


# ## Task 2.3: the low-level loops
# Every call from SimpleOps passes an `out` that is fresh, contiguous and zero-filled
# (for reduce: filled with the start value). The inputs, though, may be permuted
# (any strides) and smaller than `out` (broadcast).


def tensor_map(fn: Callable[[float], float]) -> MapLoop:
    """Build the loop that applies `fn` to every element of one tensor.

    Args:
        fn: a function from float to float.

    Returns:
        A function `_map(out, out_shape, out_strides, in_storage, in_shape, in_strides)`.
    """

    def _map(
        out: Storage,
        out_shape: Shape,
        out_strides: Strides,
        in_storage: Storage,
        in_shape: Shape,
        in_strides: Strides,
    ) -> None:
        """Set every element of `out` to `fn` of the matching element of the input.

        The input may have a smaller shape that broadcasts to `out_shape`: each output
        index is mapped back to the input index it reads from (`broadcast_index`).
        Both sides may have any strides, so positions come from `index_to_position`.
        """
        # BEGIN SOLUTION task=2.3
        out_index = np.zeros(len(out_shape), dtype=np.int64)
        in_index = np.zeros(len(in_shape), dtype=np.int64)
        size = int(np.prod(out_shape))
        for ordinal in range(size):
            to_index(ordinal, out_shape, out_index)
            broadcast_index(out_index, out_shape, in_shape, in_index)
            value = in_storage[index_to_position(in_index, in_strides)]
            out[index_to_position(out_index, out_strides)] = fn(value)
        # END SOLUTION

    return _map


def tensor_zip(fn: Callable[[float, float], float]) -> ZipLoop:
    """Build the loop that combines two tensors element by element with `fn`.

    Args:
        fn: a function from two floats to a float.

    Returns:
        A function `_zip(out, out_shape, out_strides, a_storage, a_shape, a_strides,
        b_storage, b_shape, b_strides)`.
    """

    def _zip(
        out: Storage,
        out_shape: Shape,
        out_strides: Strides,
        a_storage: Storage,
        a_shape: Shape,
        a_strides: Strides,
        b_storage: Storage,
        b_shape: Shape,
        b_strides: Strides,
    ) -> None:
        """Set every element of `out` to `fn(a, b)` of the matching input elements.

        Both inputs broadcast to `out_shape` (the caller computed it with
        `shape_broadcast`), so each output index is mapped back into each input.
        """
        # BEGIN SOLUTION task=2.3
        out_index = np.zeros(len(out_shape), dtype=np.int64)
        a_index = np.zeros(len(a_shape), dtype=np.int64)
        b_index = np.zeros(len(b_shape), dtype=np.int64)
        size = int(np.prod(out_shape))
        for ordinal in range(size):
            to_index(ordinal, out_shape, out_index)
            broadcast_index(out_index, out_shape, a_shape, a_index)
            broadcast_index(out_index, out_shape, b_shape, b_index)
            a_value = a_storage[index_to_position(a_index, a_strides)]
            b_value = b_storage[index_to_position(b_index, b_strides)]
            out[index_to_position(out_index, out_strides)] = fn(a_value, b_value)
        # END SOLUTION

    return _zip


def tensor_reduce(fn: Callable[[float, float], float]) -> ReduceLoop:
    """Build the loop that folds one dimension of a tensor with `fn`.

    Args:
        fn: a function from two floats (accumulator, next element) to a float.

    Returns:
        A function `_reduce(out, out_shape, out_strides, a_storage, a_shape, a_strides,
        reduce_dim)`.
    """

    def _reduce(
        out: Storage,
        out_shape: Shape,
        out_strides: Strides,
        a_storage: Storage,
        a_shape: Shape,
        a_strides: Strides,
        reduce_dim: int,
    ) -> None:
        """Fold the input along `reduce_dim` into `out`.

        `out_shape` is `a_shape` with size 1 at `reduce_dim`. Each output cell already
        holds the fold's start value (SimpleOps.reduce fills it), and the
        `a_shape[reduce_dim]` input cells in line with it are folded onto it in order.
        """
        # BEGIN SOLUTION task=2.3
        out_index = np.zeros(len(out_shape), dtype=np.int64)
        size = int(np.prod(out_shape))
        for ordinal in range(size):
            to_index(ordinal, out_shape, out_index)
            out_position = index_to_position(out_index, out_strides)
            # The input index equals the output index except along reduce_dim, where
            # it runs over the whole dimension.
            a_index = out_index.copy()
            accumulated = out[out_position]
            for j in range(int(a_shape[reduce_dim])):
                a_index[reduce_dim] = j
                accumulated = fn(accumulated, a_storage[index_to_position(a_index, a_strides)])
            out[out_position] = accumulated
        # END SOLUTION

    return _reduce


SimpleBackend = TensorBackend(SimpleOps)
"""The backend every tensor uses unless told otherwise."""
