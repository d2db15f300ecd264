"""The differentiable functions of Scalars: forward (task 1.2) and backward (task 1.4).

Each function is a small class with a static `forward` on floats and a static `backward`
that returns the local derivatives times `d_output`, side by side so they can be checked
against each other. `ScalarFunction.apply` does the bookkeeping: it unwraps Scalars to
floats, calls `forward`, and records the call in the result's history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import operators
from .autodiff import Context

if TYPE_CHECKING:
    from .scalar import Scalar

__all__ = [
    "ScalarFunction",
    "Add",
    "Log",
    "Mul",
    "Inv",
    "Neg",
    "Sigmoid",
    "ReLU",
    "Exp",
    "LT",
    "EQ",
    "wrap_tuple",
    "unwrap_tuple",
]


def wrap_tuple(x: Any) -> tuple[Any, ...]:
    """Return `x` if it is a tuple, else the 1-tuple `(x,)`."""
    if isinstance(x, tuple):
        return x
    return (x,)


def unwrap_tuple(x: tuple[Any, ...]) -> Any:
    """Return the only element of a 1-tuple, else the tuple itself."""
    if len(x) == 1:
        return x[0]
    return x


class ScalarFunction:
    """Base class of the functions below: connects `forward`/`backward` to Scalars.

    Subclasses define `forward(ctx, *floats) -> float` and
    `backward(ctx, d_output) -> float | tuple[float, ...]` (one float per input).
    """

    @classmethod
    def _forward(cls, ctx: Context, *inps: float) -> float:
        return cls.forward(ctx, *inps)

    @classmethod
    def _backward(cls, ctx: Context, d_out: float) -> tuple[float, ...]:
        # One-input functions return a bare float; callers always get a tuple.
        return wrap_tuple(cls.backward(ctx, d_out))

    @classmethod
    def apply(cls, *vals: float | Scalar) -> Scalar:
        """Apply the function to Scalars or numbers and record it for backpropagation."""
        # Imported here because scalar.py imports this module.
        from .scalar import Scalar, ScalarHistory

        # Numbers become leaf Scalars. Scalar() stores float(v), so `forward` always sees
        # Python floats, even for `x + 1`.
        scalars = tuple(v if isinstance(v, Scalar) else Scalar(v) for v in vals)
        need_grad = any(not s.is_constant() for s in scalars)
        ctx = Context(no_grad=not need_grad)
        out = cls._forward(ctx, *(s.data for s in scalars))
        # Without an input to differentiate, the result is a constant (no history).
        history = ScalarHistory(cls, ctx, scalars) if need_grad else None
        return Scalar(out, history)


class Add(ScalarFunction):
    """f(a, b) = a + b"""

    @staticmethod
    def forward(ctx: Context, a: float, b: float) -> float:
        """Return a + b."""
        # BEGIN SOLUTION task=1.2
        return operators.add(a, b)
        # END SOLUTION

    @staticmethod
    def backward(ctx: Context, d_output: float) -> tuple[float, float]:
        """Return (df/da, df/db) times d_output."""
        # BEGIN SOLUTION task=1.4
        return d_output, d_output
        # END SOLUTION


class Log(ScalarFunction):
    """f(a) = log(a)"""

    @staticmethod
    def forward(ctx: Context, a: float) -> float:
        """Return log(a); save what `backward` needs with `ctx.save_for_backward`."""
        # BEGIN SOLUTION task=1.2
        ctx.save_for_backward(a)
        return operators.log(a)
        # END SOLUTION

    @staticmethod
    def backward(ctx: Context, d_output: float) -> float:
        """Return df/da times d_output, from the values saved in `ctx.saved_values`."""
        # BEGIN SOLUTION task=1.4
        (a,) = ctx.saved_values
        return operators.log_back(a, d_output)
        # END SOLUTION


class Mul(ScalarFunction):
    """f(a, b) = a * b"""

    @staticmethod
    def forward(ctx: Context, a: float, b: float) -> float:
        """Return a * b; save what `backward` needs with `ctx.save_for_backward`."""
        # BEGIN SOLUTION task=1.2
        ctx.save_for_backward(a, b)
        return operators.mul(a, b)
        # END SOLUTION

    @staticmethod
    def backward(ctx: Context, d_output: float) -> tuple[float, float]:
        """Return (df/da, df/db) times d_output, from `ctx.saved_values`."""
        # BEGIN SOLUTION task=1.4
        a, b = ctx.saved_values
        return operators.mul(b, d_output), operators.mul(a, d_output)
        # END SOLUTION


class Inv(ScalarFunction):
    """f(a) = 1 / a"""

    @staticmethod
    def forward(ctx: Context, a: float) -> float:
        """Return 1 / a; save what `backward` needs with `ctx.save_for_backward`."""
        # BEGIN SOLUTION task=1.2
        ctx.save_for_backward(a)
        return operators.inv(a)
        # END SOLUTION

    @staticmethod
    def backward(ctx: Context, d_output: float) -> float:
        """Return df/da times d_output, from `ctx.saved_values`."""
        # BEGIN SOLUTION task=1.4
        (a,) = ctx.saved_values
        return operators.inv_back(a, d_output)
        # END SOLUTION


class Neg(ScalarFunction):
    """f(a) = -a"""

    @staticmethod
    def forward(ctx: Context, a: float) -> float:
        """Return -a."""
        # BEGIN SOLUTION task=1.2
        return operators.neg(a)
        # END SOLUTION

    @staticmethod
    def backward(ctx: Context, d_output: float) -> float:
        """Return df/da times d_output."""
        # BEGIN SOLUTION task=1.4
        return operators.neg(d_output)
        # END SOLUTION


class Sigmoid(ScalarFunction):
    """f(a) = 1 / (1 + e^-a)"""

    @staticmethod
    def forward(ctx: Context, a: float) -> float:
        """Return sigmoid(a); save what `backward` needs with `ctx.save_for_backward`."""
        # BEGIN SOLUTION task=1.2
        out = operators.sigmoid(a)
        ctx.save_for_backward(out)
        return out
        # END SOLUTION

    @staticmethod
    def backward(ctx: Context, d_output: float) -> float:
        """Return df/da times d_output. Hint: f'(a) = f(a) * (1 - f(a))."""
        # BEGIN SOLUTION task=1.4
        (out,) = ctx.saved_values
        return out * (1.0 - out) * d_output
        # END SOLUTION


