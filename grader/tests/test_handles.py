"""Handles over the reference package, in both modes: what crosses, in how many trips,
what a fault fails, what a reproducer says, and what the executor refuses."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.course.assignment import Limits, repo_root
from grader.isolation import SandboxConfig, StudentClient, open_to_worker
from grader.isolation.handles import (
    Session,
    code,
    culprit,
    identity,
    outcomes,
    reproducer,
    value,
    values,
)
from grader.isolation.protocol import BadValue, ProbeTimeout, StudentError, WorkerCrashed

REFERENCE = repo_root() / "reference" / "minitorch"


@pytest.fixture(scope="module")
def package() -> Iterator[Path]:
    # Not in tmp_path: pytest's temp root is private, and the worker's uid must read this.
    root = Path(tempfile.mkdtemp(prefix="grader-test-handles-"))
    shutil.copytree(REFERENCE, root / "minitorch")
    open_to_worker(root)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["inprocess", "sandbox"])
def client(request: pytest.FixtureRequest, package: Path) -> Iterator[StudentClient]:
    limits = Limits(probe_timeout=2.0, import_timeout=5.0, memory_mb=512)
    config = SandboxConfig(root=package, mode=request.param)
    with StudentClient(config.__class__(**{**config.__dict__, "limits": limits})) as c:
        yield c


@pytest.fixture
def mt(client: StudentClient):  # type: ignore[no-untyped-def]
    return Session(client.run, lambda: client.generation).package()


def chain(mt, n: int):  # type: ignore[no-untyped-def]
    """n leaves and an expression using each of them: about 4 n operations."""
    leaves = [mt.Scalar(1.0 + i / n) for i in range(n)]
    out = leaves[0]
    for leaf in leaves[1:]:
        out = out * leaf + leaf.log()
    return leaves, out


def test_a_graph_of_200_leaves_and_its_backward_is_one_round_trip(client, mt) -> None:  # type: ignore[no-untyped-def]
    value(mt.Scalar(1.0).data)  # starts the worker and imports the package
    before = client.calls
    leaves, out = chain(mt, 200)
    out.backward()
    derivatives = values(out.data, *[leaf.derivative for leaf in leaves])
    assert client.calls - before == 1
    assert all(type(d) is float for d in derivatives)
    # the last leaf x enters as ... * x + log(x): its derivative is (what came before) + 1/x
    before_last = out.history.inputs[0].history.inputs[0]
    assert derivatives[-1] == pytest.approx(value(before_last.data) + 1 / 2.0 * (200 / 199))


def test_values_are_plain_data_and_objects_stay_behind(mt) -> None:  # type: ignore[no-untyped-def]
    assert value(mt.operators.mul(2.0, 3.0)) == 6.0
    assert value(code(mt, "__import__('numpy').float64(2.5)")) == 2.5  # numpy made plain
    with pytest.raises(BadValue, match="minitorch.Scalar.*is a minitorch.scalar.Scalar"):
        value(mt.Scalar(1.0))
    with pytest.raises(TypeError, match="plain values and handles"):
        mt.Scalar(object())
    with pytest.raises(TypeError, match="value\\(h\\)"):
        bool(mt.Scalar(1.0) < mt.Scalar(2.0))


def test_a_fault_fails_only_what_depends_on_it(mt) -> None:  # type: ignore[no-untyped-def]
    bad, good = outcomes(mt.operators.log(-1.0), mt.operators.mul(2.0, 3.0))
    assert isinstance(bad, StudentError) and bad.type_name == "ValueError"
    assert good == 6.0
    # A call that raised fails what is read afterwards from the objects it was called on.
    thing = code(mt, "class T:\n  d = 1.0\n  def go(self):\n    raise KeyError('no')\n", "T")()
    thing.go()
    with pytest.raises(StudentError, match="KeyError"):
        value(thing.d)
    assert value(mt.Scalar(4.0).data) == 4.0


def test_identity_tells_objects_apart_without_their_eq(mt) -> None:  # type: ignore[no-untyped-def]
    x = mt.Scalar(1.0)
    y = x * 2.0
    ids = values(identity(x), identity(y), identity(y.history.inputs[0]))
    assert ids[0] != ids[1] and ids[2] == ids[0]


def test_the_reproducer_rebuilds_the_value_in_a_shell(mt, package: Path) -> None:  # type: ignore[no-untyped-def]
    x, y = mt.Scalar(1.5), mt.Scalar(-2.0)
    z = x * y + x.log()
    z.backward(3.0)
    assert value(y.sigmoid().data) < 0.5  # a result read, not a statement: left out
    got = value(x.derivative)
    lines = reproducer(x.derivative, names={x: "x"})
    assert lines[0] == "import minitorch"
    assert "x = minitorch.Scalar(1.5)" in lines
    assert any(line.endswith(".backward(3.0)") for line in lines)
    assert not any("sigmoid" in line for line in lines)
    script = "\n".join([*lines[:-1], f"print(repr({lines[-1]}))"])
    shown = subprocess.run(
        [sys.executable, "-c", script], cwd=package, capture_output=True, text=True, check=True
    )
    assert float(shown.stdout) == got


def test_an_attribute_assignment_runs_in_the_worker_and_reads_as_one(mt) -> None:  # type: ignore[no-untyped-def]
    root, child = mt.Module(), mt.Module()
    root.layer = child  # the student's Module.__setattr__ registers the child
    p = mt.Parameter(2.5)
    child.weight = p
    named = root.named_parameters()
    assert value(code(mt, "lambda ps: [n for n, _ in ps]")(named)) == ["layer.weight"]
    lines = reproducer(named, names={root: "root", child: "child"})
    assert "root.layer = child" in lines and any(
        line.startswith("child.weight = ") for line in lines
    )
    assert not any("setattr" in line for line in lines)


def test_the_executor_refuses_numbers_it_did_not_issue(client: StudentClient) -> None:
    with pytest.raises(StudentError, match="UnknownHandle"):
        client.run({"ops": [[7, "getattr", {"$h": 999}, "x"]], "want": [7]}, "test")
    with pytest.raises(StudentError, match="UnknownHandle"):
        client.run({"ops": [[8, "root"], [8, "root"]], "want": []}, "test")
    with pytest.raises(StudentError, match="UnknownHandle"):
        client.run({"ops": [[9, "builtin", "exec"]], "want": [9]}, "test")


def test_a_hang_and_a_crash_fail_their_values_and_later_ones_say_why(client, mt) -> None:  # type: ignore[no-untyped-def]
    x = mt.Scalar(2.0)
    assert value(x.data) == 2.0
    with pytest.raises(ProbeTimeout, match="timed out after 2 s"):
        value(code(mt, "def spin():\n    while True:\n        pass\n", "spin")())
    if client.config.mode == "sandbox":
        with pytest.raises(WorkerCrashed):
            value(code(mt, "__import__('os')._exit(3)"))
        with pytest.raises(WorkerCrashed, match="was restarted"):
            value(x.data)  # made by a worker that is gone
    assert value(mt.Scalar(5.0).data) == 5.0


def test_a_batch_that_hangs_names_the_call_that_hung(client, mt) -> None:  # type: ignore[no-untyped-def]
    """Every value of a batch that ran out of time fails; the report names the call that
    was running (the worker tells which), not the batch's first or last one."""
    spin = code(mt, "def spin(xs):\n    while len(xs) >= 3:\n        pass\n", "spin")
    calls = [spin([1.0]), spin([1.0, 2.0]), spin([1.0, 2.0, 3.0]), spin([4.0])]
    got = outcomes(*calls)
    assert all(isinstance(g, ProbeTimeout) for g in got), got
    hung = culprit(got[0], calls[0])
    assert reproducer(hung)[-1] == "spin([1.0, 2.0, 3.0])"
    assert culprit(got[3], calls[3]) is not calls[3]


