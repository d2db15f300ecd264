"""Worker-side probes: small functions that drive the student's ``minitorch``.

This file runs inside the sandboxed worker, next to the student's package and nothing else
(standard library only). Each probe imports the student file it needs lazily, so a file that
does not import only fails the probes that use it. Probes take and return plain data (int,
float, bool, str, None, lists and dicts of them) and never judge anything: every comparison
happens on the trusted side (tests/support.py). Student values are returned as they are,
never converted with ``float()``; the protocol refuses anything that is not a plain type.

Graph descriptions shared with tests/support.py:

Variable graphs (stand-in Variables, for topological_sort / backpropagate in isolation):
    ["leaf"]                         a leaf variable
    ["const"]                        a constant variable (only in the one test of
                                     "non-constant Variables": template code never
                                     makes constants)
    ["node", [[j, w], [k, v], ...]]  a variable computed from nodes j, k, ...; its
                                     chain_rule(d) gives (node j, w * d), (node k, v * d), ...
The last node is the output.
"""

from __future__ import annotations

import importlib
from typing import Any


def _student(name: str) -> Any:
    """Import one file of the student's package (``operators``, ``scalar``, ...)."""
    return importlib.import_module(f"minitorch.{name}")


# --------------------------------------------------------------------------- 0.1 operators
def call_operator(name: str, *args: Any) -> Any:
    """``operators.<name>(*args)``."""
    return getattr(_student("operators"), name)(*args)


# --------------------------------------------------------------------------- 1.4 in isolation
class _History:
    def __init__(self, inputs: list[Any]) -> None:
        self.last_fn = "probe" if inputs else None
        self.ctx = None
        self.inputs = tuple(inputs)


class _ProbeVariable:
    """A stand-in graph node that follows the Variable protocol of autodiff.py.

    It behaves like a Scalar (``is_leaf``, ``is_constant``, ``parents``, ``chain_rule``,
    ``accumulate_derivative`` only for leaves), so topological_sort and backpropagate are
    tested without the student's scalar.py.
    """

    def __init__(self, index: int, parents: list[Any], weights: list[float], constant: bool):
        self.index = index
        self._parents = parents
        self._weights = weights
        self._constant = constant
        self.history = None if constant else _History(parents)
        self.derivative: Any = None
        self.name = f"v{index}"
        self.data = 0.0
        self.chain_rule_calls = 0

    @property
    def unique_id(self) -> int:
        return 1000 + self.index

    def is_leaf(self) -> bool:
        return not self._constant and not self._parents

    def is_constant(self) -> bool:
        return self._constant

    @property
    def parents(self) -> list[Any]:
        return list(self._parents)  # empty for leaves and constants, like a Scalar

    def chain_rule(self, d_output: Any) -> list[tuple[Any, Any]]:
        assert not self._constant, "chain_rule called on a constant"
        assert self._parents, "chain_rule called on a leaf"
        self.chain_rule_calls += 1
        return [(p, w * d_output) for p, w in zip(self._parents, self._weights, strict=False)]

    def accumulate_derivative(self, x: Any) -> None:
        assert self.is_leaf(), "accumulate_derivative called on a variable that is not a leaf"
        self.derivative = x if self.derivative is None else self.derivative + x


def _variable_graph(graph: list[list[Any]]) -> list[_ProbeVariable]:
    nodes: list[_ProbeVariable] = []
    for i, spec in enumerate(graph):
        if spec[0] == "node":
            parents = [nodes[j] for j, _ in spec[1]]
            weights = [w for _, w in spec[1]]
            nodes.append(_ProbeVariable(i, parents, weights, False))
        else:
            nodes.append(_ProbeVariable(i, [], [], spec[0] == "const"))
    return nodes


def _index_of(obj: Any, nodes: list[Any]) -> int:
    for i, node in enumerate(nodes):
        if obj is node:
            return i
    return -1


def _identities(nodes: list[Any]) -> dict[int, int]:
    """``id(node) -> first index`` of ``nodes``: identity lookups (never the student's
    ``__eq__``) in constant time, for graphs of hundreds of nodes."""
    found: dict[int, int] = {}
    for i, node in enumerate(nodes):
        found.setdefault(id(node), i)
    return found


def toposort_variables(graph: list[list[Any]]) -> list[int]:
    """``topological_sort(output)`` on a stand-in graph, as node indices (-1: unknown)."""
    autodiff = _student("autodiff")
    nodes = _variable_graph(graph)
    index = _identities(nodes)  # nodes keeps every id in it alive
    return [index.get(id(v), -1) for v in autodiff.topological_sort(nodes[-1])]


def backpropagate_variables(graph: list[list[Any]], deriv: float) -> list[Any]:
    """``backpropagate(output, deriv)`` on a stand-in graph: each node's derivative."""
    autodiff = _student("autodiff")
    nodes = _variable_graph(graph)
    autodiff.backpropagate(nodes[-1], deriv)
    return [n.derivative for n in nodes]


