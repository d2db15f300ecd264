"""Scalar: a float that remembers how it was computed (tasks 1.2, 1.3, 1.4).

Every operator on a Scalar goes through a `ScalarFunction`, which computes the value and
records (function, ctx, inputs) in the result's `history`. `backward()` then walks those
records back to the leaves with the chain rule (see autodiff.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

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

__all__ = ["Scalar", "ScalarHistory", "derivative_check"]


@dataclass(frozen=True)
class ScalarHistory:
    """How a Scalar was made.

    Attributes:
        last_fn: the ScalarFunction that produced it (None for a leaf).
        ctx: the Context that function's forward filled in for its backward.
        inputs: the Scalars the function was applied to, in argument order.
    """

    last_fn: type[ScalarFunction] | None = None
    ctx: Context | None = None
    inputs: Sequence[Scalar] = ()


# Default history of a leaf. Frozen, so every leaf can share it safely.
_LEAF = ScalarHistory()

# Source of Scalar.unique_id: ids only grow, so no two Scalars ever share one.
_next_id = itertools.count(1)


class Scalar:
    """A float that takes part in automatic differentiation.

    Attributes:
        data: the value (always a Python float).
        history: how it was made; `ScalarHistory()` for a leaf, None for a constant.
        derivative: d(output)/d(self) after `backward()`; None until then (leaves only).
        unique_id: an int unique to this Scalar.
        name: a label for printing; defaults to str(unique_id).
    """

    def __init__(
        self, v: float, back: ScalarHistory | None = _LEAF, name: str | None = None
    ) -> None:
        self.data = float(v)
        self.history = back
        self.derivative: float | None = None
        self.unique_id = next(_next_id)
        self.name = name if name is not None else str(self.unique_id)

    def __repr__(self) -> str:
        return f"Scalar({self.data})"

    def __bool__(self) -> bool:
        return bool(self.data)

    # `__eq__` below builds a Scalar instead of comparing, which would make Scalars
    # unhashable; hash by identity so they still work as dict keys.
    def __hash__(self) -> int:
        return hash(self.unique_id)

    # ## Task 1.2: operators, each one node built by a ScalarFunction

    def __add__(self, b: float | Scalar) -> Scalar:
        """Return self + b (Add)."""
        # BEGIN SOLUTION task=1.2
        return Add.apply(self, b)
        # END SOLUTION

    def __sub__(self, b: float | Scalar) -> Scalar:
        """Return self - b, built from Add and Neg."""
        # BEGIN SOLUTION task=1.2
        return Add.apply(self, Neg.apply(b))
        # END SOLUTION

    def __mul__(self, b: float | Scalar) -> Scalar:
        """Return self * b (Mul)."""
        # BEGIN SOLUTION task=1.2
        return Mul.apply(self, b)
        # END SOLUTION

    def __truediv__(self, b: float | Scalar) -> Scalar:
        """Return self / b, built from Mul and Inv."""
        # BEGIN SOLUTION task=1.2
        return Mul.apply(self, Inv.apply(b))
        # END SOLUTION

    def __lt__(self, b: float | Scalar) -> Scalar:
        """Return self < b as a Scalar 1.0 or 0.0 (LT)."""
        # BEGIN SOLUTION task=1.2
        return LT.apply(self, b)
        # END SOLUTION

    def __gt__(self, b: float | Scalar) -> Scalar:
        """Return self > b as a Scalar 1.0 or 0.0 (LT with the arguments swapped)."""
        # BEGIN SOLUTION task=1.2
        return LT.apply(b, self)
        # END SOLUTION

    def __eq__(self, b: float | Scalar) -> Scalar:  # type: ignore[override]
        """Return self == b as a Scalar 1.0 or 0.0 (EQ)."""
        # BEGIN SOLUTION task=1.2
        return EQ.apply(self, b)
        # END SOLUTION

    def __neg__(self) -> Scalar:
        """Return -self (Neg)."""
        # BEGIN SOLUTION task=1.2
        return Neg.apply(self)
        # END SOLUTION

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

    # Reflected operators: Python calls these for `2 + x`, `2 - x`, ... when the left
    # operand is a number. `1 < x` needs nothing here: Python tries `x > 1`.
    def __radd__(self, b: float) -> Scalar:
        return Scalar(b) + self

    def __rsub__(self, b: float) -> Scalar:
        return Scalar(b) - self

    def __rmul__(self, b: float) -> Scalar:
        return Scalar(b) * self

    def __rtruediv__(self, b: float) -> Scalar:
        return Scalar(b) / self

    # ## The Variable protocol (autodiff.py)

    def accumulate_derivative(self, x: Any) -> None:
        """Add `x` to this leaf's derivative (called by backpropagate)."""
        if not self.is_leaf():
            raise ValueError(
                f"accumulate_derivative is for leaves only; {self!r} was made by a function"
            )
        if self.derivative is None:
            self.derivative = 0.0
        self.derivative += x

    def is_leaf(self) -> bool:
        """True if the user created this Scalar (it has a history but no function)."""
        return self.history is not None and self.history.last_fn is None

    def is_constant(self) -> bool:
        """True if this Scalar takes no part in differentiation (no history)."""
        return self.history is None

    @property
    def parents(self) -> Iterable[Variable]:
        """The inputs of the function that made this Scalar (empty for a leaf)."""
        if self.history is None:
            return ()
        return self.history.inputs

    def chain_rule(self, d_output: Any) -> Iterable[tuple[Variable, Any]]:
        """Pass d(output)/d(self) on to the inputs of the function that made self.

        Call the backward of `history.last_fn` (through `_backward`, which always gives
        a tuple) with `history.ctx` and `d_output`.

        Args:
            d_output: the derivative of the final output with respect to self.

        Returns:
            A list of (input, derivative of the final output with respect to that input),
            one pair for each input that is not a constant.
        """
        # BEGIN SOLUTION task=1.3
        history = self.history
        if history is None or history.last_fn is None or history.ctx is None:
            raise ValueError(f"chain_rule needs a Scalar made by a function, not {self!r}")
        local = history.last_fn._backward(history.ctx, d_output)
        return [
            (scalar, d)
            for scalar, d in zip(history.inputs, local, strict=True)
            if not scalar.is_constant()
        ]
        # END SOLUTION

    def backward(self, d_output: float | None = None) -> None:
        """Compute the derivative of self with respect to every leaf it depends on.

        Args:
            d_output: the seed derivative; None means 1.0 (self is the final output).
        """
        if d_output is None:
            d_output = 1.0
        backpropagate(self, d_output)


