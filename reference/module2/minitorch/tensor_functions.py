"""The differentiable operations on tensors (tasks 2.3 and 2.4), and tensor constructors.

Each operation is a `Function` with a `forward` (compute the result from the inputs'
data, saving what the derivative needs) and a `backward` (turn the derivative of the
final output with respect to this result into one derivative per input). `apply` links
the two: it runs `forward` on detached inputs and records the call in the result's
history, which `backpropagate` later walks.

A backward may return gradients of the *output's* shape: `Tensor.chain_rule` passes
each one through `expand`, which sums it down to its input's shape where the forward
broadcast. Numbers (0.0) are accepted too, for inputs that take no part in
differentiation (a dimension, a permutation order).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import numpy as np

import minitorch

from . import operators
from .autodiff import Context
from .tensor_ops import SimpleBackend, TensorBackend

if TYPE_CHECKING:
    from .tensor import Tensor
    from .tensor_data import UserIndex, UserShape

__all__ = [
    "wrap_tuple",
    "Function",
    "Neg",
    "Inv",
    "Add",
    "Mul",
    "Sigmoid",
    "ReLU",
    "Log",
    "Exp",
    "Sum",
    "All",
    "LT",
    "EQ",
    "IsClose",
    "Permute",
    "View",
    "Copy",
    "zeros",
    "rand",
    "tensor",
    "grad_central_difference",
    "grad_check",
]


def wrap_tuple(x: Any) -> tuple[Any, ...]:
    """Return `x` itself if it is a tuple, else the one-element tuple `(x,)`."""
    if isinstance(x, tuple):
        return x
    return (x,)


class Function:
    """Base class of the tensor operations; subclasses define forward and backward."""

    @classmethod
    def _backward(cls, ctx: Context, grad_out: Tensor) -> tuple[Tensor, ...]:
        # A one-input backward may return a bare value; callers always get a tuple.
        return wrap_tuple(cls.backward(ctx, grad_out))  # type: ignore[attr-defined]

    @classmethod
    def _forward(cls, ctx: Context, *inps: Tensor) -> Tensor:
        return cls.forward(ctx, *inps)  # type: ignore[attr-defined]

    @classmethod
    def apply(cls, *vals: Tensor) -> Tensor:
        """Run the operation on `vals` and record it, if any input wants a gradient.

        `forward` sees detached inputs, so whatever it computes (with the backend or
        with Tensor operators) adds nothing to the graph. When no input requires a
        gradient the result is a constant and nothing is saved for backward.
        """
        raw_vals = []
        need_grad = False
        for v in vals:
            if v.requires_grad():
                need_grad = True
            raw_vals.append(v.detach())

        ctx = Context(not need_grad)
        c = cls._forward(ctx, *raw_vals)

        back = None
        if need_grad:
            back = minitorch.History(cls, ctx, vals)
        return minitorch.Tensor(c._tensor, back, backend=c.backend)


# ## Given operations


class Neg(Function):
    """-t1, elementwise."""

    @staticmethod
    def forward(ctx: Context, t1: Tensor) -> Tensor:
        return t1.f.neg_map(t1)

    @staticmethod
    def backward(ctx: Context, grad_output: Tensor) -> Tensor:
        return grad_output.f.neg_map(grad_output)


class Inv(Function):
    """1 / t1, elementwise."""

    @staticmethod
    def forward(ctx: Context, t1: Tensor) -> Tensor:
        ctx.save_for_backward(t1)
        return t1.f.inv_map(t1)

    @staticmethod
    def backward(ctx: Context, grad_output: Tensor) -> Tensor:
        (t1,) = ctx.saved_values
        return grad_output.f.inv_back_zip(t1, grad_output)


class Add(Function):
    """t1 + t2, elementwise with broadcasting."""

    @staticmethod
    def forward(ctx: Context, t1: Tensor, t2: Tensor) -> Tensor:
        return t1.f.add_zip(t1, t2)

    @staticmethod
    def backward(ctx: Context, grad_output: Tensor) -> tuple[Tensor, Tensor]:
        return grad_output, grad_output


class Sum(Function):
    """Sum of `a` along dimension `dim` (a one-element tensor), keeping it with size 1."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, dim: Tensor) -> Tensor:
        ctx.save_for_backward(a.shape, dim)
        return a.f.add_reduce(a, int(dim.item()))

    @staticmethod
    def backward(ctx: Context, grad_output: Tensor) -> tuple[Tensor, float]:
        # Every summed cell moved the sum one for one, so each receives grad_output;
        # expand repeats it along the summed dimension. The dim gets no gradient.
        return grad_output, 0.0