def test_printing_a_handle_runs_nothing() -> None:
    """hypothesis prints a failing example's arguments (the ``mt`` fixture's handle among
    them) through a ``_repr_pretty_`` hook: a handle has none, and records nothing."""
    from hypothesis.vendor.pretty import pretty

    session = Session(lambda message, label, label_of: pytest.fail(f"{message} was sent"))
    mt = session.package()
    assert pretty(mt) == "<handle minitorch>"
    assert pretty(mt.Scalar(2.0)) == "<handle minitorch.Scalar(2.0)>"


def test_a_falsifying_example_is_named_after_its_test() -> None:
    """Each example starts afresh (``reset_each_example``) and is still told by its test's
    name: "Falsifying example: test_small(...)"."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from grader.isolation.handles import reset_each_example

    @settings(database=None, derandomize=True)
    @given(st.integers(0, 100))
    def test_small(x: int) -> None:
        assert x < 5

    reset_each_example(test_small, Session(lambda message, label, label_of: pytest.fail("sent")))
    with pytest.raises(AssertionError) as info:
        test_small()
    assert any("Falsifying example: test_small(" in n for n in info.value.__notes__)


def test_a_failed_call_of_a_shared_trusted_function_fails_only_its_own_value(mt) -> None:  # type: ignore[no-untyped-def]
    twice = code(mt, "lambda s: s * 2.0")
    bad = twice(mt.operators.log(-1.0))  # its input raised: skipped, never read
    good = twice(mt.Scalar(1.5)).data
    outcome_bad, outcome_good = outcomes(bad, good)
    assert isinstance(outcome_bad, StudentError) and outcome_good == 3.0
    assert value(twice(mt.Scalar(2.0)).data) == 4.0  # the failed call is not its statement
