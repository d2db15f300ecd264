"""Smoke tests of the instructor's reference package (reference/minitorch).

Every name of shared/minitorch-api.md is exercised once with concrete values, so a change
to the reference that breaks the contract fails here, before it reaches a hand-out or a
grading run. The property-based assignment tests live in tests/, not here.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import random
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REFERENCE = Path(__file__).resolve().parents[2] / "reference"
PACKAGE = "_minitorch_reference"
D = 0.37  # an upstream derivative other than 1.0, so a missing `* d_output` shows


def _load_reference() -> ModuleType:
    """Import reference/minitorch, and keep it under a private name.

    The package has to be imported as `minitorch`: scalar_functions.py does `import
    minitorch` and looks up `minitorch.scalar.Scalar`, as the course template does. But other
    grader tests load student packages of that name in this same process, so the reference
    is only `minitorch` while it imports: afterwards its modules live under a private name,
    and whatever `minitorch` was loaded before is put back.
    """
    if PACKAGE in sys.modules:
        return sys.modules[PACKAGE]

    def ours(name: str) -> bool:
        return name == "minitorch" or name.startswith("minitorch.")

    saved = {name: module for name, module in sys.modules.items() if ours(name)}
    for name in saved:
        del sys.modules[name]
    init = REFERENCE / "minitorch" / "__init__.py"
    spec = importlib.util.spec_from_file_location(
        "minitorch", init, submodule_search_locations=[str(init.parent)]
    )
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules["minitorch"] = package
    try:
        spec.loader.exec_module(package)
        for name in [n for n in sys.modules if ours(n)]:
            sys.modules[PACKAGE + name[len("minitorch") :]] = sys.modules[name]
    finally:
        for name in [n for n in sys.modules if ours(n)]:
            del sys.modules[name]
        sys.modules.update(saved)
    return package


mt = _load_reference()
ops = importlib.import_module(f"{PACKAGE}.operators")
autodiff = importlib.import_module(f"{PACKAGE}.autodiff")
sf = importlib.import_module(f"{PACKAGE}.scalar_functions")
scalar_module = importlib.import_module(f"{PACKAGE}.scalar")
datasets_module = importlib.import_module(f"{PACKAGE}.datasets")
Scalar = mt.Scalar


# ## The package re-exports the whole contract

OPERATOR_NAMES = """
    mul id add neg lt eq max is_close sigmoid relu log exp inv log_back inv_back relu_back
    map zipWith reduce negList addLists sum prod
""".split()
CONTRACT_NAMES = """
    Module Parameter MathTest MathTestVariable
    central_difference Variable topological_sort backpropagate Context
    wrap_tuple unwrap_tuple ScalarFunction Add Log Mul Inv Neg Sigmoid ReLU Exp LT EQ
    ScalarHistory Scalar derivative_check
    Optimizer SGD Graph datasets
