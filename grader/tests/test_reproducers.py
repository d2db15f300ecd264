"""Every kind of reproducer a report prints runs in a real Python shell on the reference.

A reproducer is only worth printing if a student can paste it and see the same graph, the
same inputs and the answer the test expected. Each case makes a check of tests/support.py
fail (a wrong answer on purpose), takes the ``>>>`` / ``...`` lines from its message, feeds
them line by line to ``code.InteractiveConsole`` in a fresh interpreter that imports the
reference solution, and compares what the shell printed with what the test expected.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

import support as S  # noqa: E402

from grader.evidence.mutations import apply_mutations, load_corpus  # noqa: E402
from grader.isolation import checks as C  # noqa: E402

SHELL = r"""
import code, json, sys
shown = []
sys.displayhook = lambda value: shown.append(repr(value)) if value is not None else None
console = code.InteractiveConsole()
more = False
for line in json.loads(sys.stdin.read()):
    more = console.push(line)
    if not more and console.locals.get("_failed"):
        break
print(json.dumps({"shown": shown, "incomplete": more}))
"""


def message_of(check: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(pytest.fail.Exception) as failed:
        check(*args, **kwargs)
    return str(failed.value.msg)


def shell_input(message: str) -> list[str]:
    """The lines a student types: the text after each ``>>> `` or ``... `` prompt."""
    lines = []
    for line in message.splitlines():
        text = line.strip()
        if text.startswith((">>> ", "... ")) or text in (">>>", "..."):
            lines.append(text[4:])
    assert lines, f"no reproducer in:\n{message}"
    return lines


def run_in_shell(lines: list[str]) -> Any:
    """What the last expression of ``lines`` showed, run on the reference in a shell."""
    proc = subprocess.run(
        [sys.executable, "-c", SHELL],
        input=json.dumps(lines),
        capture_output=True,
        text=True,
        cwd=ROOT / "reference",
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    out = json.loads(proc.stdout)
    assert not out["incomplete"], f"the shell still waits for input after {lines}"
    assert out["shown"], f"the reproducer showed nothing: {lines}"
    return ast.literal_eval(out["shown"][-1])


GRAPH = [  # a diamond with a reused input and a weight, a constant, and a leaf left unused
    ["leaf"],
    ["leaf"],
    ["const"],
    ["node", [[0, 0.5], [2, 1.5]]],
    ["node", [[0, 2.0], [0, -1.0]]],
    ["node", [[3, 1.0], [4, 0.25], [1, 3.0]]],
]


# Task 1.4's Scalar checks over handles, on the reference with one mistake (a wrong answer
# on purpose): the reproducer of each failure, run on the reference, shows what was expected.
MISTAKES = {e.name: e for e in load_corpus(ROOT / "grader" / "tests" / "corpus" / "buggy.toml")}


@pytest.fixture
def broken(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """``mt`` over the reference with the mistakes named by the test's parameter."""
    from grader.course.assignment import Limits
    from grader.isolation import SandboxConfig, StudentClient
    from grader.isolation.handles import Session

    edits = [edit for name in request.param for edit in MISTAKES[name].edits]
    root = apply_mutations(ROOT / "reference", edits, tmp_path / "submission")
    config = SandboxConfig(root=root, mode="inprocess", limits=Limits())
    S._HEALTHY.clear()
    S._CHAIN_RULE_OK.clear()
    with StudentClient(config) as client:
        yield Session(client.run, lambda: client.generation).package()


SCALARS = S.Expression(  # a - b is a + (-b) in the reference; t3 = x1.exp() is dead
    [["var", 0], ["var", 1], ["num", 1.5], ["exp", 1], ["sub", 0, 1], ["mul", 4, 2]],
    [0.5, 0.25],
)
SCALARS.nodes.append(["mul", 5, 0])


@pytest.mark.parametrize("broken", [["mul_backward_swapped"]], indirect=True)
def test_backward_reproducer_gives_the_expected_derivatives(broken: Any) -> None:
    d = 0.75
    message = message_of(S.check_backward, broken, SCALARS, d)
    lines = shell_input(message)
    assert "t4 = x0 - x1" in lines and "y.backward(0.75)" in lines
    assert "t3" not in message  # the reproducer shows only what y is computed from
    assert run_in_shell(lines) == pytest.approx([d * j for j in SCALARS.infos()[-1].jac])


@pytest.mark.parametrize("broken", [["mul_backward_swapped"]], indirect=True)
def test_function_backward_reproducer_gives_the_closed_form(broken: Any) -> None:
    message = message_of(S.check_function_backward, broken, "Mul", [([2.0, 3.0], 0.5)])
    shown = run_in_shell(shell_input(message))
    assert list(shown) == pytest.approx(list(S.FUNCTIONS["Mul"].grads(2.0, 3.0, 0.5)))


@pytest.mark.parametrize("broken", [["toposort_set_of_scalars"]], indirect=True)
def test_scalar_order_reproducer_names_the_graphs_scalars(broken: Any) -> None:
    message = message_of(S.check_order, broken, SCALARS)
    assert message.startswith("topological_sort raised TypeError: unhashable type: 'Scalar'")
    assert f"  hint:     {S.UNHASHABLE_HINT}" in message
    names = run_in_shell(shell_input(message))
    nodes = SCALARS.nodes
    index = {S.node_name(nodes, j): j for j in range(len(nodes)) if nodes[j][0] != "num"}
    order = [index.get(name, -1) for name in names]
    assert -1 in order  # the Scalars made inside nodes are listed too
    assert S.order_problem(nodes, order) is None  # the reference is right


