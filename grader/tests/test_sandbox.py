"""The worker in both modes, on a small package of real student-style files.

These run real processes: the sandboxed worker drops privileges, gets rlimits, and is
killed on deadlines. Each case checks the message a student would read.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from grader.course.assignment import Limits, load_assignment, repo_root
from grader.isolation import SandboxConfig, StudentClient, kill_uid, open_to_worker
from grader.isolation.handles import Handle, Session, code, value
from grader.isolation.protocol import BadValue, ProbeTimeout, StudentError, WorkerCrashed

FILES = {
    "__init__.py": "from .ops import *\nfrom .broken import *\nfrom .slow import *\n",
    "ops.py": """
        import minitorch

        def mul(x, y):
            return x * y

        class Rigged(float):
            def __eq__(self, other):
                return True

        def rigged():
            return Rigged(1.0)

        def loop():
            while True:
                pass

        def die():
            import os
            os._exit(3)

        def via_package():
            return minitorch.mul(2.0, 4.0)

        def divide():
            return 1 / 0

        def read(path):
            with open(path) as fh:
                return fh.read()

        def spawn_sleeper():
            import subprocess
            return subprocess.Popen(["sleep", "300"]).pid

        def connect():
            import socket
            s = socket.create_connection(("127.0.0.1", 9), timeout=2)
            return "connected"

        def hog():
            return len(bytearray(4 * 1024 * 1024 * 1024))

        def burn(seconds):
            import time
            end = time.process_time() + seconds
            while time.process_time() < end:
                pass
            return 1

        def numpy_value():
            import numpy
            return [numpy.exp(0.0), numpy.int64(3), numpy.bool_(True)]

        def importable(name):
            import importlib.util
            return importlib.util.find_spec(name) is not None

        def nap(seconds):
            import time
            time.sleep(seconds)
            return 1

        def exists(path):
            import os
            return os.path.lexists(path)

        def listdir(path):
            import os
            try:
                return sorted(os.listdir(path))
            except OSError as exc:
                return type(exc).__name__

        def write(path, text):
            with open(path, "w") as fh:
                return fh.write(text)

        def use_broken():
            from minitorch import broken
            return 1

        def use_slow():
            from minitorch import slow
            return 1
    """,
    "broken.py": "def f(:\n    pass\n",
    "slow.py": "while True:\n    pass\n",
}


@pytest.fixture(scope="module")
def package():  # type: ignore[no-untyped-def]
    root = student_package("grader-test-student-", FILES)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def student_package(prefix: str, files: dict[str, str]) -> Path:
    """A student's ``minitorch/`` of ``files``, readable by the worker.

    Not in tmp_path: pytest's temp root is private (0700) and the worker's uid must read
    this, as it reads a real stage.
    """
    root = Path(tempfile.mkdtemp(prefix=prefix))
    (root / "minitorch").mkdir()
    for name, text in files.items():
        (root / "minitorch" / name).write_text(textwrap.dedent(text).lstrip("\n"))
    open_to_worker(root)
    return root


def handles(c: StudentClient) -> Handle:
    """A handle to the package ``c`` runs (what the ``mt`` fixture gives the tests)."""
    return Session(c.run, lambda: c.generation).package()


def ops(c: StudentClient) -> Handle:
    """``minitorch.ops`` of the package ``c`` runs (its __init__ imports it)."""
    return handles(c).ops


def module(c: StudentClient, name: str) -> Handle:
    """``minitorch.<name>``, imported by trusted text (a file the __init__ does not import)."""
    return code(handles(c), f"__import__('importlib').import_module('minitorch.{name}')")


def client(package: Path, mode: str, timeout: float = 1.0, python: str = "") -> StudentClient:
    return StudentClient(
        SandboxConfig(
            root=package,
            mode=mode,
            limits=Limits(probe_timeout=timeout, import_timeout=timeout, memory_mb=512),
            python=python,
        )
    )


@pytest.fixture(params=["sandbox", "inprocess"])
def worker(request: pytest.FixtureRequest, package: Path):  # type: ignore[no-untyped-def]
    with client(package, request.param) as c:
        yield c


def test_values_cross_and_files_import_independently(worker: StudentClient) -> None:
    assert value(ops(worker).mul(2.0, 3.0)) == 6.0
    # broken.py and slow.py fail, but ops.py still works, also through `minitorch.mul`.
    assert value(handles(worker).mul(2.0, 4.0)) == 8.0
    assert value(ops(worker).via_package()) == 8.0


def test_float_subclass_cannot_cross(worker: StudentClient) -> None:
    with pytest.raises(BadValue, match="subclass of float"):
        value(ops(worker).rigged())


def test_student_exception_keeps_only_student_frames(worker: StudentClient) -> None:
    with pytest.raises(StudentError) as info:
        value(ops(worker).divide())
    err = info.value
    assert err.type_name == "ZeroDivisionError"
    assert err.headline() == "ZeroDivisionError: division by zero"  # the test says what ran
    assert 'File "minitorch/ops.py"' in err.traceback
    assert "executor.py" not in err.traceback and "worker.py" not in err.traceback


def test_syntax_error_names_file_and_line(worker: StudentClient) -> None:
    for use in (ops(worker).use_broken(), module(worker, "broken")):
        with pytest.raises(StudentError) as info:
            value(use)
        assert info.value.message.startswith("minitorch/broken.py could not be imported")
        assert "SyntaxError" in info.value.message and "line 1" in info.value.message


def test_hang_at_import_blocks_only_that_file(worker: StudentClient) -> None:
    with pytest.raises(StudentError, match="slow.py could not be imported: it did not finish"):
        value(ops(worker).use_slow())
    start = time.monotonic()
    with pytest.raises(StudentError, match="did not finish"):
        value(module(worker, "slow"))
    assert time.monotonic() - start < 0.5  # remembered, not waited for again
    assert value(ops(worker).mul(1.0, 2.0)) == 2.0


def test_infinite_loop_times_out_then_fails_fast(worker: StudentClient) -> None:
    with pytest.raises(ProbeTimeout, match="timed out after 1 s in minitorch.ops.loop"):
        value(ops(worker).loop())
    start = time.monotonic()
    with pytest.raises(ProbeTimeout):
        value(ops(worker).loop())
    assert time.monotonic() - start < 0.5
    assert value(ops(worker).mul(3.0, 3.0)) == 9.0


def test_crash_is_reported_and_worker_restarts(package: Path) -> None:
    with client(package, "sandbox") as c:
        with pytest.raises(WorkerCrashed, match=r"died \(exit code 3\) in minitorch.ops.die"):
            value(ops(c).die())
        assert value(ops(c).mul(2.0, 2.0)) == 4.0


def test_budget_stops_every_later_call(package: Path) -> None:
    config = SandboxConfig(root=package, mode="sandbox", limits=Limits(budget=0.0))
    with StudentClient(config) as c:
        time.sleep(0.01)
        with pytest.raises(Exception, match="grading stopped after"):
            value(ops(c).mul(1.0, 1.0))


def test_budget_counts_the_workers_cpu_time_not_the_wall_clock(package: Path) -> None:
    # Without the package's hanging import (its preload alone would burn the budget).
    quiet = Path(tempfile.mkdtemp(prefix="grader-test-quiet-"))
    shutil.copytree(package / "minitorch", quiet / "minitorch")
    (quiet / "minitorch" / "__init__.py").write_text("from .ops import *\n")
    for name in ("slow.py", "broken.py"):
        (quiet / "minitorch" / name).unlink()
    # A budget of 2 s of CPU (6 s of wall clock): the naps and a worker start on a loaded
    # machine fit in the wall clock, the burn does not fit in the CPU time. Each call may
    # take 30 s: on a machine loaded three times over, 2.4 s of CPU take over 7 s of wall
    # clock, and the per-call deadline is not what this test is about.
    limits = Limits(budget=2.0, probe_timeout=30.0)
    config = SandboxConfig(root=quiet, limits=limits)
    with StudentClient(config) as c:
        # Waiting (a neighbour hogging the CPU looks the same from here) costs nothing...
        assert value(ops(c).nap(0.6)) == 1
        assert value(ops(c).nap(0.6)) == 1
        assert value(ops(c).mul(2.0, 2.0)) == 4.0
        # ...while the worker's own CPU time does.
        assert value(ops(c).burn(2.4)) == 1
        with pytest.raises(Exception, match="of CPU time"):
            value(ops(c).mul(1.0, 1.0))
    shutil.rmtree(quiet, ignore_errors=True)


def test_tree_cpu_counts_grandchildren_alive_and_reaped() -> None:
    """A worker's CPU time includes what its children burn, running or already waited for."""
    import subprocess
    import sys

    from grader.isolation import tree_cpu_seconds

    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\n"
    # The shell waits for one burner (reaped: its time moves to the shell's cutime) and
    # leaves a second one burning then sleeping (alive: counted from its own stat).
    script = (
        f"{sys.executable} -c '{burn}'; "
        f"{sys.executable} -c '{burn}import time; time.sleep(30)' & sleep 30"
    )
    proc = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while tree_cpu_seconds(proc.pid) < 1.1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert tree_cpu_seconds(proc.pid) >= 1.1
        assert tree_cpu_seconds(proc.pid) < 5.0
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