# --------------------------------------------------------------------------- 1.3 chain_rule
# Probe-side ScalarFunctions with known derivatives, so chain_rule is tested without the
# student's backward functions (task 1.4). Coefficients differ per input to expose order.
LINEAR_COEFFS = {"Lin1": [3.0], "Lin2": [2.0, -5.0], "Lin3": [2.0, -5.0, 0.5]}
_LINEAR_CACHE: dict[Any, dict[str, Any]] = {}


def _linear_functions() -> dict[str, Any]:
    functions = _student("scalar_functions")
    base = functions.ScalarFunction
    if base not in _LINEAR_CACHE:
        made = {}
        # Each function twice: its one-input backward returning a bare float (the template's
        # convention, which the given _backward wraps) and a 1-tuple ("...Tuple"), for the
        # students who make every backward return a tuple and call backward directly.
        for name, coeffs, as_tuple in [
            *((n, c, False) for n, c in LINEAR_COEFFS.items()),
            *((f"{n}Tuple", c, True) for n, c in LINEAR_COEFFS.items()),
        ]:

            def forward(ctx: Any, *xs: float, _c: list[float] = coeffs) -> float:
                # backward reads the coefficients back from ctx, so a chain_rule that does
                # not pass the node's own context (history.ctx) fails here, in task 1.3.
                ctx.save_for_backward(*_c)
                total = 0.0
                for c, x in zip(_c, xs, strict=False):
                    total += c * x
                return total

            def backward(ctx: Any, d: float, _tuple: bool = as_tuple) -> Any:
                grads = tuple(c * d for c in ctx.saved_values)
                return grads[0] if len(grads) == 1 and not _tuple else grads

            made[name] = type(
                name,
                (base,),
                {"forward": staticmethod(forward), "backward": staticmethod(backward)},
            )
        _LINEAR_CACHE.clear()
        _LINEAR_CACHE[base] = made
    return _LINEAR_CACHE[base]


def chain_rule_pairs(fn_name: str, values: list[float], d_output: float) -> dict[str, Any]:
    """``Fn.apply(*inputs).chain_rule(d_output)`` for a probe-side linear function.

    Inputs are leaf Scalars (template code never makes constant Scalars). Returns the
    pairs as [input index (-1: not one of the inputs), derivative].
    """
    scalar = _student("scalar")
    suffix = "Tuple" if len(values) == 1 and _backward_returns_sequences() else ""
    fn = _linear_functions()[f"{fn_name}{suffix}"]
    inputs = [scalar.Scalar(v) for v in values]
    found = list(_linear_node(fn, inputs).chain_rule(d_output))
    pairs = [[_index_of(var, inputs), d] for var, d in found]
    return {"pairs": pairs}


def _backward_returns_sequences() -> bool:
    """Whether the student's one-input backward functions return tuples (or lists).

    The template's given ``Log.backward`` returns a bare float, which the given ``_backward``
    wraps. Some students instead make every backward return a tuple or a list (rewriting the
    given Log to match) and call ``backward`` directly from chain_rule: consistent code, so
    the probe's one-input function follows the convention the student's Log follows. When
    Log.backward raises (its own mistake, or a module-0 helper left unwritten: task 1.4's and
    0.1's business, not chain_rule's), the template's convention stands: a bare float.
    """
    ctx = _student("autodiff").Context(False)
    ctx.save_for_backward(2.0)
    log = _student("scalar_functions").Log
    try:
        returned = log.backward(ctx, 1.0)
    except Exception:  # noqa: BLE001 - student code may raise anything
        return False
    return isinstance(returned, (tuple, list))


def _linear_node(fn: Any, inputs: list[Any]) -> Any:
    """The Scalar ``fn.apply(*inputs)`` would return, built here from the contract's parts.

    ``ScalarFunction.apply`` is course code a student may have edited; building the history
    here keeps a broken ``apply`` (task 1.2's forward tests catch it) out of task 1.3.
    """
    scalar = _student("scalar")
    ctx = _student("autodiff").Context(False)
    value = fn.forward(ctx, *(float(x.data) for x in inputs))
    return scalar.Scalar(value, scalar.ScalarHistory(fn, ctx, tuple(inputs)))


def chain_rule_twice(x: float, d_output: float) -> dict[str, Any]:
    """``Lin2.apply(x, x).chain_rule(d_output)`` with one leaf Scalar x used twice."""
    scalar = _student("scalar")
    leaf = scalar.Scalar(x)
    out = _linear_node(_linear_functions()["Lin2"], [leaf, leaf])
    return {"pairs": [[_index_of(v, [leaf]), d] for v, d in out.chain_rule(d_output)]}