@pytest.mark.parametrize("broken", [["backpropagate_keeps_derivatives_on_scalars"]], indirect=True)
def test_continued_reproducer_backpropagates_twice_through_shared_scalars(broken: Any) -> None:
    """Backward on a first graph, the leaves zeroed, a second graph on top of it, backward
    again: the reference (right) shows the second graph's derivatives."""
    nodes = [["var", 0], ["var", 1], ["mul", 0, 0], ["exp", 1]]  # t3 = x1.exp() is dead
    nodes += [["mul", 2, 1], ["num", 3.0], ["mul", 5, 4], ["add", 6, 0]]  # first graph: t4
    expr = S.Expression(nodes, [2.0, 0.5])
    message = message_of(S.check_continued, broken, expr, 4, 0.5, -2.0)
    assert "on a second graph built on the first" in message
    lines = shell_input(message)
    assert lines.index("t4.backward(0.5)") < lines.index("zero_grad(x0, x1)")
    assert run_in_shell(lines) == pytest.approx([-2.0 * j for j in expr.infos()[-1].jac])


@pytest.mark.parametrize(
    ("broken", "needle"),
    [(["mul_backward_swapped"], "in parts"), (["toposort_list_membership"], "MEMBERSHIP")],
    indirect=["broken"],
)
def test_with_a_wrong_chain_rule_a_graph_is_judged_in_parts(broken: Any, needle: str) -> None:
    """A backward pass needs chain_rule (task 1.3): when it is wrong, check_backward judges
    topological_sort(y) on the graph's Scalars and the derivatives chained on the trusted side
    from each Scalar's own last_fn._backward, so a wrong Mul.backward still fails (task 1.4's
    bug), and the reproducer of a wrong order names the Scalars of a right one."""
    S._CHAIN_RULE_OK[id(broken)] = False
    nodes = [["var", 0], ["var", 1], ["mul", 0, 1], ["mul", 1, 0], ["add", 2, 3]]
    tied = S.Expression(nodes, [0.5, 1.5])  # t2 == t3: a membership test with == drops one
    message = message_of(S.check_backward, broken, tied, 0.75)
    if needle == "in parts":
        assert "in parts: chain_rule is judged in 1.3" in message
        return
    assert S.MEMBERSHIP_HINT in message
    names = run_in_shell(shell_input(message))
    index = {S.node_name(nodes, j): j for j in range(len(nodes))}
    assert S.order_problem(nodes, [index.get(name, -1) for name in names]) is None


def test_with_a_wrong_chain_rule_the_reference_passes_in_parts(mt) -> None:  # type: ignore[no-untyped-def]
    """The in-parts judgement of a right submission passes (nothing charged for 1.3's bug)."""
    S._CHAIN_RULE_OK[id(mt)] = False
    try:
        nodes = [["var", 0], ["var", 1], ["mul", 0, 1], ["sub", 2, 1], ["log", 0], ["add", 3, 4]]
        assert S.check_backward(mt, S.Expression(nodes, [0.5, 1.5]), -0.75)
    finally:
        del S._CHAIN_RULE_OK[id(mt)]


# --------------------------------------------------------------------------- over handles
@pytest.fixture(scope="module")
def mt():  # type: ignore[no-untyped-def]
    """Handles to the reference package, in this process (as a student's ``make test``)."""
    from grader.isolation import SandboxConfig, StudentClient
    from grader.isolation.handles import Session

    with StudentClient(SandboxConfig(root=ROOT / "reference", mode="inprocess")) as client:
        yield Session(client.run, lambda: client.generation).package()


def typed(lines: list[str]) -> list[str]:
    """What a student types from a message's reproducer (blocks end with an empty line)."""
    return shell_input("\n".join(C.shell_lines(lines)))


def test_stand_in_order_reproducer_builds_the_tests_graph(mt: Any) -> None:
    order, got, names = S.stand_in_order(mt, GRAPH)
    assert S.order_problem(GRAPH, got) is None  # the reference is right
    *build, call = C.shell(order, names=names)
    assert run_in_shell(typed([*build, f"[v.name for v in {call}]"])) == [f"v{i}" for i in got]


def test_stand_in_backpropagate_reproducer_gives_the_expected_derivatives(mt: Any) -> None:
    deriv = -0.5
    nodes, names = S.stand_ins(mt, GRAPH)
    mt.backpropagate(nodes[-1], deriv)
    leaves = [i for i, n in enumerate(GRAPH) if n[0] == "leaf"]
    lines = C.shell(*[nodes[i].derivative for i in leaves], names=names)
    shown = run_in_shell(
        typed([*lines[: -len(leaves)], "[" + ", ".join(lines[-len(leaves) :]) + "]"])
    )
    expected, _ = S.path_derivatives(GRAPH, deriv)
    assert shown == pytest.approx([expected[i] for i in leaves], rel=1e-12)


def test_central_difference_reproducer_gives_the_students_value(mt: Any) -> None:
    fn = S.DIFFERENTIABLES["sin_exp"]
    calls, got, names = S.central_differences(mt, fn, [([0.5, -1.0], 1, 0.25)])
    assert run_in_shell(typed(C.shell(calls[0], names=names))) == got[0]