class ReLU(ScalarFunction):
    """f(a) = a if a > 0 else 0"""

    @staticmethod
    def forward(ctx: Context, a: float) -> float:
        """Return relu(a); save what `backward` needs with `ctx.save_for_backward`."""
        # BEGIN SOLUTION task=1.2
        ctx.save_for_backward(a)
        return operators.relu(a)
        # END SOLUTION

    @staticmethod
    def backward(ctx: Context, d_output: float) -> float:
        """Return df/da times d_output (0 at a == 0 by convention)."""
        # BEGIN SOLUTION task=1.4
        (a,) = ctx.saved_values
        return operators.relu_back(a, d_output)
        # END SOLUTION


class Exp(ScalarFunction):
    """f(a) = e^a"""

    @staticmethod
    def forward(ctx: Context, a: float) -> float:
        """Return e^a; save what `backward` needs with `ctx.save_for_backward`."""
        # BEGIN SOLUTION task=1.2
        out = operators.exp(a)
        ctx.save_for_backward(out)
        return out
        # END SOLUTION

    @staticmethod
    def backward(ctx: Context, d_output: float) -> float:
        """Return df/da times d_output. Hint: f'(a) = f(a)."""
        # BEGIN SOLUTION task=1.4
        (out,) = ctx.saved_values
        return operators.mul(out, d_output)
        # END SOLUTION


class LT(ScalarFunction):
    """f(a, b) = 1.0 if a < b else 0.0"""

    @staticmethod
    def forward(ctx: Context, a: float, b: float) -> float:
        """Return 1.0 if a < b else 0.0."""
        # BEGIN SOLUTION task=1.2
        return operators.lt(a, b)
        # END SOLUTION

    @staticmethod
    def backward(ctx: Context, d_output: float) -> tuple[float, float]:
        """Return (df/da, df/db) times d_output: a step function is flat almost everywhere."""
        # BEGIN SOLUTION task=1.4
        return 0.0, 0.0
        # END SOLUTION


class EQ(ScalarFunction):
    """f(a, b) = 1.0 if a == b else 0.0"""

    @staticmethod
    def forward(ctx: Context, a: float, b: float) -> float:
        """Return 1.0 if a == b else 0.0."""
        # BEGIN SOLUTION task=1.2
        return operators.eq(a, b)
        # END SOLUTION

    @staticmethod
    def backward(ctx: Context, d_output: float) -> tuple[float, float]:
        """Return (df/da, df/db) times d_output: flat almost everywhere."""
        # BEGIN SOLUTION task=1.4
        return 0.0, 0.0
        # END SOLUTION