class All(Function):
    """1.0 where every element along `dim` is non-zero (a product reduction); no backward."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, dim: Tensor) -> Tensor:
        return a.f.mul_reduce(a, int(dim.item()))


class View(Function):
    """The same storage read with another shape (the tensor must be contiguous)."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, shape: Tensor) -> Tensor:
        ctx.save_for_backward(a.shape)
        assert a._tensor.is_contiguous(), "Must be contiguous to view"
        shape2 = tuple(int(shape[i]) for i in range(shape.size))
        return minitorch.Tensor.make(a._tensor._storage, shape2, backend=a.backend)

    @staticmethod
    def backward(ctx: Context, grad_output: Tensor) -> tuple[Tensor, float]:
        (original,) = ctx.saved_values
        # The upstream gradient can have any strides; reading it back with the input's
        # shape needs its values in row-major order first.
        grad = grad_output.contiguous()
        return (
            minitorch.Tensor.make(grad._tensor._storage, original, backend=grad.backend),
            0.0,
        )


class Copy(Function):
    """A fresh contiguous copy of `a` (what `Tensor.contiguous` returns)."""

    @staticmethod
    def forward(ctx: Context, a: Tensor) -> Tensor:
        return a.f.id_map(a)

    @staticmethod
    def backward(ctx: Context, grad_output: Tensor) -> Tensor:
        return grad_output


# ## Task 2.3 (forward) and 2.4 (backward)