def test_memory_limit_turns_a_memory_bomb_into_an_error(package: Path) -> None:
    with client(package, "sandbox") as c:
        with pytest.raises((StudentError, WorkerCrashed)) as info:
            value(ops(c).hog())
        assert "MemoryError" in str(info.value) or "died" in str(info.value)


root_only = pytest.mark.skipif(os.geteuid() != 0, reason="privilege drop needs root")


@root_only
def test_worker_cannot_read_private_files(package: Path, tmp_path: Path) -> None:
    secret = tmp_path / "hidden_test.py"
    secret.write_text("ANSWERS = 42\n")
    secret.chmod(0o600)
    with client(package, "sandbox") as c:
        with pytest.raises(StudentError) as info:
            value(ops(c).read(str(secret)))
        assert info.value.type_name in ("PermissionError", "FileNotFoundError")
        with pytest.raises(StudentError):
            value(ops(c).read(str(Path(__file__).resolve())))  # the grader's own source


@root_only
def test_no_network_and_no_leftover_processes(package: Path) -> None:
    with client(package, "sandbox") as c:
        defences = c.defences()
        assert defences["unprivileged_uid"] and defences["no_network"]
        with pytest.raises(StudentError) as info:
            value(ops(c).connect())
        assert info.value.type_name in ("OSError", "ConnectionRefusedError", "TimeoutError")
        value(ops(c).spawn_sleeper())
        uid = c.worker_uid
        assert uid is not None
    assert kill_uid(uid) == 0  # close() already removed every process of the worker's uid


