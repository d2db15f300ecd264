"""How a tensor's numbers are laid out in memory (tasks 2.1 and 2.2).

A tensor keeps its values in one flat `storage` array. Its `shape` says how many
positions each dimension has, and its `strides` say how far to move in storage for one
step along each dimension. Reordering dimensions (`permute`) or repeating a dimension of
size 1 (broadcasting) then only changes shape and strides, never the storage.

Two kinds of index appear below: a *user* index is a tuple of Python ints (what people
type, `t[1, 0]`); an internal index is a numpy int array, which the low-level loops of
tensor_ops.py fill in place without allocating.

The course's template imports `numba` at the top of this file, for a CUDA helper
(`TensorData.to_cuda_`) that module 2 never calls. This copy leaves both out, so module 2
needs only numpy.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from .operators import prod

__all__ = [
    "MAX_DIMS",
    "IndexingError",
    "Storage",
    "OutIndex",
    "Index",
    "Shape",
    "Strides",
    "UserIndex",
    "UserShape",
    "UserStrides",
    "index_to_position",
    "to_index",
    "broadcast_index",
    "shape_broadcast",
    "strides_from_shape",
    "TensorData",
    # The course's own tests call `minitorch.prod`, which reaches the package namespace
    # through this module.
    "prod",
]

MAX_DIMS = 32
"""The largest number of dimensions a tensor may have (room for fixed index buffers)."""


class IndexingError(RuntimeError):
    """An index, shape or stride that does not fit the tensor it is used with."""


Storage: TypeAlias = npt.NDArray[np.float64]
OutIndex: TypeAlias = npt.NDArray[np.int64]
Index: TypeAlias = npt.NDArray[np.int64]
Shape: TypeAlias = npt.NDArray[np.int64]
Strides: TypeAlias = npt.NDArray[np.int64]

UserIndex: TypeAlias = Sequence[int]
UserShape: TypeAlias = Sequence[int]
UserStrides: TypeAlias = Sequence[int]


# ## Task 2.1: from an index to a storage position, and back


def index_to_position(index: Index, strides: Strides) -> int:
    """Turn a multidimensional index into a position in storage.

    Each step along dimension `i` moves `strides[i]` places in storage, so the position
    is the sum of `index[i] * strides[i]` over the dimensions. Only the first
    `len(strides)` entries of `index` are read: callers may pass a longer buffer.

    Args:
        index: one coordinate per dimension.
        strides: the tensor's strides.

    Returns:
        The position in storage, as an integer (numpy refuses float indices).
    """
    # BEGIN SOLUTION task=2.1
    position = 0
    for i in range(len(strides)):
        position += int(index[i]) * int(strides[i])
    return position
    # END SOLUTION


def to_index(ordinal: int, shape: Shape, out_index: OutIndex) -> None:
    """Write the index number `ordinal` of a tensor of `shape` into `out_index`.

    Counting `ordinal` from 0 to size - 1 must visit every index of `shape` exactly
    once; which order is free, and it need not agree with the tensor's strides (a
    permuted tensor is still enumerated in the same order). This one counts in row-major
    order, the last dimension fastest, like nested for loops.

    Args:
        ordinal: a number in [0, size).
        shape: the tensor's shape.
        out_index: the buffer to fill; its first `len(shape)` entries are written.

    Returns:
        None: the result is written into `out_index`.
    """
    # BEGIN SOLUTION task=2.1
    rest = int(ordinal)
    for i in range(len(shape) - 1, -1, -1):
        size = int(shape[i])
        out_index[i] = rest % size
        rest //= size
    # END SOLUTION


# ## Task 2.2: broadcasting


def broadcast_index(big_index: Index, big_shape: Shape, shape: Shape, out_index: OutIndex) -> None:
    """Find where an index of a broadcast (bigger) tensor lands in the smaller tensor.

    The dimensions of `shape` line up with the last `len(shape)` dimensions of
    `big_shape`. A dimension that the smaller tensor really has copies the big index's
    coordinate; a dimension of size 1 was stretched by broadcasting, so every big
    coordinate maps to 0. Leading dimensions the smaller tensor lacks are dropped.

    Args:
        big_index: an index of the bigger tensor.
        big_shape: the bigger tensor's shape.
        shape: the smaller tensor's shape (broadcastable to `big_shape`).
        out_index: the buffer to fill; its first `len(shape)` entries are written.

    Returns:
        None: the result is written into `out_index`.
    """
    # BEGIN SOLUTION task=2.2
    offset = len(big_shape) - len(shape)
    for i in range(len(shape)):
        out_index[i] = big_index[i + offset] if shape[i] > 1 else 0
    # END SOLUTION


def shape_broadcast(shape1: UserShape, shape2: UserShape) -> UserShape:
    """The shape two tensors of `shape1` and `shape2` broadcast to together.

    Numpy's rule: align the shapes on the right and pad the shorter one with 1s on the
    left; in every dimension the sizes must be equal or one of them 1, and the result
    takes the larger size.

    Args:
        shape1: the first shape.
        shape2: the second shape.

    Returns:
        The broadcast shape, as a tuple (TensorData accepts only tuples).

    Raises:
        IndexingError: if the shapes cannot be broadcast together.
    """
    # BEGIN SOLUTION task=2.2
    dims = max(len(shape1), len(shape2))
    padded1 = [1] * (dims - len(shape1)) + [int(s) for s in shape1]
    padded2 = [1] * (dims - len(shape2)) + [int(s) for s in shape2]
    result = []
    for a, b in zip(padded1, padded2, strict=True):
        if a != b and a != 1 and b != 1:
            raise IndexingError(f"Cannot broadcast shapes {tuple(shape1)} and {tuple(shape2)}.")
        result.append(a if b == 1 else b)
    return tuple(result)
    # END SOLUTION


def strides_from_shape(shape: UserShape) -> UserStrides:
    """The strides of a contiguous (row-major) tensor of `shape`.

    The last dimension moves one place at a time; each earlier one jumps over a whole
    block of the dimensions after it. Returned as a tuple of Python ints.
    """
    strides: list[int] = []
    step = 1
    for size in reversed(shape):
        strides.append(step)
        step *= int(size)
    return tuple(reversed(strides))


class TensorData:
    """The storage, shape and strides of a tensor, without any autodiff.

    Attributes:
        _storage: the flat float64 array of values.
        _shape: the shape as a numpy int array (for the low-level loops).
        _strides: the strides as a numpy int array (for the low-level loops).
        shape: the shape as a tuple of ints (for people).
        strides: the strides as a tuple of ints (for people).
        dims: the number of dimensions.
        size: the number of elements, the product of the shape.
    """

    _storage: Storage
    _strides: Strides
    _shape: Shape
    strides: UserStrides
    shape: UserShape
    dims: int
    size: int

    def __init__(
        self,
        storage: Sequence[float] | Storage,
        shape: UserShape,
        strides: UserStrides | None = None,
    ) -> None:
        # Storage is shared, not copied, when it already is a numpy array: that is what
        # lets permute and view return new layouts over the same numbers.
        if isinstance(storage, np.ndarray):
            self._storage = storage
        else:
            self._storage = np.array(storage, dtype=np.float64)

        if strides is None:
            strides = strides_from_shape(shape)

        assert isinstance(strides, tuple), "Strides must be tuple"
        assert isinstance(shape, tuple), "Shape must be tuple"
        if len(strides) != len(shape):
            raise IndexingError(f"Len of strides {strides} must match {shape}.")
        self._strides = np.array(strides, dtype=np.int64)
        self._shape = np.array(shape, dtype=np.int64)
        self.strides = strides
        self.shape = shape
        self.dims = len(strides)
        self.size = int(prod(shape))
        assert len(self._storage) >= self.size, "Storage is too small for the shape"

    def is_contiguous(self) -> bool:
        """True when the storage holds the values in row-major order of the shape.

        Only then can a tensor be viewed with another shape without copying. Dimensions
        of size 1 are never stepped along, so their strides do not matter.
        """
        expected = strides_from_shape(self.shape)
        return all(
            int(size) == 1 or int(stride) == want
            for size, stride, want in zip(self.shape, self.strides, expected, strict=True)
        )

    @staticmethod
    def shape_broadcast(shape_a: UserShape, shape_b: UserShape) -> UserShape:
        """The shape two tensors broadcast to (see the module-level `shape_broadcast`)."""
        return shape_broadcast(shape_a, shape_b)

    def index(self, index: int | UserIndex | Index) -> int:
        """The storage position of a user index, after checking that it fits the shape.

        Raises:
            IndexingError: if the index has the wrong length or a coordinate out of range.
        """
        if isinstance(index, (int, np.integer)):
            aindex = np.array([index], dtype=np.int64)
        else:
            aindex = np.array(index, dtype=np.int64)

        if aindex.shape != (len(self.shape),):
            raise IndexingError(f"Index {tuple(aindex)} must have size {len(self.shape)}.")
        for i, (coordinate, size) in enumerate(zip(aindex, self.shape, strict=True)):
            if coordinate < 0:
                raise IndexingError(f"Negative indexing is not supported: {tuple(aindex)}.")
            if coordinate >= size:
                raise IndexingError(
                    f"Index {tuple(aindex)} is out of range in dimension {i} of {self.shape}."
                )
        return int(index_to_position(aindex, self._strides))

    def indices(self) -> Iterable[UserIndex]:
        """Every index of the shape, once each, in the order `to_index` gives."""
        lshape = np.array(self.shape, dtype=np.int64)
        out_index = np.zeros(len(self.shape), dtype=np.int64)
        for ordinal in range(self.size):
            to_index(ordinal, lshape, out_index)
            yield tuple(int(i) for i in out_index)

    def sample(self) -> UserIndex:
        """A random valid index (drawn from Python's global `random`, so seedable)."""
        return tuple(random.randint(0, int(s) - 1) for s in self.shape)

    def get(self, key: UserIndex) -> float:
        """The value at a user index.

        It is the numpy float64 from storage, not a Python float: it behaves as a float
        (it subclasses float) and also has numpy's `.item()`, which course code calls.
        """
        return self._storage[self.index(key)]  # type: ignore[no-any-return]

    def set(self, key: UserIndex, val: float) -> None:
        """Overwrite the value at a user index."""
        self._storage[self.index(key)] = val

    def tuple(self) -> tuple[Storage, Shape, Strides]:
        """(storage, shape, strides) in the form the low-level loops take them."""
        return (self._storage, self._shape, self._strides)

    def permute(self, *order: int) -> TensorData:
        """A new layout over the same storage with the dimensions reordered.

        Dimension `i` of the result is dimension `order[i]` of this tensor: both its
        size and its stride move, so every element keeps its storage position.

        Args:
            *order: a permutation of range(dims).

        Returns:
            A TensorData sharing this storage, with tuple shape and strides.
        """
        assert list(sorted(order)) == list(range(len(self.shape))), (
            f"Must give a position to each dimension. Shape: {self.shape} Order: {order}"
        )
        # BEGIN SOLUTION task=2.1
        new_shape = tuple(int(self.shape[i]) for i in order)
        new_strides = tuple(int(self.strides[i]) for i in order)
        return TensorData(self._storage, new_shape, new_strides)
        # END SOLUTION

    def to_string(self) -> str:
        """The values as nested brackets, one row of the last dimension per line."""
        s = ""
        for index in self.indices():
            opening = ""
            for i in range(len(index) - 1, -1, -1):
                if index[i] == 0:
                    opening = "\n" + "\t" * i + "[" + opening
                else:
                    break
            s += opening
            s += f"{self.get(index):3.2f}"
            closing = ""
            for i in range(len(index) - 1, -1, -1):
                if index[i] == self.shape[i] - 1:
                    closing += "]"
                else:
                    break
            s += closing if closing else " "
        return s