class Mul(Function):
    """a * b, elementwise with broadcasting."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, b: Tensor) -> Tensor:
        """Return the elementwise product; keep both inputs for backward."""
        # BEGIN SOLUTION task=2.3
        ctx.save_for_backward(a, b)
        return a.f.mul_zip(a, b)
        # END SOLUTION

    @staticmethod
    def backward(ctx: Context, grad_output: Tensor) -> tuple[Tensor, Tensor]:
        """d(a*b)/da = b and d(a*b)/db = a, each times grad_output."""
        # BEGIN SOLUTION task=2.4
        a, b = ctx.saved_values
        return grad_output.f.mul_zip(grad_output, b), grad_output.f.mul_zip(grad_output, a)
        # END SOLUTION


class Sigmoid(Function):
    """The logistic function, elementwise."""

    @staticmethod
    def forward(ctx: Context, t1: Tensor) -> Tensor:
        """Return sigmoid(t1); keep the result, since the derivative is built from it."""
        # BEGIN SOLUTION task=2.3
        out = t1.f.sigmoid_map(t1)
        ctx.save_for_backward(out)
        return out
        # END SOLUTION

    @staticmethod
    def backward(ctx: Context, grad_output: Tensor) -> Tensor:
        """d sigmoid(x)/dx = s * (1 - s) with s = sigmoid(x), times grad_output."""
        # BEGIN SOLUTION task=2.4
        (s,) = ctx.saved_values
        return grad_output * s * (-s + 1.0)
        # END SOLUTION


class ReLU(Function):
    """max(t1, 0), elementwise."""

    @staticmethod
    def forward(ctx: Context, t1: Tensor) -> Tensor:
        """Return relu(t1); keep the input, whose sign decides the derivative."""
        # BEGIN SOLUTION task=2.3
        ctx.save_for_backward(t1)
        return t1.f.relu_map(t1)
        # END SOLUTION

    @staticmethod
    def backward(ctx: Context, grad_output: Tensor) -> Tensor:
        """grad_output where the input was positive, 0 elsewhere."""
        # BEGIN SOLUTION task=2.4
        (t1,) = ctx.saved_values
        return grad_output.f.relu_back_zip(t1, grad_output)
        # END SOLUTION


class Log(Function):
    """Natural logarithm, elementwise."""

    @staticmethod
    def forward(ctx: Context, t1: Tensor) -> Tensor:
        """Return log(t1); keep the input for the derivative 1/x."""
        # BEGIN SOLUTION task=2.3
        ctx.save_for_backward(t1)
        return t1.f.log_map(t1)
        # END SOLUTION

    @staticmethod
    def backward(ctx: Context, grad_output: Tensor) -> Tensor:
        """grad_output / x."""
        # BEGIN SOLUTION task=2.4
        (t1,) = ctx.saved_values
        return grad_output.f.log_back_zip(t1, grad_output)
        # END SOLUTION


class Exp(Function):
    """e ** t1, elementwise."""

    @staticmethod
    def forward(ctx: Context, t1: Tensor) -> Tensor:
        """Return exp(t1); keep the result, which is also the derivative."""
        # BEGIN SOLUTION task=2.3
        out = t1.f.exp_map(t1)
        ctx.save_for_backward(out)
        return out
        # END SOLUTION

    @staticmethod
    def backward(ctx: Context, grad_output: Tensor) -> Tensor:
        """grad_output * exp(x)."""
        # BEGIN SOLUTION task=2.4
        (out,) = ctx.saved_values
        return grad_output.f.mul_zip(grad_output, out)
        # END SOLUTION


class LT(Function):
    """1.0 where a < b, else 0.0, elementwise with broadcasting."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, b: Tensor) -> Tensor:
        """Return the comparison; keep the input shapes for backward."""
        # BEGIN SOLUTION task=2.3
        ctx.save_for_backward(a.shape, b.shape)
        return a.f.lt_zip(a, b)
        # END SOLUTION

    @staticmethod
    def backward(ctx: Context, grad_output: Tensor) -> tuple[Tensor, Tensor]:
        """A step function is flat almost everywhere: zero for both inputs."""
        # BEGIN SOLUTION task=2.4
        a_shape, b_shape = ctx.saved_values
        return grad_output.zeros(a_shape), grad_output.zeros(b_shape)
        # END SOLUTION


class EQ(Function):
    """1.0 where a == b, else 0.0, elementwise with broadcasting."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, b: Tensor) -> Tensor:
        """Return the comparison; keep the input shapes for backward."""
        # BEGIN SOLUTION task=2.3
        ctx.save_for_backward(a.shape, b.shape)
        return a.f.eq_zip(a, b)
        # END SOLUTION

    @staticmethod
    def backward(ctx: Context, grad_output: Tensor) -> tuple[Tensor, Tensor]:
        """Zero for both inputs, as for LT."""
        # BEGIN SOLUTION task=2.4
        a_shape, b_shape = ctx.saved_values
        return grad_output.zeros(a_shape), grad_output.zeros(b_shape)
        # END SOLUTION


class IsClose(Function):
    """1.0 where |a - b| < 1e-2, else 0.0. A test helper: it has no backward."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, b: Tensor) -> Tensor:
        """Return the closeness test, elementwise with broadcasting."""
        # BEGIN SOLUTION task=2.3
        return a.f.is_close_zip(a, b)
        # END SOLUTION


class Permute(Function):
    """`a` with its dimensions reordered by `order` (a tensor of floats), no copy."""

    @staticmethod
    def forward(ctx: Context, a: Tensor, order: Tensor) -> Tensor:
        """Return a tensor over a's storage whose dimension i is a's dimension order[i].

        `order` holds floats (it is a Tensor), so it is turned into ints first.
        """
        # BEGIN SOLUTION task=2.3
        int_order = [int(order[i]) for i in range(order.size)]
        ctx.save_for_backward(int_order)
        return a._new(a._tensor.permute(*int_order))
        # END SOLUTION

    @staticmethod
    def backward(ctx: Context, grad_output: Tensor) -> tuple[Tensor, float]:
        """Undo the permutation on grad_output; the order itself gets no gradient."""
        # BEGIN SOLUTION task=2.4
        (int_order,) = ctx.saved_values
        # The inverse permutation sends each dimension back where it came from.
        inverse = [0] * len(int_order)
        for i, source in enumerate(int_order):
            inverse[source] = i
        return grad_output._new(grad_output._tensor.permute(*inverse)), 0.0
        # END SOLUTION


