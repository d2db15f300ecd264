"""Optimizers: update a network's parameters from their derivatives (provided)."""

from __future__ import annotations

from collections.abc import Iterable

from .module import Parameter
from .scalar import Scalar

__all__ = ["Optimizer", "SGD"]


class Optimizer:
    """Holds the parameters that an optimizer updates.

    Attributes:
        parameters: the Parameters, typically `model.parameters()`.
    """

    def __init__(self, parameters: Iterable[Parameter]) -> None:
        self.parameters = list(parameters)


class SGD(Optimizer):
    """Plain stochastic gradient descent: value <- value - lr * derivative.

    Attributes:
        lr: the learning rate.
    """

    def __init__(self, parameters: Iterable[Parameter], lr: float = 1.0) -> None:
        super().__init__(parameters)
        self.lr = lr

    def zero_grad(self) -> None:
        """Forget the derivatives of the last backward passes (set them to None)."""
        for p in self.parameters:
            if isinstance(p.value, Scalar):
                p.value.derivative = None

    def step(self) -> None:
        """Move every parameter that has a derivative one step downhill.

        The value is replaced by a new leaf Scalar rather than edited in place, so the
        graphs built in the last forward passes are left untouched.
        """
        for p in self.parameters:
            if isinstance(p.value, Scalar) and p.value.derivative is not None:
                p.update(Scalar(p.value.data - self.lr * p.value.derivative))
