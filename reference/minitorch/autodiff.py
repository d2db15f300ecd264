"""Numerical derivatives (task 1.1) and backpropagation over a graph (task 1.4).

Nothing here knows about Scalars: the functions work on anything that follows the
`Variable` protocol, so module 2 reuses them for tensors unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Context", "Variable", "backpropagate", "central_difference", "topological_sort"]


def central_difference(
    f: Callable[..., float], *vals: float, arg: int = 0, epsilon: float = 1e-6
) -> float:
    """Estimate the partial derivative of `f` along one argument numerically.

    Uses the central difference (f(..., x + epsilon, ...) - f(..., x - epsilon, ...)) / (2 epsilon),
    which is more accurate than the one-sided difference and is how we check every
    derivative the autodiff computes.

    Args:
        f: a function of n floats returning a float.
        *vals: the n floats at which to differentiate.
        arg: the index of the argument to differentiate along.
        epsilon: the step.

    Returns:
        The estimate of df/dx_arg at `vals`.
    """
    # BEGIN SOLUTION task=1.1
    up = list(vals)
    down = list(vals)
    up[arg] += epsilon
    down[arg] -= epsilon
    return (f(*up) - f(*down)) / (2.0 * epsilon)
    # END SOLUTION


class Variable(Protocol):
    """What autodiff needs from a node of the computation graph."""

    @property
    def unique_id(self) -> int:
        """An int that identifies this variable (stable for its lifetime)."""
        ...

    def is_leaf(self) -> bool:
        """True for a variable created by the user rather than by a function."""
        ...

    def is_constant(self) -> bool:
        """True for a variable that takes no part in differentiation."""
        ...

    @property
    def parents(self) -> Iterable[Variable]:
        """The inputs of the function that produced this variable."""
        ...

    def chain_rule(self, d_output: Any) -> Iterable[tuple[Variable, Any]]:
        """Given d(out)/d(self), return (input, d(out)/d(input)) for each input."""
        ...

    def accumulate_derivative(self, x: Any) -> None:
        """Add `x` to the derivative stored on this leaf."""
        ...


def topological_sort(variable: Variable) -> list[Variable]:
    """Order the graph that ends in `variable` for backpropagation.

    Args:
        variable: the output of the graph.

    Returns:
        Every non-constant variable reachable from `variable` through `parents`, each
        once, with `variable` first and every variable before all of its parents.
        Visit parents in their input order so the result is deterministic, and
        recognise a variable seen before by its `unique_id`.
    """
    # BEGIN SOLUTION task=1.4
    order: list[Variable] = []
    visited: set[int] = set()

    def visit(var: Variable) -> None:
        # Depth first: a variable is appended only after all of its parents, so the
        # reversed list puts every variable before its parents.
        if var.unique_id in visited or var.is_constant():
            return
        visited.add(var.unique_id)
        for parent in var.parents:
            visit(parent)
        order.append(var)

    visit(variable)
    order.reverse()
    return order
    # END SOLUTION


def backpropagate(variable: Variable, deriv: Any) -> None:
    """Run the chain rule from `variable` back to the leaves.

    Args:
        variable: the output of the graph.
        deriv: the derivative of the final result with respect to `variable` (the
            seed; `Scalar.backward()` passes 1.0).

    Returns:
        None. Each leaf receives its derivative through `accumulate_derivative`; a
        variable used several times receives the sum of its contributions.
    """
    # BEGIN SOLUTION task=1.4
    # Phase 1: topological order, so a variable's derivative is complete (every use of
    # it has contributed) before we pass it on to its inputs.
    order = topological_sort(variable)

    # Phase 2: the chain rule, from the output towards the leaves. Derivatives are
    # summed per unique_id, which makes a reused variable (x * x) come out right.
    derivatives: dict[int, Any] = {variable.unique_id: deriv}
    for var in order:
        d_output = derivatives.pop(var.unique_id)
        if var.is_leaf():
            var.accumulate_derivative(d_output)
            continue
        for parent, d_parent in var.chain_rule(d_output):
            if parent.is_constant():
                continue
            if parent.unique_id in derivatives:
                derivatives[parent.unique_id] = derivatives[parent.unique_id] + d_parent
            else:
                derivatives[parent.unique_id] = d_parent
    # END SOLUTION


@dataclass
class Context:
    """What a function's forward pass leaves for its backward pass.

    Attributes:
        no_grad: True when no input needs a derivative; nothing is saved then.
        saved_values: the values given to `save_for_backward`.
    """

    no_grad: bool = False
    saved_values: tuple[Any, ...] = ()

    def save_for_backward(self, *values: Any) -> None:
        """Keep `values` for the backward pass (unless no_grad)."""
        if self.no_grad:
            return
        self.saved_values = values

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        """The saved values (the name module 2 uses for tensors)."""
        return self.saved_values