# ## Making tensors


def zeros(shape: UserShape, backend: TensorBackend = SimpleBackend) -> Tensor:
    """A contiguous tensor of zeros of `shape`."""
    return minitorch.Tensor.make([0.0] * int(operators.prod(shape)), shape, backend=backend)


def rand(
    shape: UserShape, backend: TensorBackend = SimpleBackend, requires_grad: bool = False
) -> Tensor:
    """A contiguous tensor of `shape` with values uniform in [0, 1) from `random`."""
    vals = [random.random() for _ in range(int(operators.prod(shape)))]
    t = minitorch.Tensor.make(vals, shape, backend=backend)
    t.requires_grad_(requires_grad)
    return t


def _tensor(
    ls: Any,
    shape: UserShape,
    backend: TensorBackend = SimpleBackend,
    requires_grad: bool = False,
) -> Tensor:
    """A tensor of `shape` holding the flat sequence `ls` in row-major order."""
    t = minitorch.Tensor.make(ls, shape, backend=backend)
    t.requires_grad_(requires_grad)
    return t


def tensor(ls: Any, backend: TensorBackend = SimpleBackend, requires_grad: bool = False) -> Tensor:
    """A tensor from nested lists of numbers; the nesting gives the shape.

    `tensor([[1, 2, 3], [4, 5, 6]])` has shape (2, 3). Values are stored as floats.
    """

    def shape_of(ls: Any) -> list[int]:
        if isinstance(ls, (list, tuple)):
            return [len(ls)] + shape_of(ls[0])
        return []

    def flatten(ls: Any) -> list[float]:
        if isinstance(ls, (list, tuple)):
            return [y for x in ls for y in flatten(x)]
        return [float(ls)]

    return _tensor(flatten(ls), tuple(shape_of(ls)), backend=backend, requires_grad=requires_grad)


# ## Checking gradients numerically


def grad_central_difference(
    f: Any, *vals: Tensor, arg: int = 0, epsilon: float = 1e-6, ind: UserIndex
) -> float:
    """Estimate d sum(f(vals)) / d vals[arg][ind] by a central difference.

    Only the one element `ind` of input `arg` moves, by epsilon each way.
    """
    x = vals[arg]
    up = zeros(x.shape, backend=x.backend)
    up[ind] = epsilon
    vals1 = [v.detach() + up if i == arg else v.detach() for i, v in enumerate(vals)]
    vals2 = [v.detach() - up if i == arg else v.detach() for i, v in enumerate(vals)]
    delta = f(*vals1).sum() - f(*vals2).sum()
    return float(delta[0]) / (2.0 * epsilon)


def grad_check(f: Any, *vals: Tensor) -> None:
    """Check autodiff's gradient of sum(f(vals)) against a central difference.

    Every input becomes a fresh leaf that requires a gradient, `backward` runs once,
    then one random element of each input's gradient (seeded, so repeatable) is
    compared with `grad_central_difference`.
    """
    for x in vals:
        x.requires_grad_(True)
        x.zero_grad_()
    random.seed(10)
    out = f(*vals)
    out.sum().backward()
    err_msg = """

Gradient check error for function %s.

Input %s

Received derivative %f for argument %d and index %s,
but was expecting derivative %f from central difference.

"""

    for i, x in enumerate(vals):
        ind = x._tensor.sample()
        check = grad_central_difference(f, *vals, arg=i, ind=ind)
        assert x.grad is not None
        np.testing.assert_allclose(
            x.grad[ind],
            check,
            1e-2,
            1e-2,
            err_msg=err_msg % (f, vals, x.grad[ind], i, ind, check),
        )
