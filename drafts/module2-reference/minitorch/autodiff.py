"""Numerical derivatives (task 1.1) and backpropagation over a graph (task 1.4).

Nothing here knows about Scalars: the functions work on anything that follows the
`Variable` protocol, so later modules reuse them for tensors unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from typing_extensions import Protocol

# ## Task 1.1
# Derivatives estimated from function values alone.


def central_difference(f: Any, *vals: Any, arg: int = 0, epsilon: float = 1e-6) -> Any:
    r"""Estimate the partial derivative of `f` along one of its arguments.

    Moves argument number `arg` a little up and a little down, keeping the others
    fixed, and divides the change in `f` by the distance between the two points:
    $(f(\ldots, x + \epsilon, \ldots) - f(\ldots, x - \epsilon, \ldots)) / (2\epsilon)$.
    (Stepping $\epsilon / 2$ each way and dividing by $\epsilon$ is the same idea.)

    Args:
        f: a function of n arguments returning one value.
        *vals: the n values $x_0 \ldots x_{n-1}$ to differentiate at.
        arg: the index $i$ of the argument to differentiate along.
        epsilon: the size of the step.

    Returns:
        An estimate of $\partial f / \partial x_i$ at $x_0 \ldots x_{n-1}$.
    """
    # BEGIN SOLUTION task=1.1
    up = list(vals)
    down = list(vals)
    up[arg] += epsilon
    down[arg] -= epsilon
    return (f(*up) - f(*down)) / (2.0 * epsilon)
    # END SOLUTION


variable_count = 1


class Variable(Protocol):
    """What backpropagation needs from a node of the computation graph."""

    def accumulate_derivative(self, x: Any) -> None:
        """Add `x` to the derivative stored on this (leaf) variable."""
        ...

    @property
    def unique_id(self) -> int:
        """An int that tells this variable apart from every other one."""
        ...

    def is_leaf(self) -> bool:
        """True for a variable the user created, not one computed by a function."""
        ...

    def is_constant(self) -> bool:
        """True for a variable that takes no part in differentiation."""
        ...

    @property
    def parents(self) -> Iterable[Variable]:
        """The inputs of the function that computed this variable."""
        ...

    def chain_rule(self, d_output: Any) -> Iterable[tuple[Variable, Any]]:
        """Given d(out)/d(self), give (input, d(out)/d(input)) for each input."""
        ...


def topological_sort(variable: Variable) -> Iterable[Variable]:
    """Put the graph that ends in `variable` in an order fit for backpropagation.

    Args:
        variable: the last (right-most) variable of the graph.

    Returns:
        The non-constant variables reachable from `variable`, each once, starting
        with `variable` itself, every variable coming before all of its parents.
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
    """Run the chain rule from `variable` back to the leaves of its graph.

    Args:
        variable: the last (right-most) variable of the graph.
        deriv: the derivative of the final output with respect to `variable`.

    Nothing is returned: every leaf receives its derivative through
    `accumulate_derivative`.
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
    """What a function's forward pass leaves behind for its backward pass."""

    no_grad: bool = False
    saved_values: tuple[Any, ...] = ()

    def save_for_backward(self, *values: Any) -> None:
        """Keep `values` for the backward pass, unless no derivative is wanted."""
        if self.no_grad:
            return
        self.saved_values = values

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        """The saved values, under the name later modules use for tensors."""
        return self.saved_values