""".split()


@pytest.mark.parametrize("name", CONTRACT_NAMES)
def test_package_exports(name: str) -> None:
    assert hasattr(mt, name)


@pytest.mark.parametrize("name", OPERATOR_NAMES)
def test_operators_stay_in_their_module(name: str) -> None:
    """As in the template, `minitorch.operators.mul`; the package does not re-export them."""
    assert callable(getattr(ops, name))


def test_datasets_name_is_the_dict() -> None:
    assert isinstance(mt.datasets, dict)


# ## operators.py, task 0.1


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: ops.mul(3.0, 4.0), 12.0),
        (lambda: ops.id(2.5), 2.5),
        (lambda: ops.add(1.5, 2.25), 3.75),
        (lambda: ops.neg(2.0), -2.0),
        (lambda: ops.lt(1.0, 2.0), 1.0),
        (lambda: ops.lt(2.0, 1.0), 0.0),
        (lambda: ops.lt(1.0, 1.0), 0.0),
        (lambda: ops.lt(1.0, 1.001), 1.0),
        (lambda: ops.eq(3.0, 3.0), 1.0),
        (lambda: ops.eq(3.0, 3.001), 0.0),
        (lambda: ops.max(1.0, 2.0), 2.0),
        (lambda: ops.max(-1.0, -2.0), -1.0),
        (lambda: ops.relu(3.0), 3.0),
        (lambda: ops.relu(-3.0), 0.0),
        (lambda: ops.log(1.0), 0.0),
        (lambda: ops.exp(0.0), 1.0),
        (lambda: ops.inv(4.0), 0.25),
        (lambda: ops.log_back(2.0, 3.0), 1.5),
        (lambda: ops.inv_back(2.0, 3.0), -0.75),
        (lambda: ops.relu_back(2.0, 3.0), 3.0),
        (lambda: ops.relu_back(-2.0, 3.0), 0.0),
        (lambda: ops.sigmoid(0.0), 0.5),
    ],
)
def test_operator_values(call, expected: float) -> None:
    result = call()
    assert result == expected
    assert type(result) is float


def test_log_and_exp_are_exact() -> None:
    assert ops.log(math.e) == pytest.approx(1.0, rel=1e-12)
    assert ops.exp(1.0) == pytest.approx(math.e, rel=1e-12)


def test_is_close() -> None:
    assert ops.is_close(1.0, 1.009)
    assert ops.is_close(1.009, 1.0)
    assert not ops.is_close(1.0, 1.011)


def test_sigmoid_does_not_overflow() -> None:
    assert ops.sigmoid(1000.0) == 1.0
    assert ops.sigmoid(-1000.0) == 0.0
    assert ops.sigmoid(-1e308) == 0.0
    assert ops.sigmoid(1e308) == 1.0


def test_sigmoid_is_accurate() -> None:
    for i in range(-300, 301):
        x = i / 10.0
        assert ops.sigmoid(x) == pytest.approx(1.0 / (1.0 + math.exp(-x)), rel=1e-6, abs=0.0)
    for x in (-30.5, -50.0, -100.0, -700.0, -745.0):
        assert ops.sigmoid(x) == pytest.approx(math.exp(x), rel=0.0, abs=1e-12)
    assert ops.sigmoid(-2.0) == pytest.approx(1.0 - ops.sigmoid(2.0), rel=1e-12)


# ## operators.py, task 0.3


def test_map() -> None:
    double = ops.map(lambda x: 2.0 * x)
    assert double([1.0, 2.5]) == [2.0, 5.0]
    assert double(x for x in (3.0,)) == [6.0]
    assert double([]) == []


def test_zip_with() -> None:
    assert ops.zipWith(ops.mul)([1.0, 2.0], (3.0, 4.0)) == [3.0, 8.0]
    assert ops.zipWith(ops.add)([], []) == []


def test_reduce() -> None:
    assert ops.reduce(ops.add, 0.0)([1.0, 2.0, 3.5]) == 6.5
    assert ops.reduce(ops.mul, 1.0)([2.0, 3.0, 4.0]) == 24.0
    assert ops.reduce(ops.max, -math.inf)([2.0, 7.0, 4.0]) == 7.0
    assert ops.reduce(ops.add, 5.0)([]) == 5.0


def test_list_helpers() -> None:
    assert ops.negList([1.0, -2.0, 0.5]) == [-1.0, 2.0, -0.5]
    assert ops.addLists([1.0, 2.0], [10.0, 20.0]) == [11.0, 22.0]
    assert ops.sum([1.0, 2.0, 3.5]) == 6.5
    assert ops.sum([]) == 0.0
    assert ops.prod([2.0, 3.0, 0.5]) == 3.0
    assert ops.prod([]) == 1.0
    assert type(ops.sum([])) is float and type(ops.prod([])) is float


# ## module.py, task 0.4


class Leaf(mt.Module):
    def __init__(self) -> None:
        super().__init__()
        self.p1 = mt.Parameter(1.0)
        self.add_parameter("p2", 2.0)
        self.plain = 42  # an ordinary attribute: not registered

    def forward(self, x: float, scale: float = 1.0) -> float:
        return (x + self.p1.value) * scale


class Mid(mt.Module):
    def __init__(self) -> None:
        super().__init__()
        self.b = Leaf()
        self.q = mt.Parameter(3.0)


class Root(mt.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = Mid()
        self.c = Leaf()
        self.r = mt.Parameter(4.0)


def test_module_registers_children_and_parameters() -> None:
    root = Root()
    assert {id(m) for m in root.modules()} == {id(root.a), id(root.c)}
    assert {id(m) for m in root.a.modules()} == {id(root.a.b)}
    assert root.c.modules() == []
    assert root.c.plain == 42
    assert "plain" not in root.c._parameters and "plain" not in root.c._modules


def test_named_parameters_use_dotted_names() -> None:
    root = Root()
    named = dict(root.named_parameters())
    assert set(named) == {"r", "a.q", "a.b.p1", "a.b.p2", "c.p1", "c.p2"}
    assert named["a.b.p1"] is root.a.b.p1
    assert named["c.p2"] is root.c.p2
    assert named["a.q"].value == 3.0
    assert {id(p) for p in root.parameters()} == {id(p) for p in named.values()}
    assert len(root.parameters()) == 6


def test_train_and_eval_reach_every_descendant() -> None:
    root = Root()
    everything = [root, root.a, root.a.b, root.c]
    assert all(m.training for m in everything)
    root.eval()
    assert not any(m.training for m in everything)
    root.train()
    assert all(m.training for m in everything)
    root.a.eval()
    assert root.training and not root.a.training and not root.a.b.training


def test_add_parameter() -> None:
    module = mt.Module()
    added = module.add_parameter("w", 2.0)
    assert isinstance(added, mt.Parameter)
    assert added.name == "w" and added.value == 2.0
    assert module.w is added
    assert module.named_parameters() == [("w", added)]
    # Assigning a Parameter to an attribute registers it under that name, too.
    module.v = added
    assert dict(module.named_parameters()) == {"w": added, "v": added}


def test_module_call_and_attributes() -> None:
    leaf = Leaf()
    assert leaf(2.0, scale=3.0) == 9.0
    # As in the template: a missing attribute reads as None, so a module without a
    # forward() fails when called.
    assert leaf.missing is None
    with pytest.raises(TypeError):
        mt.Module()(1.0)
    text = repr(Root())
    assert text.startswith("Root(") and "(a): Mid(" in text and "(b): Leaf()" in text


def test_module_without_super_init_fails() -> None:
    class Broken(mt.Module):
        def __init__(self) -> None:
            self.p = mt.Parameter(1.0)

    with pytest.raises(KeyError, match="_parameters"):
        Broken()


def test_parameter() -> None:
    p = mt.Parameter(1.5, name="w")
    assert p.value == 1.5 and p.name == "w"
    assert mt.Parameter(2.0).name is None
    p.update(2.5)
    assert p.value == 2.5
    assert repr(p) == "2.5" and str(p) == "2.5"


# ## autodiff.py, task 1.1


def test_central_difference() -> None:
    def f(x: float, y: float) -> float:
        return x * y * y

    assert mt.central_difference(f, 2.0, 3.0) == pytest.approx(9.0, rel=1e-6)
    assert mt.central_difference(f, 2.0, 3.0, arg=1) == pytest.approx(12.0, rel=1e-6)
    assert mt.central_difference(math.exp, 0.0, epsilon=1e-4) == pytest.approx(1.0, rel=1e-6)
    # Exactly the symmetric quotient:
    assert mt.central_difference(lambda x: x * x, 1.0, epsilon=0.5) == 2.0


# ## autodiff.py, task 1.4


def test_variable_protocol_is_met_by_scalar() -> None:
    x = Scalar(1.0)
    for member in ("unique_id", "is_leaf", "is_constant", "parents", "chain_rule"):
        assert hasattr(x, member)
    assert hasattr(x, "accumulate_derivative")
    assert isinstance(x.unique_id, int)


def _graph() -> tuple[Scalar, Scalar, Scalar]:
    x = Scalar(0.5, name="x")
    y = Scalar(2.0, name="y")
    z = (x * y + x.log()) * y + x.exp()
    return x, y, z


def test_topological_sort_orders_children_before_parents() -> None:
    x, y, z = _graph()
    order = list(mt.topological_sort(z))
    ids = [v.unique_id for v in order]
    assert ids[0] == z.unique_id
    assert len(ids) == len(set(ids))
    position = {uid: i for i, uid in enumerate(ids)}
    assert x.unique_id in position and y.unique_id in position
    for var in order:
        for parent in var.parents:
            assert position[parent.unique_id] > position[var.unique_id]
    # Deterministic: a second sort of the same graph gives the same order.
    assert [v.unique_id for v in mt.topological_sort(z)] == ids


def test_topological_sort_skips_constants() -> None:
    x = Scalar(2.0)
    c = Scalar(3.0, None)
    out = x * c
    ids = {v.unique_id for v in mt.topological_sort(out)}
    assert ids == {out.unique_id, x.unique_id}
    assert list(mt.topological_sort(c)) == []


def test_backpropagate_diamond() -> None:
    # out = (2x) * e^x uses x on two paths: d/dx = 2 e^x + 2x e^x.
    x = Scalar(0.5)
    out = (x * 2.0) * x.exp()
    mt.backpropagate(out, D)
    expected = D * (2.0 * math.exp(0.5) + 2.0 * 0.5 * math.exp(0.5))
    assert x.derivative == pytest.approx(expected, rel=1e-12)


def test_backpropagate_reused_variable() -> None:
    x = Scalar(3.0)
    mt.backpropagate(x * x, 1.0)
    assert x.derivative == 6.0


def test_backpropagate_on_a_leaf() -> None:
    x = Scalar(3.0)
    mt.backpropagate(x, D)
    assert x.derivative == D


def test_context() -> None:
    ctx = mt.Context()
    assert ctx.no_grad is False and ctx.saved_values == ()
    ctx.save_for_backward(1.0, 2.0)
    assert ctx.saved_values == (1.0, 2.0)
    assert ctx.saved_tensors == (1.0, 2.0)
    quiet = mt.Context(no_grad=True)
    quiet.save_for_backward(1.0)
    assert quiet.saved_values == () and quiet.saved_tensors == ()


# ## scalar_functions.py, tasks 1.2 and 1.4


def test_tuple_helpers() -> None:
    assert mt.wrap_tuple(1.0) == (1.0,)
    assert mt.wrap_tuple((1.0, 2.0)) == (1.0, 2.0)
    assert mt.unwrap_tuple((3.0,)) == 3.0
    assert mt.unwrap_tuple((1.0, 2.0)) == (1.0, 2.0)


S = 1.0 / (1.0 + math.exp(-0.5))
FUNCTION_CASES = [
    ("Add", (1.5, 2.5), 4.0, (D, D)),
    ("Mul", (1.5, 2.5), 3.75, (2.5 * D, 1.5 * D)),
    ("Log", (2.0,), math.log(2.0), (D / 2.0,)),
    ("Inv", (4.0,), 0.25, (-D / 16.0,)),
    ("Neg", (3.0,), -3.0, (-D,)),
    ("Sigmoid", (0.5,), S, (S * (1.0 - S) * D,)),
    ("ReLU", (2.0,), 2.0, (D,)),
    ("ReLU", (-2.0,), 0.0, (0.0,)),
    ("Exp", (0.5,), math.exp(0.5), (math.exp(0.5) * D,)),
    ("LT", (1.0, 2.0), 1.0, (0.0, 0.0)),
    ("LT", (2.0, 1.0), 0.0, (0.0, 0.0)),
    ("EQ", (1.0, 1.0), 1.0, (0.0, 0.0)),
    ("EQ", (1.0, 2.0), 0.0, (0.0, 0.0)),
]


@pytest.mark.parametrize(("name", "args", "value", "derivatives"), FUNCTION_CASES)
def test_function_forward_and_backward(name, args, value, derivatives) -> None:
    fn = getattr(mt, name)
    ctx = mt.Context()
    out = fn._forward(ctx, *args)
    assert type(out) is float
    assert out == pytest.approx(value, rel=1e-12)
    back = fn._backward(ctx, D)
    assert isinstance(back, tuple) and len(back) == len(args)
    assert all(type(d) is float for d in back)
    assert back == pytest.approx(derivatives, rel=1e-12)
    # The static methods are callable directly, too.
    assert fn.forward(mt.Context(), *args) == pytest.approx(value, rel=1e-12)


def test_apply_turns_numbers_into_leaves() -> None:
    out = mt.Mul.apply(2, 3.5)
    assert isinstance(out, Scalar)
    assert out.data == 7.0 and type(out.data) is float
    history = out.history
    assert history.last_fn is mt.Mul
    assert isinstance(history.ctx, mt.Context)
    assert len(history.inputs) == 2
    assert all(isinstance(s, Scalar) and s.is_leaf() for s in history.inputs)
    assert [type(s.data) for s in history.inputs] == [float, float]


def test_apply_keeps_scalars_and_passes_floats_to_forward() -> None:
    seen: list[tuple[type, ...]] = []

    class Spy(mt.ScalarFunction):
        @staticmethod
        def forward(ctx, a, b):
            seen.append((type(a), type(b)))
            return a + b

        @staticmethod
        def backward(ctx, d_output):
            return d_output, d_output

    x = Scalar(1)
    out = Spy.apply(x, 2.5)
    assert seen == [(float, float)]
    # As in the template, a raw number reaches forward unchanged (an int stays an int).
    Spy.apply(x, 2)
    assert seen[-1] == (float, int)
    assert out.history.inputs[0] is x
    assert out.data == 3.5 and type(out.data) is float


def test_apply_records_history_even_for_constants() -> None:
    out = mt.Add.apply(Scalar(1.0, None), Scalar(2.0, None))
    assert out.data == 3.0
    assert not out.is_constant() and out.history.last_fn is mt.Add
    with pytest.raises(AssertionError, match="float"):
        mt.Neg.apply(2)  # forward returns the int -2: apply insists on a float


# ## scalar.py, tasks 1.2, 1.3 and 1.4


def test_scalar_construction() -> None:
    a = Scalar(1)
    b = Scalar(2.0, name="b")
    assert a.data == 1.0 and type(a.data) is float
    assert a.derivative is None
    assert a.history == mt.ScalarHistory() and a.is_leaf() and not a.is_constant()
    assert b.unique_id != a.unique_id
    assert a.name == str(a.unique_id) and b.name == "b"
    assert repr(Scalar(1.5)) == "Scalar(1.500000)"
    c = Scalar(3.0, None)
    assert c.is_constant() and not c.is_leaf()
    assert mt.ScalarHistory().last_fn is None
    assert mt.ScalarHistory().ctx is None
    assert tuple(mt.ScalarHistory().inputs) == ()


def test_scalar_bool_and_no_hash() -> None:
    x = Scalar(2.0)
    assert bool(x) and not bool(Scalar(0.0))
    # As in the template: __eq__ builds a Scalar, so Scalars are unhashable, and there is
    # no __rsub__, so `number - Scalar` is not supported.
    with pytest.raises(TypeError):
        hash(x)
    with pytest.raises(TypeError):
        _ = 2.0 - x


X, Y = 3.0, 2.0
OPERATOR_CASES = [
    ("x + y", lambda x, y: x + y, 5.0),
    ("x - y", lambda x, y: x - y, 1.0),
    ("x * y", lambda x, y: x * y, 6.0),
    ("x / y", lambda x, y: x / y, 1.5),
    ("x < y", lambda x, y: x < y, 0.0),
    ("y < x", lambda x, y: y < x, 1.0),
    ("x > y", lambda x, y: x > y, 1.0),
    ("x == y", lambda x, y: x == y, 0.0),
    ("x == x", lambda x, y: x == x, 1.0),
    ("-x", lambda x, y: -x, -3.0),
    ("x.log()", lambda x, y: x.log(), math.log(3.0)),
    ("x.exp()", lambda x, y: x.exp(), math.exp(3.0)),
    ("x.sigmoid()", lambda x, y: x.sigmoid(), 1.0 / (1.0 + math.exp(-3.0))),
    ("x.relu()", lambda x, y: x.relu(), 3.0),
    ("(-x).relu()", lambda x, y: (-x).relu(), 0.0),
    ("x + 2", lambda x, y: x + 2, 5.0),
    ("x - 2.0", lambda x, y: x - 2.0, 1.0),
    ("x * 2", lambda x, y: x * 2, 6.0),
    ("x / 2", lambda x, y: x / 2, 1.5),
    ("x < 4", lambda x, y: x < 4, 1.0),
    ("x > 4", lambda x, y: x > 4, 0.0),
    ("x == 3", lambda x, y: x == 3, 1.0),
    ("2 + x", lambda x, y: 2 + x, 5.0),
    ("2 * x", lambda x, y: 2 * x, 6.0),
    ("2 / x", lambda x, y: 2 / x, 2.0 / 3.0),
    ("1 < x", lambda x, y: 1 < x, 1.0),
    ("5 < x", lambda x, y: 5 < x, 0.0),
    ("1 > x", lambda x, y: 1 > x, 0.0),
    ("3 == x", lambda x, y: 3 == x, 1.0),
]


@pytest.mark.parametrize(("text", "op", "expected"), OPERATOR_CASES)
def test_scalar_operators(text: str, op, expected: float) -> None:
    out = op(Scalar(X), Scalar(Y))
    assert isinstance(out, Scalar), text
    assert type(out.data) is float
    assert out.data == pytest.approx(expected, rel=1e-12), text


def test_operators_build_nodes_from_functions() -> None:
    x, y = Scalar(X), Scalar(Y)
    assert (x - y).history.last_fn is mt.Add
    assert (x / y).history.last_fn is mt.Mul
    greater = x > y
    assert greater.history.last_fn is mt.LT
    assert [s.unique_id for s in greater.history.inputs] == [y.unique_id, x.unique_id]
    assert (-x).history.last_fn is mt.Neg


@pytest.mark.parametrize(
    ("text", "f", "point"),
    [
        ("x + y", lambda x, y: x + y, (X, Y)),
        ("x - y", lambda x, y: x - y, (X, Y)),
        ("x * y", lambda x, y: x * y, (X, Y)),
        ("x / y", lambda x, y: x / y, (X, Y)),
        ("x / y - 2", lambda x, y: x / y - 2.0, (X, Y)),
        ("x < y", lambda x, y: (x < y) + x, (X, Y)),
        ("x == y", lambda x, y: (x == y) * y, (X, Y)),
        ("-x", lambda x: -x, (X,)),
        ("log", lambda x: x.log(), (X,)),
        ("exp", lambda x: x.exp(), (0.5,)),
        ("sigmoid", lambda x: x.sigmoid(), (0.5,)),
        ("relu", lambda x: x.relu(), (X,)),
        ("compound", lambda x, y: (x * y + x.log()).sigmoid() * (y.exp() - 1 / x), (0.7, 0.3)),
    ],
)
def test_derivatives_match_central_difference(text: str, f, point) -> None:
    mt.derivative_check(f, *(Scalar(v) for v in point))


def test_derivative_check_reports_a_wrong_derivative() -> None:
    class Double(mt.ScalarFunction):
        @staticmethod
        def forward(ctx, a):
            return 2.0 * a

        @staticmethod
        def backward(ctx, d_output):
            return 0.5 * d_output  # wrong: the derivative of 2a is 2

    with pytest.raises(AssertionError, match="argument 0"):
        mt.derivative_check(Double.apply, Scalar(1.5))


def test_parents_and_chain_rule() -> None:
    x, y = Scalar(X), Scalar(Y)
    z = x * y
    assert tuple(x.parents) == ()
    assert [p.unique_id for p in z.parents] == [x.unique_id, y.unique_id]
    pairs = list(z.chain_rule(0.5))
    assert [v.unique_id for v, _ in pairs] == [x.unique_id, y.unique_id]
    assert [d for _, d in pairs] == [1.0, 1.5]

    c = Scalar(4.0, None)
    pairs = list((x * c).chain_rule(1.0))
    assert [(v.unique_id, d) for v, d in pairs if not v.is_constant()] == [(x.unique_id, 4.0)]


def test_chain_rule_on_a_leaf_raises() -> None:
    with pytest.raises(AssertionError):
        Scalar(1.0).chain_rule(1.0)


def test_accumulate_derivative() -> None:
    x = Scalar(1.0)
    x.accumulate_derivative(0.25)
    x.accumulate_derivative(0.5)
    assert x.derivative == 0.75
    with pytest.raises(AssertionError, match="leaf"):
        (x + 1).accumulate_derivative(1.0)


def test_scalar_backward() -> None:
    x, y = Scalar(X), Scalar(Y)
    (x * y).backward()
    assert (x.derivative, y.derivative) == (2.0, 3.0)
    a = Scalar(X)
    (a * a + a).backward(2.0)
    assert a.derivative == 2.0 * (2.0 * X + 1.0)


# ## optim.py


def test_sgd_step_and_zero_grad() -> None:
    moved = mt.Parameter(Scalar(1.0))
    still = mt.Parameter(Scalar(2.0))
    (moved.value * 3.0).backward()
    optimizer = mt.SGD([moved, still], lr=0.1)
    before = still.value
    optimizer.step()
    assert moved.value.data == pytest.approx(0.7, rel=1e-12)
    assert moved.value.is_leaf() and moved.value.derivative is None
    assert still.value is before

    still.value.accumulate_derivative(1.0)
    optimizer.zero_grad()
    assert still.value.derivative is None


def test_sgd_trains_a_module() -> None:
    class Line(mt.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = mt.Parameter(Scalar(0.0))

        def forward(self, x: float) -> Scalar:
            return self.w.value * x

    model = Line()
    optimizer = mt.SGD(model.parameters(), lr=0.1)
    assert isinstance(optimizer, mt.Optimizer)
    for _ in range(50):
        optimizer.zero_grad()
        error = model(2.0) - 6.0  # the best w is 3
        (error * error).backward()
        optimizer.step()
    assert model.w.value.data == pytest.approx(3.0, abs=1e-6)


# ## datasets.py

GENERATORS = ["Simple", "Diag", "Split", "Xor", "Circle", "Spiral"]


def test_dataset_names() -> None:
    assert sorted(mt.datasets) == sorted(GENERATORS)
    assert mt.datasets["Simple"] is datasets_module.simple
    assert mt.datasets["Spiral"] is datasets_module.spiral


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize("n", [1, 7, 20])
def test_dataset_shape(name: str, n: int) -> None:
    graph = mt.datasets[name](n)
    assert isinstance(graph, mt.Graph)
    assert graph.N == n and len(graph.X) == n and len(graph.y) == n
    assert all(label in (0, 1) for label in graph.y)
    assert all(len(p) == 2 and all(type(c) is float for c in p) for p in graph.X)


@pytest.mark.parametrize("name", GENERATORS)
def test_dataset_is_deterministic_and_leaves_global_random_alone(name: str) -> None:
    random.seed(123)
    state = random.getstate()
    first = mt.datasets[name](30)
    assert random.getstate() == state
    assert mt.datasets[name](30) == first


def test_dataset_labels_follow_their_rule() -> None:
    simple = mt.datasets["Simple"](50)
    assert simple.y == [1 if x1 < 0.5 else 0 for x1, _ in simple.X]
    assert 0 < sum(simple.y) < 50
    assert mt.datasets["Simple"](50, 1) != simple  # the seed matters
    spiral = mt.datasets["Spiral"](10)
    assert spiral.y == [0] * 5 + [1] * 5


# ## project/run_scalar.py

RUN_SCALAR = REFERENCE / "project" / "run_scalar.py"
FINAL = re.compile(r"^final accuracy (\d+\.\d+)", re.MULTILINE)


def _run_scalar(tmp_path: Path, *args: str) -> str:
    # Run from an unrelated folder: the script must find minitorch on its own.
    result = subprocess.run(
        [sys.executable, str(RUN_SCALAR), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_run_scalar_prints_progress_and_final_accuracy(tmp_path: Path) -> None:
    out = _run_scalar(
        tmp_path, "--epochs", "3", "--points", "10", "--hidden", "2", "--log-every", "1"
    )
    assert len(re.findall(r"^epoch\s+\d+\s+loss [\d.]+\s+accuracy [\d.]+$", out, re.M)) == 3
    match = FINAL.search(out)
    assert match is not None, out
    assert 0.0 <= float(match.group(1)) <= 1.0


@pytest.mark.slow
def test_run_scalar_learns_simple_with_defaults(tmp_path: Path) -> None:
    match = FINAL.search(_run_scalar(tmp_path))
    assert match is not None
    assert float(match.group(1)) >= 0.9
