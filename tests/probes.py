"""Worker-side probes: small functions that drive the student's ``minitorch``.

This file runs inside the sandboxed worker, next to the student's package and nothing else
(standard library only). Each probe imports the student file it needs lazily, so a file that
does not import only fails the probes that use it. Probes take and return plain data (int,
float, bool, str, None, lists and dicts of them) and never judge anything: every comparison
happens on the trusted side (tests/support.py). Student values are returned as they are,
never converted with ``float()``; the protocol refuses anything that is not a plain type.

Graph descriptions shared with tests/support.py:

Expression graphs (real Scalars), a list of nodes; a node refers to earlier nodes by index:
    ["var", i]          the i-th input value, as a leaf ``Scalar``
    ["num", c]          the Python float c beside a Scalar (``x + 1.5``, ``2.0 * x``); the
                        template's ``apply`` passes it to ``forward`` as it is and records
                        it as a leaf ``Scalar(c)``
    [op, j]             op in UNARY: ``-a``, ``a.log()``, ``a.exp()``, ``a.sigmoid()``, ``a.relu()``
    [op, j, k]          op in BINARY: ``a + b``, ``a - b``, ``a * b``, ``a / b``, ``a < b``,
                        ``a > b``, ``a == b``
The last node is the output.

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

UNARY = ("neg", "log", "exp", "sigmoid", "relu")
BINARY = ("add", "sub", "mul", "div", "lt", "gt", "eq")


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


# --------------------------------------------------------------------------- 1.2-1.4 Scalars
def _forward_failure(exc: Exception) -> dict[str, Any]:
    """Forward passes of 1.4 probes run on inputs inside every op's domain, so an exception
    there is a forward (task 1.2) mistake: report it as data, the trusted side decides."""
    return {"forward_error": f"{type(exc).__name__}: {exc}"}


def _function(fn_name: str) -> Any:
    return getattr(_student("scalar_functions"), fn_name)


def function_backward(
    fn_name: str, args: list[float], d_output: float, points: list[list[float]]
) -> dict[str, Any]:
    """``Fn.forward(ctx, *args)`` then ``Fn.backward(ctx, d_output)`` on one Context.

    Also the forward values at ``points`` (for central differences on the trusted side).
    """
    fn = _function(fn_name)
    context = _student("autodiff").Context
    ctx = context()
    try:
        out = fn.forward(ctx, *args)
        at_points = [fn.forward(context(), *p) for p in points]
    except Exception as exc:  # noqa: BLE001 - student code may raise anything
        return _forward_failure(exc)
    grads = fn.backward(ctx, d_output)
    if isinstance(grads, (tuple, list)):
        grads = list(grads)
    else:
        grads = [grads]
    return {
        "forward": out,
        "grads": grads,
        "points": at_points,
    }


def function_backward_many(fn_name: str, cases: list[list[Any]]) -> list[dict[str, Any]]:
    """``function_backward`` for each ``[args, d_output]`` of ``cases``, in one call."""
    return [function_backward(fn_name, args, d_output, []) for args, d_output in cases]


def function_backward_saved(fn_name: str, saved: list[float], d_output: float) -> list[Any]:
    """``Fn.backward(ctx, d_output)`` on a Context holding ``saved`` (not from forward).

    Used when the student's forward is wrong or raises (task 1.2), to still test backward
    with the usual conventions (saved inputs, saved output)."""
    fn = _function(fn_name)
    ctx = _student("autodiff").Context()
    ctx.save_for_backward(*saved)
    grads = fn.backward(ctx, d_output)
    return list(grads) if isinstance(grads, (tuple, list)) else [grads]


def _reaches(node: Any, index: dict[int, int], limit: int = 5000) -> list[int]:
    """Indices of the leaves (``index``: their ``_identities``) reachable from ``node``
    through ``history.inputs``."""
    found: set[int] = set()
    seen: set[int] = set()
    stack = [node]
    while stack and len(seen) < limit:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        i = index.get(id(current), -1)
        if i >= 0:
            found.add(i)
        history = getattr(current, "history", None)
        stack.extend(getattr(history, "inputs", None) or ())
    return sorted(found)


def _reaches_of(nodes: list[Any], leaves: list[Any]) -> list[list[int]]:
    """For each node, the indices of ``leaves`` it reaches (none for a plain number)."""
    index = _identities(leaves)  # leaves keeps every id in it alive
    return [[] if isinstance(n, (int, float)) else _reaches(n, index) for n in nodes]


def _apply_op(op: str, a: Any, b: Any = None) -> Any:
    if op == "neg":
        return -a
    if op in ("log", "exp", "sigmoid", "relu"):
        return getattr(a, op)()
    if op == "add":
        return a + b
    if op == "sub":
        return a - b
    if op == "mul":
        return a * b
    if op == "div":
        return a / b
    if op == "lt":
        return a < b
    if op == "gt":
        return a > b
    if op == "eq":
        return a == b
    raise ValueError(f"unknown op {op!r}")


def _build_expression(graph: list[list[Any]], values: list[float]) -> tuple[list[Any], list[Any]]:
    scalar = _student("scalar")
    leaves = [scalar.Scalar(v) for v in values]
    nodes: list[Any] = []
    _extend_expression(graph, leaves, nodes)
    return leaves, nodes


def _extend_expression(graph: list[list[Any]], leaves: list[Any], nodes: list[Any]) -> None:
    """Build the nodes of ``graph`` after the ones already in ``nodes``, appending them."""
    for spec in graph[len(nodes) :]:
        kind = spec[0]
        if kind == "var":
            nodes.append(leaves[spec[1]])
        elif kind == "num":
            nodes.append(spec[1])
        else:
            nodes.append(_apply_op(kind, *[nodes[j] for j in spec[1:]]))


def _data(node: Any) -> Any:
    return node if isinstance(node, (int, float)) else node.data


def expression(
    graph: list[list[Any]],
    values: list[float],
    d_output: float,
    points: list[list[float]],
) -> dict[str, Any]:
    """Build the expression graph with Scalars, call ``backward(d_output)`` on its output.

    Returns each node's data, each input leaf's derivative (None if never set), the leaves
    each node reaches through ``history.inputs`` and the output's data at each of
    ``points`` (a fresh graph per point, for central differences). If building the graph
    raises, returns {"forward_error": ...} instead.
    """
    _student("scalar")  # an import error is not a forward mistake: let it propagate
    try:
        leaves, nodes = _build_expression(graph, values)
        reaches = _reaches_of(nodes, leaves)
        data = [_data(n) for n in nodes]
        at_points = [_data(_build_expression(graph, p)[1][-1]) for p in points]
    except Exception as exc:  # noqa: BLE001 - student code may raise anything
        return _forward_failure(exc)
    nodes[-1].backward(d_output)
    return {
        "data": data,
        "grads": [x.derivative for x in leaves],
        "reaches": reaches,
        "points": at_points,
    }


def _local_values(history: Any, d_output: Any) -> list[Any]:
    """``history.last_fn._backward(history.ctx, d_output)`` as a list: one value per input.

    What the given ``_backward`` returns (a tuple, a one-input function's bare value wrapped),
    taken from ``backward`` itself when a student renamed or dropped ``_backward``."""
    fn = history.last_fn
    given = getattr(fn, "_backward", None)
    got = given(history.ctx, d_output) if callable(given) else fn.backward(history.ctx, d_output)
    if isinstance(got, (tuple, list)):
        got = list(got)
        if len(got) == 1 and isinstance(got[0], (tuple, list)):  # wrap_tuple of a list
            got = list(got[0])
        return got
    return [got]


def _made_by(node: Any, known: dict[int, int], limit: int = 50) -> list[tuple[list[int], Any]]:
    """The Scalars computing ``node`` from earlier nodes of the graph: ``node`` itself and
    the computed Scalars its history reaches before an earlier node (``known``: identity ->
    node index) or a leaf, such as the ``-b`` of ``a - b`` written ``a + (-b)``. Each with
    its path of input positions from ``node``."""
    made: list[tuple[list[int], Any]] = [([], node)]
    seen = {id(node)}
    k = 0
    while k < len(made) and len(made) < limit:
        path, scalar = made[k]
        for i, inp in enumerate(scalar.history.inputs):
            history = getattr(inp, "history", None)
            if (
                id(inp) in known
                or id(inp) in seen
                or getattr(history, "last_fn", None) is None
                or not getattr(history, "inputs", None)
            ):
                continue
            seen.add(id(inp))
            made.append(([*path, i], inp))
        k += 1
    return made


def expression_locals(
    graph: list[list[Any]], values: list[float], upstream: list[float]
) -> dict[str, Any]:
    """Build the expression graph with Scalars and ask each computed node for its local
    derivatives, without a backward pass (for students whose chain_rule is wrong, task 1.3:
    the trusted side judges the backward functions here and backpropagate on stand-ins).

    Returns each node's data and reaches (as ``expression_forward``) and ``locals``: None for
    an input or a number; for a computed node j, one entry per Scalar of ``_made_by``, node
    j's own first: {"fn": name of its last_fn, "path": input positions from node j, "inputs":
    for each input the index of the earlier node it is (-1: another Scalar, such as a number
    wrapped by apply), "data": each input's data, "grads": ``_local_values(history,
    upstream[j])``}. Nothing here pairs a value with an input: that is chain_rule's job.
    """
    _student("scalar")  # an import error is not a forward mistake: let it propagate
    try:
        leaves, nodes = _build_expression(graph, values)
        reaches = _reaches_of(nodes, leaves)
        data = [_data(n) for n in nodes]
        made = _made_by_nodes(graph, nodes)
    except Exception as exc:  # noqa: BLE001 - student code may raise anything
        return _forward_failure(exc)
    local: list[Any] = []
    for j, scalars in enumerate(made):
        if scalars is None:
            local.append(None)
            continue
        entries = []
        for path, scalar, fn_name, inputs, input_data in scalars:
            grads = _local_values(scalar.history, upstream[j])
            entries.append(
                {
                    "fn": fn_name,
                    "path": path,
                    "inputs": inputs,
                    "data": input_data,
                    "grads": grads,
                }
            )
        local.append(entries)
    return {"data": data, "reaches": reaches, "locals": local}


def _made_by_nodes(graph: list[list[Any]], nodes: list[Any]) -> list[Any]:
    """For each node: None for an input or a number; else what ``_made_by`` finds, each
    Scalar with its last_fn's name, its inputs as node indices (-1: not a node of the graph)
    and their data. Only reads the graph's structure: a Scalar without a history is left
    out (the trusted side says what is missing)."""
    known: dict[int, int] = {}
    out: list[Any] = []
    for j, (spec, node) in enumerate(zip(graph, nodes, strict=True)):
        if spec[0] in ("var", "num"):
            out.append(None)
        else:
            scalars = []
            history = getattr(node, "history", None)
            if getattr(history, "last_fn", None) is not None:
                for path, scalar in _made_by(node, known):
                    fn = scalar.history.last_fn
                    inputs = list(scalar.history.inputs)
                    scalars.append(
                        (
                            path,
                            scalar,
                            fn.__name__ if isinstance(fn, type) else None,
                            [known.get(id(x), -1) for x in inputs],
                            [_data(x) for x in inputs],
                        )
                    )
            out.append(scalars)
        if not isinstance(node, (int, float)):
            known.setdefault(id(node), j)
    return out


def expression_order(graph: list[list[Any]], values: list[float]) -> list[int]:
    """``topological_sort`` of the expression's output, built with Scalars, as node indices
    (-1: a Scalar that is not a node of the graph, such as a number wrapped by apply)."""
    autodiff = _student("autodiff")
    _, nodes = _build_expression(graph, values)
    index = _identities(nodes)
    return [index.get(id(v), -1) for v in autodiff.topological_sort(nodes[-1])]


def scalar_order(graph: list[list[Any]], values: list[float]) -> dict[str, Any]:
    """``expression_order`` with what the trusted side needs to judge it only when the
    forward is right: each node's data and reaches, and the order as node indices; if
    building the graph raises (a forward mistake), {"forward_error": ...} instead."""
    autodiff = _student("autodiff")
    _student("scalar")  # an import error is not a forward mistake: let it propagate
    try:
        leaves, nodes = _build_expression(graph, values)
        reaches = _reaches_of(nodes, leaves)
        data = [_data(n) for n in nodes]
    except Exception as exc:  # noqa: BLE001 - student code may raise anything
        return _forward_failure(exc)
    index = _identities(nodes)
    order = [index.get(id(v), -1) for v in autodiff.topological_sort(nodes[-1])]
    return {"data": data, "reaches": reaches, "order": order}


def expression_continued(
    graph: list[list[Any]], values: list[float], first: int, d_first: float, d_output: float
) -> dict[str, Any]:
    """A first graph (the nodes up to ``first``), ``backward(d_first)`` on its output; the
    input leaves' derivatives set back to None, as ``optim.SGD.zero_grad`` does; then the
    rest of ``graph``, built on top of the first graph's Scalars, and ``backward(d_output)``
    on its output. Returns each node's data and reaches, the leaves' derivatives after the
    first backward ("first") and after the second ("grads")."""
    scalar = _student("scalar")
    leaves = [scalar.Scalar(v) for v in values]
    nodes: list[Any] = []
    try:
        _extend_expression(graph[: first + 1], leaves, nodes)
    except Exception as exc:  # noqa: BLE001 - student code may raise anything
        return _forward_failure(exc)
    nodes[first].backward(d_first)
    after_first = [x.derivative for x in leaves]
    for x in leaves:
        x.derivative = None
    try:
        _extend_expression(graph, leaves, nodes)
        reaches = _reaches_of(nodes, leaves)
        data = [_data(n) for n in nodes]
    except Exception as exc:  # noqa: BLE001 - student code may raise anything
        return _forward_failure(exc)
    nodes[-1].backward(d_output)
    return {
        "data": data,
        "reaches": reaches,
        "first": after_first,
        "grads": [x.derivative for x in leaves],
    }


def expression_forward(graph: list[list[Any]], values: list[float]) -> dict[str, Any]:
    """Build the expression graph with Scalars (no backward): each node's data and reaches."""
    leaves, nodes = _build_expression(graph, values)
    return {
        "data": [_data(n) for n in nodes],
        "reaches": _reaches_of(nodes, leaves),
    }


def expression_pair(
    first: list[list[Any]],
    first_values: list[float],
    second: list[list[Any]],
    second_values: list[float],
    d_output: float,
) -> dict[str, Any]:
    """Build two separate graphs, then call backward(d_output) on the first and backward()
    on the second. Returns, per graph, what ``expression`` returns (without points)."""
    _student("scalar")  # an import error is not a forward mistake: let it propagate
    try:
        built = []
        for graph, values in ((first, first_values), (second, second_values)):
            leaves, nodes = _build_expression(graph, values)
            reaches = _reaches_of(nodes, leaves)
            built.append((leaves, nodes, reaches, [_data(n) for n in nodes]))
    except Exception as exc:  # noqa: BLE001 - student code may raise anything
        return _forward_failure(exc)
    built[0][1][-1].backward(d_output)
    built[1][1][-1].backward()
    return {
        "graphs": [
            {"data": data, "grads": [x.derivative for x in leaves], "reaches": reaches}
            for leaves, _, reaches, data in built
        ]
    }


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
