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
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

import support as S  # noqa: E402

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


def test_backpropagate_reproducer_gives_the_expected_derivatives() -> None:
    deriv = -0.5
    got = [None] * len(GRAPH)
    message = message_of(S.check_backpropagate, GRAPH, deriv, got, called="")
    derivatives = run_in_shell(shell_input(message))
    expected, _ = S.path_derivatives(GRAPH, deriv)
    leaves = [i for i, n in enumerate(GRAPH) if n[0] == "leaf"]
    assert derivatives == pytest.approx([expected[i] for i in leaves], rel=1e-12)


def test_expression_reproducer_gives_the_expected_derivatives() -> None:
    nodes = [["var", 0], ["var", 1], ["num", 1.5], ["add", 0, 2], ["log", 3], ["mul", 4, 1]]
    expr = S.Expression(nodes, [0.5, -2.0])
    out = expr.infos()[-1]
    d = 0.75
    reply = {
        "data": [info.value for info in expr.infos()],
        "grads": [0.0, 0.0],
        "reaches": [sorted(info.reaches) for info in expr.infos()],
        "points": [],
    }
    message = message_of(S.check_expression_gradients, expr, d, reply, what="w", points=False)
    assert run_in_shell(shell_input(message)) == pytest.approx([d * j for j in out.jac])


def test_scalar_function_reproducers_give_the_closed_forms() -> None:
    for snippet, expected in (
        (S.function_snippet("Log", [2.0]), S.FUNCTIONS["Log"].forward(2.0)),
        (S.function_snippet("Mul", [2.0, 3.0], 0.5), S.FUNCTIONS["Mul"].grads(2.0, 3.0, 0.5)),
        (S.apply_snippet("Inv", [4.0], 2.0), S.FUNCTIONS["Inv"].grads(4.0, 2.0)),
    ):
        message = "Reproduce it in a Python shell:\n" + "\n".join(S.shell_lines(snippet)[1:])
        shown = run_in_shell(shell_input(message))
        shown = list(shown) if isinstance(shown, (tuple, list)) else [shown]
        want = list(expected) if isinstance(expected, (tuple, list)) else [expected]
        assert shown == pytest.approx(want, rel=1e-6)  # the template's log(x + 1e-6)


# A graph with a Scalar made inside a node (``a - b`` is ``a + (-b)`` in the reference) and
# a number wrapped by apply, for the reproducers of backward judged in parts.
PARTS = S.Expression(
    [["var", 0], ["var", 1], ["num", 1.5], ["sub", 0, 1], ["mul", 3, 2], ["exp", 4]], [0.5, 0.25]
)


def _locals_reply(expr: S.Expression, wrong_at: int) -> tuple[list[float], dict[str, Any]]:
    """A reply of ``expression_locals`` as the reference gives it, except that the Neg made
    inside node ``wrong_at`` (a subtraction) returns 0.0."""
    infos = expr.infos()
    upstream = S.upstream_derivatives(expr, 0.75)
    local: list[Any] = []
    for j, node in enumerate(expr.nodes):
        if node[0] in ("var", "num"):
            local.append(None)
            continue
        a = infos[node[1]].value
        u = upstream[j]
        if node[0] == "sub":
            b = infos[node[2]].value
            local.append(
                [
                    {
                        "fn": "Add",
                        "path": [],
                        "inputs": [node[1], -1],
                        "data": [a, -b],
                        "grads": [u, u],
                    },
                    {
                        "fn": "Neg",
                        "path": [1],
                        "inputs": [node[2]],
                        "data": [b],
                        "grads": [0.0 if j == wrong_at else -u],
                    },
                ]
            )
        elif node[0] == "mul":
            b = infos[node[2]].value
            local.append(
                [
                    {
                        "fn": "Mul",
                        "path": [],
                        "inputs": [node[1], -1],
                        "data": [a, b],
                        "grads": [u * b, u * a],
                    }
                ]
            )
        else:
            local.append(
                [
                    {
                        "fn": "Exp",
                        "path": [],
                        "inputs": [node[1]],
                        "data": [a],
                        "grads": [u * S.math.exp(a)],
                    }
                ]
            )
    reply = {
        "data": [info.value for info in infos],
        "reaches": [sorted(info.reaches) for info in infos],
        "locals": local,
    }
    return upstream, reply


def test_backward_in_parts_reproducer_gives_the_expected_local_derivatives() -> None:
    upstream, reply = _locals_reply(PARTS, wrong_at=3)
    assert S.check_locals(PARTS, 0.75, upstream, _locals_reply(PARTS, -1)[1], what="w")
    message = message_of(S.check_locals, PARTS, 0.75, upstream, reply, what="w")
    assert "t3.history.inputs[1].history.last_fn._backward" in message
    shown = run_in_shell(shell_input(message))
    shown = list(shown) if isinstance(shown, (tuple, list)) else [shown]
    assert shown == pytest.approx([-upstream[3]], rel=1e-12)


class _Replies:
    """A stand-in for the student fixture that answers every call with ``reply``."""

    def __init__(self, reply: Any) -> None:
        self.reply = reply

    def call(self, probe: str, *args: Any, label: str | None = None) -> Any:
        return self.reply


