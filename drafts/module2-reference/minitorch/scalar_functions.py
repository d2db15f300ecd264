"""The differentiable functions of Scalars: forward (task 1.2) and backward (task 1.4).

Each function is a small class with a static `forward` on plain numbers and a static
`backward` that turns d(out)/d(result) into one derivative per input. `apply` does the
bookkeeping: it hands the raw numbers to `forward` and records the call in the history of
the Scalar it returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import minitorch

from . import operators
from .autodiff import Context

if TYPE_CHECKING:
    from typing import Any

    from .scalar import Scalar, ScalarLike


def wrap_tuple(x: Any) -> tuple[Any, ...]:
    """Give `x` back as a tuple: a tuple unchanged, anything else as `(x,)`."""
    if isinstance(x, tuple):
        return x
    return (x,)


def unwrap_tuple(x: tuple[Any, ...]) -> Any:
    """Give the only element of a 1-tuple, or the tuple itself when it is longer."""
    if len(x) == 1:
        return x[0]
    return x


class ScalarFunction:
    """Base of the functions below; only ever used through its class methods.

    A subclass defines `forward(ctx, *inputs) -> float` and
    `backward(ctx, d_output) -> float | tuple[float, ...]` (one number per input).
    """

    @classmethod
    def _backward(cls, ctx: Context, d_out: float) -> tuple[float, ...]:
        # A one-input function may return a bare number; callers always get a tuple.
        return wrap_tuple(cls.backward(ctx, d_out))  # type: ignore[attr-defined]

    @classmethod
    def _forward(cls, ctx: Context, *inps: float) -> float:
        return cls.forward(ctx, *inps)  # type: ignore[attr-defined]

    @classmethod
    def apply(cls, *vals: ScalarLike) -> Scalar:
        """Run the function on Scalars or plain numbers and record how the result was made."""
        raw_vals = []
        scalars = []
        for v in vals:
            if isinstance(v, minitorch.scalar.Scalar):
                scalars.append(v)
                raw_vals.append(v.data)
            else:
                # A plain number takes part as a fresh leaf; forward sees it unchanged.
                scalars.append(minitorch.scalar.Scalar(v))
                raw_vals.append(v)

        ctx = Context(False)
        c = cls._forward(ctx, *raw_vals)
        assert isinstance(c, float), f"forward must return a float, not {type(c)}"

        back = minitorch.scalar.ScalarHistory(cls, ctx, scalars)
        return minitorch.scalar.Scalar(c, back)


# Two functions written out as examples.
class Add(ScalarFunction):
    """f(a, b) = a + b"""

    @staticmethod
    def forward(ctx: Context, a: float, b: float) -> float:
        return a + b

    @staticmethod
    def backward(ctx: Context, d_output: float) -> tuple[float, ...]:
        return d_output, d_output


class Log(ScalarFunction):
    """f(a) = log(a)"""

    @staticmethod
    def forward(ctx: Context, a: float) -> float:
        ctx.save_for_backward(a)
        return operators.log(a)

    @staticmethod
    def backward(ctx: Context, d_output: float) -> float:
        (a,) = ctx.saved_values
        return operators.log_back(a, d_output)


# The ones to write.


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
