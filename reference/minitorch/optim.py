"""Optimizers: update a network's parameters from their derivatives (provided).

Module 1 trains Scalar parameters (derivative in `.derivative`), module 2 trains Tensor
parameters (gradient in `.grad`). The optimizer handles both by looking at which of the
two attributes a parameter's value has, so this file imports neither Scalar nor Tensor:
a broken module-1 scalar.py cannot stop tensors from importing.
"""

from __future__ import annotations

from collections.abc import Iterable

from .module import Parameter

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
            if hasattr(p.value, "derivative"):
                p.value.derivative = None
            if hasattr(p.value, "grad"):
                p.value.grad = None

    def step(self) -> None:
        """Move every parameter that has a derivative one step downhill.

        The value is replaced by a new leaf rather than edited in place, so the graphs
        built in the last forward passes are left untouched. `Parameter.update` marks
        the new value as wanting a gradient.
        """
        for p in self.parameters:
            value = p.value
            if getattr(value, "derivative", None) is not None:
                p.update(type(value)(value.data - self.lr * value.derivative))
            elif getattr(value, "grad", None) is not None:
                p.update(value.detach() - value.grad * self.lr)
