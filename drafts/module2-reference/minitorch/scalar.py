"""Scalar: a number that remembers how it was computed (tasks 1.2, 1.3 and 1.4).

Every operation on a Scalar goes through a `ScalarFunction`, which computes the value and
records (function, context, inputs) in the history of the result. `backward()` then walks
those records back to the leaves with the chain rule (see autodiff.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from .autodiff import Context, Variable, backpropagate, central_difference
from .scalar_functions import (
    EQ,
    LT,
    Add,
    Exp,
    Inv,
    Log,
    Mul,
    Neg,
    ReLU,
    ScalarFunction,
    Sigmoid,
)

ScalarLike = Union[float, int, "Scalar"]


@dataclass
class ScalarHistory:
    """How a Scalar came to be.

    Attributes:
        last_fn: the function that computed it (None for a Scalar the user made).
        ctx: the context that function's forward pass filled in.
        inputs: the Scalars that function was applied to, in argument order.
    """

    last_fn: type[ScalarFunction] | None = None
    ctx: Context | None = None
    inputs: Sequence[Scalar] = ()


# ## Task 1.2 and 1.4
# The operators of Scalar, forward and backward.

_var_count = 0


class Scalar:
    """A number that takes part in automatic differentiation.

    It behaves much like a Python float, but every operation builds a new Scalar
    through a `ScalarFunction`, so the chain of operations can be run backwards.
    """

    history: ScalarHistory | None
    derivative: float | None
    data: float
    unique_id: int
    name: str

    def __init__(
        self,
        v: float,
        back: ScalarHistory = ScalarHistory(),  # noqa: B008
        name: str | None = None,
    ) -> None:
        global _var_count
        _var_count += 1
        self.unique_id = _var_count
        self.data = float(v)
        self.history = back
        self.derivative = None
        if name is not None:
            self.name = name
        else:
            self.name = str(self.unique_id)

    def __repr__(self) -> str:
        return f"Scalar({self.data:f})"

    def __mul__(self, b: ScalarLike) -> Scalar:
        return Mul.apply(self, b)

    def __truediv__(self, b: ScalarLike) -> Scalar:
        return Mul.apply(self, Inv.apply(b))

    def __rtruediv__(self, b: ScalarLike) -> Scalar:
        return Mul.apply(b, Inv.apply(self))

    def __add__(self, b: ScalarLike) -> Scalar:
        """Return self + b (Add)."""
        # BEGIN SOLUTION task=1.2
        return Add.apply(self, b)
        # END SOLUTION

    def __bool__(self) -> bool:
        return bool(self.data)

    def __lt__(self, b: ScalarLike) -> Scalar:
        """Return self < b as a Scalar 1.0 or 0.0 (LT)."""
        # BEGIN SOLUTION task=1.2
        return LT.apply(self, b)
        # END SOLUTION

    def __gt__(self, b: ScalarLike) -> Scalar:
        """Return self > b as a Scalar 1.0 or 0.0 (LT with the arguments swapped)."""
        # BEGIN SOLUTION task=1.2
        return LT.apply(b, self)
        # END SOLUTION

    def __eq__(self, b: ScalarLike) -> Scalar:  # type: ignore[override]
        """Return self == b as a Scalar 1.0 or 0.0 (EQ)."""
        # BEGIN SOLUTION task=1.2
        return EQ.apply(self, b)
        # END SOLUTION

    def __sub__(self, b: ScalarLike) -> Scalar:
        """Return self - b, built from Add and Neg."""
        # BEGIN SOLUTION task=1.2
        return Add.apply(self, Neg.apply(b))
        # END SOLUTION

    def __neg__(self) -> Scalar:
        """Return -self (Neg)."""
        # BEGIN SOLUTION task=1.2
        return Neg.apply(self)
        # END SOLUTION

    def __radd__(self, b: ScalarLike) -> Scalar:
        return self + b

    def __rmul__(self, b: ScalarLike) -> Scalar:
        return self * b

    def log(self) -> Scalar:
        """Return the natural log of self (Log)."""
        # BEGIN SOLUTION task=1.2
        return Log.apply(self)
        # END SOLUTION

    def exp(self) -> Scalar:
        """Return e ** self (Exp)."""
        # BEGIN SOLUTION task=1.2
        return Exp.apply(self)
        # END SOLUTION

    def sigmoid(self) -> Scalar:
        """Return sigmoid(self) (Sigmoid)."""
        # BEGIN SOLUTION task=1.2
        return Sigmoid.apply(self)
        # END SOLUTION

    def relu(self) -> Scalar:
        """Return relu(self) (ReLU)."""
        # BEGIN SOLUTION task=1.2
        return ReLU.apply(self)
        # END SOLUTION

    # The Variable protocol, for backpropagation.

    def accumulate_derivative(self, x: Any) -> None:
        """Add `x` to the derivative collected on this Scalar.

        Only backpropagation calls it, and only on leaves.

        Args:
            x: the amount to add.
        """
        assert self.is_leaf(), "only a leaf Scalar collects a derivative"
        if self.derivative is None:
            self.derivative = 0.0
        self.derivative += x

    def is_leaf(self) -> bool:
        """True if the user made this Scalar (it has a history without `last_fn`)."""
        return self.history is not None and self.history.last_fn is None

    def is_constant(self) -> bool:
        """True if this Scalar has no history at all."""
        return self.history is None

    @property
    def parents(self) -> Iterable[Variable]:
        """The inputs of the function that computed this Scalar."""
        assert self.history is not None
        return self.history.inputs

    def chain_rule(self, d_output: Any) -> Iterable[tuple[Variable, Any]]:
        """Hand d(out)/d(self) on to the inputs of the function that made self.

        Args:
            d_output: the derivative of the final output with respect to self.

        Returns:
            (input, derivative of the final output with respect to that input) for the
            inputs of `history.last_fn`, from its `_backward` with `history.ctx`.
        """
        history = self.history
        assert history is not None
        assert history.last_fn is not None
        assert history.ctx is not None

        # BEGIN SOLUTION task=1.3
        local = history.last_fn._backward(history.ctx, d_output)
        return [
            (scalar, d)
            for scalar, d in zip(history.inputs, local, strict=True)
            if not scalar.is_constant()
        ]
        # END SOLUTION

    def backward(self, d_output: float | None = None) -> None:
        """Fill in the derivatives of the leaves this Scalar was computed from.

        Args:
            d_output: the derivative to start from; left out, it is 1.0.
        """
        if d_output is None:
            d_output = 1.0
        backpropagate(self, d_output)


def derivative_check(f: Any, *scalars: Scalar) -> None:
    """Compare autodiff with central differences on a function of Scalars.

    Fails an assertion when a derivative from `backward()` is off.

    Args:
        f: a function of n Scalars returning one Scalar.
        *scalars: the n Scalars to evaluate and differentiate `f` at.
    """
    out = f(*scalars)
    out.backward()

    message = (
        "derivative check for f(%s): backward() gave f'=%f for argument %d, "
        "but the central difference gives f'=%f"
    )
    for i, x in enumerate(scalars):
        check = central_difference(f, *scalars, arg=i)
        print(str([x.data for x in scalars]), x.derivative, i, check)
        assert x.derivative is not None
        np.testing.assert_allclose(
            x.derivative,
            check.data,
            1e-2,
            1e-2,
            err_msg=message % (str([x.data for x in scalars]), x.derivative, i, check.data),
        )