def test_runtime_packages_import_and_nothing_else_of_the_grader(package: Path) -> None:
    with client(package, "sandbox") as c:
        # numpy is the course's: importable, and its scalars cross as plain values
        assert value(ops(c).numpy_value()) == [1.0, 3, True]
        assert value(ops(c).importable("typing_extensions")) is True
        for name in ("pytest", "hypothesis", "grader", "rich"):
            assert value(ops(c).importable(name)) is False, name


# --------------------------------------------------------------- the view without bubblewrap
#: Run in a fresh interpreter (as root, or as an ordinary user): a worker started without
#: bubblewrap, asked what it can see. Prints what it saw as JSON.
VIEW_SCRIPT = """
import json, os, sys
from pathlib import Path
os.environ["GRADER_NO_BWRAP"] = "1"
from grader.course.assignment import Limits
from grader.isolation import SandboxConfig, StudentClient
from grader.isolation.handles import Session, value
package, sibling, checkout, host_shm, host_tmp, written = map(Path, sys.argv[1:7])
limits = Limits(probe_timeout=10.0, import_timeout=10.0, memory_mb=512)
with StudentClient(SandboxConfig(package, limits=limits)) as c:
    ops = Session(c.run, lambda: c.generation).package().ops
    def call(name, *args):
        return value(getattr(ops, name)(*args))
    checkout_files = (
        "tests/support.py", "grader/isolation/transport.py", "reference", "assignments", ".git"
    )
    seen = {
        "defences": c.defences(),
        "stage": call("exists", str(package / "minitorch" / "ops.py")),
        "sibling": call("exists", str(sibling)),
        "checkout": [rel for rel in checkout_files if call("exists", str(checkout / rel))],
        "host_files": [str(p) for p in (host_shm, host_tmp) if call("exists", str(p))],
        "/dev/shm": call("listdir", "/dev/shm"),
        "/var/tmp": call("listdir", "/var/tmp"),
        "/tmp": call("listdir", "/tmp"),
        "/dev": call("listdir", "/dev"),
        "/proc": call("exists", "/proc/1"),
        "wrote": call("write", str(written), "x"),
    }
print(json.dumps(seen))
"""


