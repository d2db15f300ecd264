"""Tensor: a multidimensional array that takes part in automatic differentiation.

A Tensor pairs a `TensorData` (storage, shape, strides) with a backend (the loops that
compute on it) and a history (the Function call that produced it). Every operator
builds its result through a Function of tensor_functions.py, so `backward()` can walk
the history with the same `backpropagate` that module 1 wrote for Scalars.

Python numbers on either side of an operator are wrapped as one-element constant
tensors and broadcast. There is no `__rsub__` (write `-t + 1`), as in the course.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from . import operators
from .autodiff import Context, Variable, backpropagate
from .tensor_data import Storage, TensorData, UserIndex, UserShape, UserStrides
from .tensor_functions import (
    EQ,
    LT,
    Add,
    All,
    Copy,
    Exp,
    Function,
    Inv,
    IsClose,
    Log,
    Mul,
    Neg,
    Permute,
    ReLU,
    Sigmoid,
    Sum,
    View,
    tensor,
)
from .tensor_ops import SimpleBackend, TensorBackend

__all__ = ["History", "Tensor", "TensorLike"]

TensorLike = Union[float, int, "Tensor"]


@dataclass
class History:
    """How a Tensor came to be.

    Attributes:
        last_fn: the Function that computed it (None for a leaf the user made).
        ctx: the context that function's forward pass filled in.
        inputs: the Tensors that function was applied to, in argument order.
    """

    last_fn: type[Function] | None = None
    ctx: Context | None = None
    inputs: Sequence[Tensor] = ()


_tensor_count = 0


class Tensor:
    """A multidimensional array of floats with autodiff.

    Attributes:
        _tensor: the TensorData (storage, shape, strides).
        backend: the TensorBackend that computes on it; `f` is the same object.
        history: None for a constant, History() for a leaf that wants a gradient, and
            History(fn, ctx, inputs) for a computed tensor.
        grad: the gradient accumulated by `backward` (leaves only), or None.
        unique_id: tells tensors apart (Tensor defines `==`, so it cannot be hashed).
        name: a label for printing graphs.
    """

    backend: TensorBackend
    history: History | None
    grad: Tensor | None
    _tensor: TensorData
    unique_id: int
    name: str

    def __init__(
        self,
        v: TensorData,
        back: History | None = None,
        name: str | None = None,
        backend: TensorBackend | None = None,
    ) -> None:
        global _tensor_count
        _tensor_count += 1
        self.unique_id = _tensor_count
        assert isinstance(v, TensorData)
        assert backend is not None
        self._tensor = v
        self.history = back
        self.backend = backend
        self.grad = None
        self.name = name if name is not None else str(self.unique_id)
        self.f = backend

    # ## Gradient tracking

    def requires_grad_(self, x: bool = True) -> None:
        """Make this tensor a fresh leaf that collects a gradient (or a constant if False).

        A computed tensor passed here forgets its history: from now on it is an input
        of its own.
        """
        self.history = History() if x else None

    def requires_grad(self) -> bool:
        """True if gradients flow into this tensor (it is a leaf or computed from one)."""
        return self.history is not None

    def zero_grad_(self) -> None:
        """Forget the accumulated gradient."""
        self.grad = None

    # ## Layout

    @property
    def shape(self) -> UserShape:
        """The shape, a tuple of ints."""
        return self._tensor.shape

    @property
    def size(self) -> int:
        """The number of elements."""
        return self._tensor.size

    @property
    def dims(self) -> int:
        """The number of dimensions."""
        return self._tensor.dims

    def to_numpy(self) -> np.ndarray:
        """A numpy array of the same shape and values (a copy)."""
        return self.contiguous()._tensor._storage.reshape(self.shape).copy()

    def tuple(self) -> tuple[Storage, Any, Any]:
        """(storage, shape, strides) for the low-level loops."""
        return self._tensor.tuple()

    def item(self) -> float:
        """The value of a one-element tensor, as a float."""
        assert self.size == 1, "Only one-element tensors can be turned into a number"
        return self._tensor.get(tuple([0] * self.dims))

    def __getitem__(self, key: int | UserIndex) -> float:
        key2 = (key,) if isinstance(key, (int, np.integer)) else key
        return self._tensor.get(key2)

    def __setitem__(self, key: int | UserIndex, val: float) -> None:
        key2 = (key,) if isinstance(key, (int, np.integer)) else key
        self._tensor.set(key2, val)

    def __repr__(self) -> str:
        return self._tensor.to_string()

    # ## Making tensors

    @staticmethod
    def make(
        storage: Storage | list[float],
        shape: UserShape,
        strides: UserStrides | None = None,
        backend: TensorBackend | None = None,
    ) -> Tensor:
        """A constant tensor over `storage` with the given layout (simple backend by default)."""
        if backend is None:
            backend = SimpleBackend
        return Tensor(TensorData(storage, shape, strides), backend=backend)

    def _new(self, tensor_data: TensorData) -> Tensor:
        """A constant tensor over `tensor_data`, on this tensor's backend."""
        return Tensor(tensor_data, backend=self.backend)

    def _type_(self, backend: TensorBackend) -> None:
        """Move this tensor to `backend` (they all share numpy storage in module 2)."""
        self.backend = backend
        self.f = backend

    def zeros(self, shape: UserShape | None = None) -> Tensor:
        """A fresh contiguous tensor of zeros, of `shape` or of this tensor's shape."""
        if shape is None:
            shape = self.shape
        return Tensor.make([0.0] * int(operators.prod(shape)), tuple(shape), backend=self.backend)

    def detach(self) -> Tensor:
        """The same data as a constant: no history, so no gradient flows through it."""
        return Tensor(self._tensor, backend=self.backend)

    def contiguous(self) -> Tensor:
        """A row-major copy (needed before `view` of a permuted tensor)."""
        return Copy.apply(self)

    def _ensure_tensor(self, b: TensorLike) -> Tensor:
        """Wrap a Python (or numpy) number as a one-element constant on our backend."""
        if isinstance(b, numbers.Real):
            return Tensor.make([float(b)], (1,), backend=self.backend)
        b._type_(self.backend)
        return b

    # ## Operators

    def __add__(self, b: TensorLike) -> Tensor:
        return Add.apply(self, self._ensure_tensor(b))

    def __sub__(self, b: TensorLike) -> Tensor:
        return Add.apply(self, -self._ensure_tensor(b))

    def __mul__(self, b: TensorLike) -> Tensor:
        return Mul.apply(self, self._ensure_tensor(b))

    def __truediv__(self, b: TensorLike) -> Tensor:
        return Mul.apply(self, Inv.apply(self._ensure_tensor(b)))

    def __rtruediv__(self, b: TensorLike) -> Tensor:
        return Mul.apply(self._ensure_tensor(b), Inv.apply(self))

    def __lt__(self, b: TensorLike) -> Tensor:
        return LT.apply(self, self._ensure_tensor(b))

    def __eq__(self, b: TensorLike) -> Tensor:  # type: ignore[override]
        return EQ.apply(self, self._ensure_tensor(b))

    def __gt__(self, b: TensorLike) -> Tensor:
        return LT.apply(self._ensure_tensor(b), self)

    def __neg__(self) -> Tensor:
        return Neg.apply(self)

    def __radd__(self, b: TensorLike) -> Tensor:
        return self + b

    def __rmul__(self, b: TensorLike) -> Tensor:
        return self * b

    # Defining __eq__ would drop hashing anyway; say so explicitly. Autodiff keys
    # tensors by unique_id, as it did for Scalars.
    __hash__ = None  # type: ignore[assignment]

    def all(self, dim: int | None = None) -> Tensor:
        """1.0 if every element (along `dim`, if given) is non-zero, else 0.0."""
        if dim is None:
            return All.apply(self.contiguous().view(self.size), self._ensure_tensor(0))
        return All.apply(self, self._ensure_tensor(dim))

    def is_close(self, y: TensorLike) -> Tensor:
        """1.0 where the elements are within 1e-2 of each other, else 0.0."""
        return IsClose.apply(self, self._ensure_tensor(y))

    def sigmoid(self) -> Tensor:
        """The logistic function, elementwise."""
        return Sigmoid.apply(self)

    def relu(self) -> Tensor:
        """max(x, 0), elementwise."""
        return ReLU.apply(self)

    def log(self) -> Tensor:
        """The natural logarithm, elementwise."""
        return Log.apply(self)

    def exp(self) -> Tensor:
        """e ** x, elementwise."""
        return Exp.apply(self)

    def sum(self, dim: int | None = None) -> Tensor:
        """Sum over `dim` (kept with size 1), or over everything into shape (1,)."""
        if dim is None:
            return Sum.apply(self.contiguous().view(self.size), self._ensure_tensor(0))
        return Sum.apply(self, self._ensure_tensor(dim))

    def mean(self, dim: int | None = None) -> Tensor:
        """Mean over `dim` (kept with size 1), or over everything into shape (1,)."""
        if dim is not None:
            return self.sum(dim) / self.shape[dim]
        return self.sum() / self.size

    def permute(self, *order: int) -> Tensor:
        """Reorder the dimensions: dimension i of the result is dimension order[i]."""
        return Permute.apply(self, tensor(list(order)))

    def view(self, *shape: int) -> Tensor:
        """The same (contiguous) data read with another shape of the same size."""
        return View.apply(self, tensor(list(shape)))

    # ## Autodiff (the Variable protocol of autodiff.py)

    def expand(self, other: Tensor) -> Tensor:
        """Bring a gradient `other` to this tensor's shape.

        A backward may return a gradient of the output's shape. Where the forward
        broadcast this tensor (a dimension it lacked or had as 1), every copy
        contributed, so the gradient is summed over those dimensions. A gradient that is
        smaller than this tensor (e.g. one number) is broadcast up instead.
        """
        if self.shape == other.shape:
            return other

        # Broadcast the gradient to the common shape, writing into a fresh buffer.
        true_shape = TensorData.shape_broadcast(self.shape, other.shape)
        buf = self.zeros(true_shape)
        self.backend.id_map(other, buf)
        if self.shape == true_shape:
            return buf

        # Sum over the dimensions this tensor was broadcast along.
        out = buf
        orig_shape = [1] * (len(out.shape) - len(self.shape)) + list(self.shape)
        for dim, size in enumerate(out.shape):
            if orig_shape[dim] == 1 and size != 1:
                out = self.backend.add_reduce(out, dim)
        assert out.size == self.size, f"{out.shape} {self.shape}"
        # `out` is contiguous, so its storage read row-major has this tensor's shape.
        return Tensor.make(out._tensor._storage, self.shape, backend=self.backend)

    def accumulate_derivative(self, x: Any) -> None:
        """Add `x` to this leaf's gradient (starting from zeros)."""
        assert self.is_leaf(), "Only leaf variables can have derivatives."
        if self.grad is None:
            self.grad = Tensor.make(
                [0.0] * int(operators.prod(self.shape)), self.shape, backend=self.backend
            )
        self.grad += x

    def is_leaf(self) -> bool:
        """True for a tensor the user made that wants a gradient."""
        return self.history is not None and self.history.last_fn is None

    def is_constant(self) -> bool:
        """True for a tensor with no history: no gradient flows into it."""
        return self.history is None

    @property
    def parents(self) -> Iterable[Variable]:
        """The inputs of the Function that computed this tensor."""
        assert self.history is not None
        return self.history.inputs

    def chain_rule(self, d_output: Any) -> Iterable[tuple[Variable, Any]]:
        """(input, gradient of the input) for every input of the last Function.

        Constant inputs (a dimension, a wrapped number) are included; backpropagate
        skips them. Each gradient is brought to its input's shape with `expand`.
        """
        h = self.history
        assert h is not None
        assert h.last_fn is not None
        assert h.ctx is not None

        x = h.last_fn._backward(h.ctx, d_output)
        assert len(x) == len(h.inputs), f"Bug in function {h.last_fn}"
        return [
            (inp, inp.expand(self._ensure_tensor(d_in)))
            for inp, d_in in zip(h.inputs, x, strict=True)
        ]

    def backward(self, grad_output: Tensor | None = None) -> None:
        """Fill in `grad` on every leaf this tensor depends on.

        Without `grad_output` the tensor must hold one number (shape (1,)), whose
        derivative with respect to itself is 1.
        """
        if grad_output is None:
            assert self.shape == (1,), "Must provide grad_output if non-scalar"
            grad_output = Tensor.make([1.0], (1,), backend=self.backend)
        backpropagate(self, grad_output)