def test_scalar_order_reproducer_names_the_graphs_scalars() -> None:
    nodes = PARTS.nodes
    wrong = [5, 4, 0, 1]  # leaves out t3 (and the reference's -b and Scalar(1.5))
    with pytest.raises(pytest.fail.Exception) as failed:
        S.check_scalar_order(_Replies(wrong), PARTS, called="")
    names = run_in_shell(shell_input(str(failed.value.msg)))
    index = {S._expression_name(nodes, j): j for j in range(len(nodes)) if nodes[j][0] != "num"}
    order = [index.get(name, -1) for name in names]
    assert -1 in order  # the Scalars made inside nodes are listed too
    assert S.scalar_order_problem(nodes, order) is None  # the reference is right


def test_expression_reproducer_leaves_out_operations_the_output_does_not_use() -> None:
    """A shrunk graph keeps operations nothing depends on (t3 here): the reproducer and the
    description of the call show only what y is computed from, and still give y's
    derivatives in the shell."""
    nodes = [["var", 0], ["var", 1], ["neg", 0], ["exp", 1], ["mul", 2, 1], ["log", 3]]
    nodes.append(["add", 4, 0])  # y = t4 + x0: t3 = x1.exp() and t5 = t3.log() are dead
    expr = S.Expression(nodes, [0.5, -2.0])
    infos = expr.infos()
    d = -1.5
    reply = {
        "data": [info.value for info in infos],
        "grads": [0.0, 0.0],
        "reaches": [sorted(info.reaches) for info in infos],
    }
    message = message_of(S.check_expression_gradients, expr, d, reply, what="w", points=False)
    lines = shell_input(message)
    assert "t2 = -x0" in lines and "t4 = t2 * x1" in lines and "y = t4 + x0" in lines
    assert "t3" not in message and "t5" not in message  # neither in the reproducer nor called
    assert run_in_shell(lines) == pytest.approx([d * j for j in infos[-1].jac])
    # A node of its own (a wrong forward value of t5, say) is shown with what it uses.
    assert S.expression_lines(nodes, expr.values, [len(nodes) - 1, 5])[-2:] == [
        "t5 = t3.log()",
        "y = t4 + x0",
    ]


def test_continued_reproducer_backpropagates_twice_through_shared_scalars() -> None:
    """The reproducer of test_backward_again_through_shared_scalars builds the first graph,
    runs backward on it, zeroes the leaves, builds the second graph on top of it and runs
    backward again: the reference (right) shows the second graph's derivatives."""
    nodes = [["var", 0], ["var", 1], ["mul", 0, 0], ["exp", 1]]  # t3 = x1.exp() is dead
    nodes += [["mul", 2, 1], ["num", 3.0], ["mul", 5, 4], ["add", 6, 0]]  # first graph: t4
    expr = S.Expression(nodes, [2.0, 0.5])
    k, d_first, d = 4, 0.5, -2.0
    infos = expr.infos()
    first = S.Expression(nodes[: k + 1], expr.values).infos()[-1]
    reply = {
        "data": [info.value for info in infos],
        "reaches": [sorted(info.reaches) for info in infos],
        "first": [d_first * j for j in first.jac],
        "grads": [0.0, 0.0],
    }
    message = message_of(S.continued_checked, _Replies(reply), expr, k, d_first, d, label="w")
    assert "on a second graph built on the first" in message
    lines = shell_input(message)
    assert lines[2:5] == ["t2 = x0 * x0", "t4 = t2 * x1", "t4.backward(0.5)"]
    assert lines[5].startswith("x0.derivative = None; x1.derivative = None")
    assert "t3" not in message
    assert run_in_shell(lines) == pytest.approx([d * j for j in infos[-1].jac])


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
    return shell_input("\n".join(S.shell_lines(lines)))


def test_stand_in_order_reproducer_builds_the_tests_graph(mt: Any) -> None:
    order, got, names = S.stand_in_order(mt, GRAPH)
    S.check_topological_order(GRAPH, got, called="")  # the reference is right
    *build, call = S.shell(order, names=names)
    assert run_in_shell(typed([*build, f"[v.name for v in {call}]"])) == [f"v{i}" for i in got]


def test_stand_in_backpropagate_reproducer_gives_the_expected_derivatives(mt: Any) -> None:
    deriv = -0.5
    nodes, names = S.stand_ins(mt, GRAPH)
    mt.backpropagate(nodes[-1], deriv)
    leaves = [i for i, n in enumerate(GRAPH) if n[0] == "leaf"]
    lines = S.shell(*[nodes[i].derivative for i in leaves], names=names)
    shown = run_in_shell(
        typed([*lines[: -len(leaves)], "[" + ", ".join(lines[-len(leaves) :]) + "]"])
    )
    expected, _ = S.path_derivatives(GRAPH, deriv)
    assert shown == pytest.approx([expected[i] for i in leaves], rel=1e-12)


def test_central_difference_reproducer_gives_the_students_value(mt: Any) -> None:
    fn = S.DIFFERENTIABLES["sin_exp"]
    calls, got, names = S.central_differences(mt, fn, [([0.5, -1.0], 1, 0.25)])
    assert run_in_shell(typed(S.shell(calls[0], names=names))) == got[0]
