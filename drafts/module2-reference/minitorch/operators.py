"""Plain float operators (task 0.1) and curried list helpers (task 0.3).

Everything here works on Python floats. The scalar autodiff of module 1 calls these
functions for its forward passes and local derivatives, so each one is small and exact.

`map`, `sum`, `max` and `id` shadow Python builtins: that is the MiniTorch API. This
module therefore never calls those builtins itself (it uses comprehensions and loops).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

__all__ = [
    "mul",
    "id",
    "add",
    "neg",
    "lt",
    "eq",
    "max",
    "is_close",
    "sigmoid",
    "relu",
    "log",
    "exp",
    "inv",
    "log_back",
    "inv_back",
    "relu_back",
    "map",
    "zipWith",
    "reduce",
    "negList",
    "addLists",
    "sum",
    "prod",
]


# ## Task 0.1: operators on floats


def mul(x: float, y: float) -> float:
    """Return x * y."""
    # BEGIN SOLUTION task=0.1
    return x * y
    # END SOLUTION


def id(x: float) -> float:
    """Return x unchanged (the identity function)."""
    # BEGIN SOLUTION task=0.1
    return x
    # END SOLUTION


def add(x: float, y: float) -> float:
    """Return x + y."""
    # BEGIN SOLUTION task=0.1
    return x + y
    # END SOLUTION


def neg(x: float) -> float:
    """Return -x."""
    # BEGIN SOLUTION task=0.1
    return -x
    # END SOLUTION


def lt(x: float, y: float) -> float:
    """Return 1.0 if x < y else 0.0.

    Comparisons return floats, not bools, so that they can be the forward value of a
    Scalar (module 1).
    """
    # BEGIN SOLUTION task=0.1
    return 1.0 if x < y else 0.0
    # END SOLUTION


def eq(x: float, y: float) -> float:
    """Return 1.0 if x == y else 0.0 (exact equality, not `is_close`)."""
    # BEGIN SOLUTION task=0.1
    return 1.0 if x == y else 0.0
    # END SOLUTION


def max(x: float, y: float) -> float:
    """Return the larger of x and y."""
    # BEGIN SOLUTION task=0.1
    return x if x > y else y
    # END SOLUTION


def is_close(x: float, y: float) -> bool:
    """Return True when |x - y| < 1e-2 (a loose check for hand-written tests)."""
    # BEGIN SOLUTION task=0.1
    return abs(x - y) < 1e-2
    # END SOLUTION


def sigmoid(x: float) -> float:
    """Return the logistic function 1 / (1 + e^-x).

    It must not overflow for any finite x. `math.exp(-x)` overflows for x < -709, so
    use two algebraically equal forms and pick the one whose exponent is <= 0:

        x >= 0:  1 / (1 + e^-x)
        x <  0:  e^x / (1 + e^x)
    """
    # BEGIN SOLUTION task=0.1
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)
    # END SOLUTION


def relu(x: float) -> float:
    """Return x if x > 0 else 0.0."""
    # BEGIN SOLUTION task=0.1
    return x if x > 0.0 else 0.0
    # END SOLUTION


def log(x: float) -> float:
    """Return the natural logarithm of x (defined for x > 0)."""
    # BEGIN SOLUTION task=0.1
    return math.log(x)
    # END SOLUTION


def exp(x: float) -> float:
    """Return e^x."""
    # BEGIN SOLUTION task=0.1
    return math.exp(x)
    # END SOLUTION


def inv(x: float) -> float:
    """Return 1 / x."""
    # BEGIN SOLUTION task=0.1
    return 1.0 / x
    # END SOLUTION


def log_back(x: float, d: float) -> float:
    """Return d times the derivative of log at x, that is d / x."""
    # BEGIN SOLUTION task=0.1
    return d / x
    # END SOLUTION


def inv_back(x: float, d: float) -> float:
    """Return d times the derivative of 1/x at x, that is -d / x**2."""
    # BEGIN SOLUTION task=0.1
    return -d / x**2
    # END SOLUTION


def relu_back(x: float, d: float) -> float:
    """Return d times the derivative of relu at x: d if x > 0 else 0.0."""
    # BEGIN SOLUTION task=0.1
    return d if x > 0.0 else 0.0
    # END SOLUTION


# ## Task 0.3: curried higher-order functions


def map(fn: Callable[[float], float]) -> Callable[[Iterable[float]], list[float]]:
    """Lift `fn` to lists.

    Args:
        fn: a function of one float.

    Returns:
        A function that takes an iterable `ls` and returns the list `[fn(x) for x in ls]`.
    """

    # BEGIN SOLUTION task=0.3
    def apply(ls: Iterable[float]) -> list[float]:
        return [fn(x) for x in ls]

    return apply
    # END SOLUTION


def zipWith(
    fn: Callable[[float, float], float],
) -> Callable[[Iterable[float], Iterable[float]], list[float]]:
    """Lift `fn` to pairs of lists.

    Args:
        fn: a function of two floats.

    Returns:
        A function that takes two iterables of equal length and returns the list
        `[fn(x, y) for each position]`.
    """

    # BEGIN SOLUTION task=0.3
    def apply(ls1: Iterable[float], ls2: Iterable[float]) -> list[float]:
        return [fn(x, y) for x, y in zip(ls1, ls2, strict=True)]

    return apply
    # END SOLUTION


def reduce(fn: Callable[[float, float], float], start: float) -> Callable[[Iterable[float]], float]:
    """Fold a list into one value with `fn`.

    Args:
        fn: a function of two floats, the accumulator and the next element.
        start: the value for an empty list, and the first accumulator.

    Returns:
        A function that takes an iterable [x1, ..., xn] and returns
        fn(...fn(fn(start, x1), x2)..., xn).
    """

    # BEGIN SOLUTION task=0.3
    def apply(ls: Iterable[float]) -> float:
        acc = start
        for x in ls:
            acc = fn(acc, x)
        return acc

    return apply
    # END SOLUTION


def negList(ls: Iterable[float]) -> list[float]:
    """Negate every element of `ls`, using `map` and `neg`."""
    # BEGIN SOLUTION task=0.3
    return map(neg)(ls)
    # END SOLUTION


def addLists(ls1: Iterable[float], ls2: Iterable[float]) -> list[float]:
    """Add two lists position by position, using `zipWith` and `add`."""
    # BEGIN SOLUTION task=0.3
    return zipWith(add)(ls1, ls2)
    # END SOLUTION


def sum(ls: Iterable[float]) -> float:
    """Return the sum of `ls` (0.0 when empty), using `reduce` and `add`."""
    # BEGIN SOLUTION task=0.3
    return reduce(add, 0.0)(ls)
    # END SOLUTION


def prod(ls: Iterable[float]) -> float:
    """Return the product of `ls` (1.0 when empty), using `reduce` and `mul`."""
    # BEGIN SOLUTION task=0.3
    return reduce(mul, 1.0)(ls)
    # END SOLUTION