def _look_from_the_view(
    package: Path, as_uid: int | None, pythonpath: list[str] | None = None
) -> dict:
    """Run VIEW_SCRIPT on ``package`` (as ``as_uid`` when given, with ``pythonpath``) with a
    file beside the stage and files in the host's /dev/shm and /tmp; returns what the worker
    saw."""
    sibling = Path(tempfile.mkdtemp(prefix="grader-test-sibling-")) / "answers.py"
    sibling.write_text("ANSWERS = 42\n")
    host_shm = Path(tempfile.mkstemp(prefix="grader-test-host-", dir="/dev/shm")[1])
    host_tmp = Path(tempfile.mkstemp(prefix="grader-test-host-", dir="/tmp")[1])
    things = [sibling.parent, sibling, host_shm, host_tmp]
    for path in things:
        path.chmod(0o755 if path.is_dir() else 0o644)  # readable: only the view may hide them
    python, env = sys.executable, dict(os.environ)
    preexec = None
    if as_uid is not None:
        from grader.isolation import worker_python

        python = worker_python(as_uid)  # the interpreter other users can run
        site = [p for p in sys.path if p.endswith("site-packages")]
        env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
        env["PYTHONPATH"] = ":".join(pythonpath or [str(repo_root()), *site])

        def preexec() -> None:
            os.setgroups([])
            os.setgid(as_uid)
            os.setuid(as_uid)

    written = Path(f"/tmp/grader-test-written-in-the-view-{os.getpid()}-{time.monotonic_ns()}")
    argv = [str(p) for p in (package, sibling, repo_root(), host_shm, host_tmp, written)]
    try:
        proc = subprocess.run(
            [python, "-c", VIEW_SCRIPT, *argv],
            capture_output=True,
            text=True,
            env=env,
            preexec_fn=preexec,
            cwd="/",
            timeout=300,
        )
    finally:
        shutil.rmtree(sibling.parent, ignore_errors=True)
        host_shm.unlink(missing_ok=True)
        host_tmp.unlink(missing_ok=True)
        on_the_host = written.exists()
        written.unlink(missing_ok=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {**json.loads(proc.stdout.splitlines()[-1]), "written_on_the_host": on_the_host}


def _assert_allowlist_view(seen: dict, package: Path, runtime_in_tmp: str = "") -> None:
    assert seen["defences"]["view"] == "namespaces", seen["defences"]
    assert seen["defences"]["private_filesystem"] is True
    assert seen["defences"]["no_network"] is True
    assert seen["stage"] is True
    assert seen["sibling"] is False
    assert seen["checkout"] == []
    assert seen["host_files"] == []
    assert seen["/dev/shm"] == [] and seen["/var/tmp"] == []
    # /tmp is private: only the stage's and the worker's own folders are mounted there (and
    # the runtime packages, read-only, when they live under /tmp)
    top = package.relative_to("/tmp").parts[0]
    allowed = {top, runtime_in_tmp} - {""}
    assert all(n in allowed or n.startswith("grader-worker-") for n in seen["/tmp"]), seen["/tmp"]
    assert set(seen["/dev"]) <= {"null", "zero", "full", "random", "urandom", "shm"}, seen["/dev"]
    assert seen["/proc"] is False
    assert seen["wrote"] == 1 and seen["written_on_the_host"] is False


@root_only
def test_without_bubblewrap_the_worker_sees_an_allowlist_view_as_root(package: Path) -> None:
    """The stage and nothing beside it: not a folder next to the stage, not the grader's
    checkout, not the host's /tmp or /dev/shm (private ones, empty), no /proc."""
    seen = _look_from_the_view(package, None)
    _assert_allowlist_view(seen, package)
    assert seen["defences"]["unprivileged_uid"] is True


@root_only
def test_without_bubblewrap_the_worker_sees_an_allowlist_view_as_an_ordinary_user() -> None:
    """The same view built through a user namespace, by a grader that is not root."""
    nobody = 65534
    from grader.isolation import readable_by_others

    root = Path(tempfile.mkdtemp(prefix="grader-test-user-"))
    # The grader as an ordinary user sees it: the package and the runtime packages, copied
    # where every user can read them (a checkout or its environment may sit in a private
    # folder, as CI's fresh clone does).
    shared = Path(tempfile.mkdtemp(prefix="grader-test-user-code-"))
    try:
        shutil.copytree(
            repo_root() / "grader",
            shared / "grader",
            ignore=shutil.ignore_patterns("tests", "__pycache__"),
        )
        site = next(Path(p) for p in sys.path if p.endswith("site-packages"))
        for pattern in ("numpy", "numpy.libs", "numpy-*.dist-info", "typing_extensions*"):
            for found in site.glob(pattern):
                copy = shutil.copytree if found.is_dir() else shutil.copyfile
                copy(found, shared / found.name)
        open_to_worker(shared)
        assert readable_by_others(shared / "grader" / "isolation" / "transport.py")
        (root / "minitorch").mkdir()
        for name, text in FILES.items():
            (root / "minitorch" / name).write_text(textwrap.dedent(text))
        for path in [root, *root.rglob("*")]:
            os.chown(path, nobody, nobody)
        seen = _look_from_the_view(root, nobody, [str(shared)])
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(shared, ignore_errors=True)
    _assert_allowlist_view(seen, root, runtime_in_tmp=shared.name)
    assert seen["defences"]["unprivileged_uid"] is False


@root_only
def test_every_worker_start_gets_a_new_empty_memory_cgroup(package: Path) -> None:
    """Round 3, mechanism 5: a group is never used twice, so what one worker left charged
    there (files in a shared /dev/shm) cannot spend the memory of the next; each is deleted
    once its worker is gone."""
    with client(package, "sandbox") as c:
        assert value(ops(c).mul(1.0, 2.0)) == 2.0
        first = c._conn.cgroup
        if first is None:
            pytest.skip("no writable memory cgroups here")
        assert first.is_dir() and first.name.startswith(f"{c.worker_uid}-")
        with pytest.raises(WorkerCrashed):
            value(ops(c).die())
        assert value(ops(c).mul(2.0, 2.0)) == 4.0
        second = c._conn.cgroup
        assert second is not None and second != first
        assert not first.exists()
    assert not second.exists()


@root_only
def test_without_a_view_the_workers_files_go_with_it(tmp_path: Path) -> None:
    """Inside a container the worker writes into the /tmp the grader uses too: what its uid
    made there is deleted when it is stopped (files, folders, links: never followed)."""
    from grader.isolation import remove_files_of

    uid, other = 64163, 64162
    place = tmp_path / "tmp"
    (place / "folder").mkdir(parents=True)
    (place / "folder" / "inner").write_text("x")
    (place / "fill").write_text("x" * 1000)
    keep = tmp_path / "keep.txt"
    keep.write_text("the grader's")
    (place / "link").symlink_to(keep)
    (place / "someone-else").write_text("y")
    for path in (place / "folder", place / "folder" / "inner", place / "fill", place / "link"):
        os.chown(path, uid, uid, follow_symlinks=False)
    os.chown(place / "someone-else", other, other)
    assert remove_files_of(uid, (str(place),)) == 3
    assert sorted(os.listdir(place)) == ["someone-else"]
    assert keep.read_text() == "the grader's"


# What student code can read of what runs it: every file on its stack, the source of every
# function in those frames' globals, and the files beside the worker's own.
SPY = """
import inspect
import os
import sys


def around():
    parts, frame = [], sys._getframe(0)
    # The frames of the student's files and of what runs them (the executor's folder);
    # in-process, the grader's own (pytest, the client) lie further down, not in the worker.
    home = os.path.dirname(sys._getframe(1).f_code.co_filename)
    mine = os.path.dirname(frame.f_code.co_filename)
    while frame is not None and os.path.dirname(frame.f_code.co_filename) in (home, mine):
        try:
            with open(frame.f_code.co_filename, encoding="utf-8") as fh:
                parts.append(fh.read())
        except OSError:
            pass
        for value in list(frame.f_globals.values()):
            if inspect.isfunction(value):
                try:
                    parts.append(inspect.getsource(value))
                except (OSError, TypeError):
                    pass
        folder = os.path.dirname(frame.f_code.co_filename)
        try:
            parts.append("\\n".join("file: " + n for n in sorted(os.listdir(folder))))
        except OSError:
            pass
        frame = frame.f_back
    return "\\n".join(parts)
"""


def _grader_only_lines(text: str) -> set[str]:
    lines, inside = set(), False
    for line in text.splitlines():
        if line.strip() in ("# BEGIN GRADER-ONLY", "# END GRADER-ONLY"):
            inside = line.strip() == "# BEGIN GRADER-ONLY"
        elif inside and line.strip() and not line.strip().startswith("#"):
            lines.add(line.strip())
    return lines


@pytest.mark.parametrize("mode", ["sandbox", "inprocess"])
def test_the_worker_holds_no_grader_data(mode: str) -> None:
    """What runs student code is the generic executor and the operations of the batch it
    runs: whatever student code reads around it (the stack, its files, the folder beside
    them), it finds no probe, no test or support file, no grader-only line and no line of
    any solution region of the reference (docker mode grades with --mode sandbox inside
    its container: the same worker)."""
    from test_handout import solution_only_lines

    root = Path(tempfile.mkdtemp(prefix="grader-test-spy-"))
    try:
        (root / "minitorch").mkdir()
        (root / "minitorch" / "__init__.py").write_text("")
        (root / "minitorch" / "operators.py").write_text(SPY)
        open_to_worker(root)
        with StudentClient(SandboxConfig(root=root, mode=mode)) as c:
            text = value(handles(c).operators.around())
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert "def around(" in text and "class Executor" in text  # it read its stack
    assert "file: probes.py" not in text and "file: support.py" not in text
    read = {line.strip() for line in text.splitlines()}
    tests = repo_root() / "tests"
    course = "\n".join(p.read_text(encoding="utf-8") for p in sorted(tests.rglob("*.py")))
    hidden = {line for line in _grader_only_lines(course) if len(line) >= 12}
    assert hidden and not (hidden & read)
    checked = 0
    for name in ("module0", "module1", "module2"):
        a = load_assignment(name)
        for rel in (*a.editable, *a.stubbed):
            lines = solution_only_lines(a.reference_file(rel).read_text("utf-8"), rel)
            meaningful = {ln for ln in lines if len(ln) >= 12 and not ln.startswith("#")}
            assert not sorted(meaningful & read), f"solution lines of {rel} in the worker"
            checked += len(meaningful)
    assert checked > 0


# ------------------------------------------ packages the runtime lacks, and newer syntax
STRAY_FILES = {
    "__init__.py": "",
    "stray.py": """
        import pandas
        import matplotlib.pyplot as plt
        from toposort import toposort
        from beartype.typing import List

        def mul(x: float, y: float) -> float:
            return x * y

        def frame():
            return pandas.DataFrame({"a": [1.0]})

        def annotated(df: pandas.DataFrame | None = None) -> List[float]:
            return [1.0]

        def subclass():
            class Frame(pandas.DataFrame):
                pass

        def try_everything():
            # Every way out of a placeholder fails, with the placeholder's message.
            tries = {
                "call": lambda: toposort({}),
                "iterate": lambda: list(pandas),
                "number": lambda: float(pandas.NA),
                "arithmetic": lambda: pandas.NA + 1,
                "isinstance": lambda: isinstance(1.0, pandas.DataFrame),
                "subclass": subclass,
                "dunder": lambda: pandas.__file__,
                "bool": lambda: bool(plt),
            }
            said = {}
            for name, attempt in tries.items():
                try:
                    attempt()
                    said[name] = "no error"
                except Exception as exc:
                    said[name] = f"{type(exc).__name__}: {exc}"
            return said
    """,
    "decorated.py": """
        from beartype import beartype

        @beartype
        def mul(x: float, y: float) -> float:
            return x * y
    """,
    "guarded.py": """
        try:
            import numba
        except ImportError:
            numba = None

        def has_numba():
            return numba is not None
    """,
    "generic.py": """
        from collections.abc import Callable, Iterable


        def mul(x: float, y: float) -> float:
            return x * y


        def map[T, U](fn: Callable[[T], U]) -> Callable[[Iterable[T]], list[U]]:
            return lambda ls: [fn(x) for x in ls]
    """,
}


@pytest.fixture(scope="module")
def stray():  # type: ignore[no-untyped-def]
    root = student_package("grader-test-stray-", STRAY_FILES)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _stray_client(root: Path, mode: str) -> StudentClient:
    return client(root, mode, timeout=5.0, python="3.11")


@pytest.mark.parametrize("mode", ["sandbox", "inprocess"])
def test_an_unused_import_of_a_missing_package_is_a_note_not_a_lost_file(
    stray: Path, mode: str
) -> None:
    """`import pandas` that nothing uses: the file imports, its functions are graded, and
    the client has one note per package naming the file (the report's top shows them)."""
    with _stray_client(stray, mode) as c:
        assert value(module(c, "stray").mul(2.0, 3.0)) == 6.0
        assert value(module(c, "stray").annotated()) == [1.0]  # annotations are no use
        notes = {p.key: p for p in c.problems.values() if p.kind == "note"}
    assert set(notes) == {"pandas", "matplotlib", "toposort", "beartype"}
    assert notes["pandas"].message == (
        "Note: minitorch/stray.py imports pandas, which is not available when grading "
        "(graded code can use the standard library, numpy and typing_extensions). The file "
        "was graded anyway; only a test that reaches a use of pandas fails. Remove the "
        "import if you do not need it."
    )
    assert not any(p.kind != "note" for p in c.problems.values())


@pytest.mark.parametrize("mode", ["sandbox", "inprocess"])
def test_using_a_missing_package_fails_that_call_with_the_placeholders_message(
    stray: Path, mode: str
) -> None:
    with _stray_client(stray, mode) as c:
        with pytest.raises(StudentError) as info:
            value(module(c, "stray").frame())
        said = value(module(c, "stray").try_everything())
        assert value(module(c, "stray").mul(1.0, 2.0)) == 2.0  # the rest still runs
    err = info.value
    assert err.type_name == "PackageNotAvailable"
    assert err.message == (
        "your code used pandas.DataFrame(...), but pandas is not available when grading "
        "(graded code can use the standard library, numpy and typing_extensions): remove "
        "the import of pandas from minitorch/stray.py, or stop using it"
    )
    assert 'File "minitorch/stray.py"' in err.traceback
    # Fail-closed: no operation gives anything real back.
    for name, text in said.items():
        assert "is not available when grading" in text, (name, text)
        assert text.startswith(("PackageNotAvailable:", "AttributeError:")), (name, text)


@pytest.mark.parametrize("mode", ["sandbox", "inprocess"])
def test_a_decorator_of_a_missing_package_is_a_use_at_import(stray: Path, mode: str) -> None:
    """`@beartype` runs while the file loads: that file does not import, and says why."""
    with _stray_client(stray, mode) as c:
        with pytest.raises(StudentError) as info:
            value(module(c, "decorated").mul(2.0, 3.0))
    message = info.value.message
    assert message.startswith(
        "minitorch/decorated.py could not be imported: while it loaded, your code used "
        "beartype.beartype(...), but beartype is not available when grading"
    ), message
    assert 'File "minitorch/decorated.py", line 3' in message


@pytest.mark.parametrize("mode", ["sandbox", "inprocess"])
def test_an_import_guarded_by_except_importerror_keeps_the_students_fallback(
    stray: Path, mode: str
) -> None:
    with _stray_client(stray, mode) as c:
        assert value(module(c, "guarded").has_numba()) is False
        assert "note:numba" not in c.problems


@pytest.mark.parametrize("mode", ["sandbox", "inprocess"])
def test_a_file_with_newer_syntax_names_the_python_and_the_line(stray: Path, mode: str) -> None:
    if sys.version_info >= (3, 12):  # the syntax exists here: the file imports and works
        with _stray_client(stray, mode) as c:
            assert value(module(c, "generic").mul(2.0, 3.0)) == 6.0
        return
    with _stray_client(stray, mode) as c:
        with pytest.raises(StudentError) as info:
            value(module(c, "generic").mul(2.0, 3.0))
    assert info.value.message == (
        "minitorch/generic.py could not be imported: it uses Python 3.12 syntax (line 8: a "
        "generic function `def map[...]`), and this course grades with Python 3.11: write "
        "it without type parameters, as `def map(...)`\n"
        "    def map[T, U](fn: Callable[[T], U]) -> Callable[[Iterable[T]], list[U]]:"
    )