def derivative_check(f: Callable[..., Scalar], *scalars: Scalar) -> None:
    """Check autodiff against central differences, for debugging your functions.

    Runs `f(*scalars).backward()`, then compares each scalar's `derivative` with the
    central difference of `f` at the same point. Pass fresh leaves: derivatives add up
    across `backward()` calls.

    Args:
        f: a function of Scalars returning a Scalar, e.g. `lambda x, y: x * y.log()`.
        *scalars: the leaves to evaluate and differentiate `f` at.

    Raises:
        AssertionError: when a derivative differs by more than 1e-2 (absolute) plus
            1e-2 relative to the central difference; the message names the argument.
    """
    out = f(*scalars)
    out.backward()
    point = [s.data for s in scalars]

    def f_on_floats(*xs: float) -> float:
        return f(*(Scalar(x) for x in xs)).data

    for i, scalar in enumerate(scalars):
        expected = central_difference(f_on_floats, *point, arg=i)
        # A leaf that `out` does not depend on never receives a derivative: that is 0.
        got = 0.0 if scalar.derivative is None else scalar.derivative
        if abs(got - expected) > 1e-2 + 1e-2 * abs(expected):
            raise AssertionError(
                f"derivative check failed for argument {i} at {point}: "
                f"backward() gave {scalar.derivative}, central difference gives {expected:.6g}"
            )
