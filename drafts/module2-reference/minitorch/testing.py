"""Catalogues of small test functions, for the course's project scripts (provided).

`MathTest` writes each function on plain floats with the operators of module 0;
`MathTestVariable` writes the same functions with the methods of Scalar (and, later, of
tensors). A function whose name ends in "2" takes two arguments, one ending in "red"
reduces a list, every other one takes one argument. The grader's own tests do not use
this file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from . import operators

__all__ = ["MathTest", "MathTestVariable"]

Entry = tuple[str, Callable[..., Any]]


class MathTest:
    """One- and two-argument functions on floats, built from `operators`."""

    @staticmethod
    def neg(a: Any) -> Any:
        """Flip the sign."""
        return -a

    @staticmethod
    def addConstant(a: Any) -> Any:
        """Add five, with the number on the left."""
        return 5.0 + a

    @staticmethod
    def square(a: Any) -> Any:
        """Multiply the argument by itself."""
        return a * a

    @staticmethod
    def cube(a: Any) -> Any:
        """Three factors of the argument."""
        return a * a * a

    @staticmethod
    def subConstant(a: Any) -> Any:
        """Take five away."""
        return a - 5.0

    @staticmethod
    def multConstant(a: Any) -> Any:
        """Scale by five, with the number on the left."""
        return 5.0 * a

    @staticmethod
    def div(a: Any) -> Any:
        """Divide by five."""
        return a / 5.0

    @staticmethod
    def inv(a: Any) -> Any:
        """One over the argument, shifted away from zero."""
        return operators.inv(a + 3.5)

    @staticmethod
    def sig(a: Any) -> Any:
        """The logistic function."""
        return operators.sigmoid(a)

    @staticmethod
    def log(a: Any) -> Any:
        """Logarithm, shifted far from zero."""
        return operators.log(a + 100000.0)

    @staticmethod
    def relu(a: Any) -> Any:
        """ReLU, shifted so the kink is away from the usual inputs."""
        return operators.relu(a + 5.5)

    @staticmethod
    def exp(a: Any) -> Any:
        """Exponential, shifted down so it stays small."""
        return operators.exp(a - 200.0)

    @staticmethod
    def explog(a: Any) -> Any:
        """The shifted log plus the shifted exponential."""
        return operators.log(a + 100000.0) + operators.exp(a - 200.0)

    @staticmethod
    def add2(a: Any, b: Any) -> Any:
        """Sum of the two arguments."""
        return a + b

    @staticmethod
    def mul2(a: Any, b: Any) -> Any:
        """Product of the two arguments."""
        return a * b

    @staticmethod
    def div2(a: Any, b: Any) -> Any:
        """First argument over the (shifted) second one."""
        return a / (b + 5.5)

    @staticmethod
    def gt2(a: Any, b: Any) -> Any:
        """1.0 when a + 1.2 is above b."""
        return operators.lt(b, a + 1.2)

    @staticmethod
    def lt2(a: Any, b: Any) -> Any:
        """1.0 when a + 1.2 is below b."""
        return operators.lt(a + 1.2, b)

    @staticmethod
    def eq2(a: Any, b: Any) -> Any:
        """1.0 when a equals b + 5.5."""
        return operators.eq(a, b + 5.5)

    @staticmethod
    def sum_red(a: Sequence[Any]) -> Any:
        """Sum of a list."""
        return operators.sum(a)

    @staticmethod
    def mean_red(a: Sequence[Any]) -> Any:
        """Mean of a list."""
        return operators.sum(a) / float(len(a))

    @staticmethod
    def mean_full_red(a: Sequence[Any]) -> Any:
        """Mean of a list (the same as mean_red for lists)."""
        return operators.sum(a) / float(len(a))

    @staticmethod
    def complex(a: Any) -> Any:
        """A chain of several functions, to exercise composition."""
        inner = operators.relu(operators.relu(a * 10.0 + 7.0) * 6.0 + 5.0)
        return operators.log(operators.sigmoid(inner * 10.0)) / 50.0

    @classmethod
    def _tests(cls) -> tuple[list[Entry], list[Entry], list[Entry]]:
        """(one-argument, two-argument, reducing) functions as (name, function) pairs."""
        one: list[Entry] = []
        two: list[Entry] = []
        red: list[Entry] = []
        for name in sorted(vars(MathTest)):
            if name.startswith("_"):
                continue
            entry = (name, getattr(cls, name))
            if name.endswith("2"):
                two.append(entry)
            elif name.endswith("red"):
                red.append(entry)
            else:
                one.append(entry)
        return one, two, red

    @classmethod
    def _comp_testing(
        cls,
    ) -> tuple[list[tuple[str, Any, Any]], list[tuple[str, Any, Any]], list[tuple[str, Any, Any]]]:
        """(name, float version, this class's version) triples for each catalogue."""
        mine = cls._tests()
        plain = MathTest._tests()
        return tuple(  # type: ignore[return-value]
            [(name, base, own) for (name, own), (_, base) in zip(ours, floats, strict=True)]
            for ours, floats in zip(mine, plain, strict=True)
        )


class MathTestVariable(MathTest):
    """The same functions written with Scalar methods instead of `operators`."""

    @staticmethod
    def inv(a: Any) -> Any:
        return 1.0 / (a + 3.5)

    @staticmethod
    def sig(a: Any) -> Any:
        return a.sigmoid()

    @staticmethod
    def log(a: Any) -> Any:
        return (a + 100000.0).log()

    @staticmethod
    def relu(a: Any) -> Any:
        return (a + 5.5).relu()

    @staticmethod
    def exp(a: Any) -> Any:
        return (a - 200.0).exp()

    @staticmethod
    def explog(a: Any) -> Any:
        return (a + 100000.0).log() + (a - 200.0).exp()

    @staticmethod
    def sum_red(a: Any) -> Any:
        return a.sum(0)

    @staticmethod
    def mean_red(a: Any) -> Any:
        return a.mean(0)

    @staticmethod
    def mean_full_red(a: Any) -> Any:
        return a.mean()

    @staticmethod
    def eq2(a: Any, b: Any) -> Any:
        return a == (b + 5.5)

    @staticmethod
    def gt2(a: Any, b: Any) -> Any:
        return a + 1.2 > b

    @staticmethod
    def lt2(a: Any, b: Any) -> Any:
        return a + 1.2 < b

    @staticmethod
    def complex(a: Any) -> Any:
        return (((a * 10.0 + 7.0).relu() * 6.0 + 5.0).relu() * 10.0).sigmoid().log() / 50.0
