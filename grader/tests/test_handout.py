"""The hand-out generator (grader/handout.py).

Two courses go through the same checks: a small fake one written here (so every rule is
pinned, whatever state the real course is in) and the real module0/module1 from
reference/ + assignments/ + tests/ (failing, with the reason, while parts are missing).

The checks: no solution line reaches a student file, hidden tests stay out, two runs give
identical bytes and modes, `import minitorch` works in the hand-out, and every function a
student must write raises NotImplementedError naming its task.
"""

from __future__ import annotations

import argparse
import ast
import configparser
import difflib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from grader.course import handout
from grader.course.assignment import Assignment, load_assignment
from grader.course.handout import (
    COMPANIONS,
    MARKER_FILE,
    PLUGIN_FILE,
    PLUGIN_MODULE,
    PLUGIN_SOURCE,
    generate,
)
from grader.course.skeleton import display_name, solution_regions
from grader.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


# --- checks shared by the fake and the real course ------------------------------------------


def solution_only_lines(text: str, rel: str) -> set[str]:
    """Stripped code lines of the regions that appear nowhere outside a region.

    A line such as ``return x`` may legitimately sit outside a region of the same file (the
    skeleton keeps it); only those are exempt, so the check cannot pass by ignoring lines.
    """
    regions = solution_regions(text, rel)
    inside_numbers = {n for r in regions for n in range(r.start, r.end + 1)}
    outside = {
        line.strip() for n, line in enumerate(text.splitlines(), start=1) if n not in inside_numbers
    }
    inside = {line.strip() for r in regions for line in r.code_lines()}
    return inside - outside


def check_no_solution_lines(assignment: Assignment, out: Path) -> int:
    """No solution line in its hand-out file, nor (if distinctive) in any non-test file.

    Returns how many distinct lines were checked, so callers can insist on a real count.
    """
    non_test_files = [
        p
        for p in out.rglob("*")
        if p.is_file()
        and p.relative_to(out).parts[0] != "tests"
        and p.relative_to(out).as_posix() not in assignment.solved
        and p.suffix != ".zip"
    ]
    test_files = [
        p for p in out.rglob("*") if p.is_file() and p.relative_to(out).parts[0] == "tests"
    ]
    assert test_files, "the hand-out has no tests folder: nothing to compare"
    checked = compared_in_tests = 0
    for rel in (*assignment.editable, *assignment.stubbed):
        lines = solution_only_lines(assignment.reference_file(rel).read_text("utf-8"), rel)
        shipped = {ln.strip() for ln in (out / rel).read_text("utf-8").splitlines()}
        leaked = sorted(lines & shipped)
        assert not leaked, f"{rel} in the hand-out contains solution lines: {leaked}"
        distinctive = {ln for ln in lines if len(ln) >= 20}
        for other in non_test_files:
            text = {ln.strip() for ln in other.read_text("utf-8", "replace").splitlines()}
            leaked = sorted(distinctive & text)
            assert not leaked, f"{other.relative_to(out)} contains solution lines of {rel}"
        # Tests and helpers too: a stand-in or closed form of a task the student still
        # writes (e.g. a working chain_rule in support.py) is a solution in the hand-out.
        # Trivial lines (``return x``, ``pass``) say nothing; every other line counts.
        meaningful = {ln for ln in lines if len(ln) >= 12 and not ln.startswith("#")}
        for other in test_files:
            text = {ln.strip() for ln in other.read_text("utf-8", "replace").splitlines()}
            leaked = sorted(meaningful & text)
            assert not leaked, f"{other.relative_to(out)} has solution lines of {rel}: {leaked}"
            compared_in_tests += len(meaningful)
        checked += len(lines)
    assert compared_in_tests > 0, "no solution line was compared with the hand-out's tests"
    return checked


def defined_test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text("utf-8"))
    return {
        n.name
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef) and n.name.startswith("test")
    }


def check_hidden_absent(assignment: Assignment, out: Path) -> None:
    assert not (out / "tests" / "hidden").exists()
    names = {p.name for p in out.rglob("*")}
    for rel in assignment.hidden_tests:
        assert Path(rel).name not in names, f"hidden test file {rel} is in the hand-out"
    public = set().union(*(defined_test_names(p) for p in assignment.test_files(False)))
    hidden_only = set().union(
        *(defined_test_names(assignment.tests_dir / rel) for rel in assignment.hidden_tests)
    )
    hidden_only -= public
    for path in out.rglob("*"):
        if path.is_file() and path.suffix != ".zip":
            text = path.read_text("utf-8", "replace")
            named = sorted(n for n in hidden_only if re.search(rf"\b{re.escape(n)}\b", text))
            assert not named, f"{path.relative_to(out)} names hidden tests {named}"


def snapshot(out: Path) -> dict[str, tuple[bytes | None, int]]:
    """Every file and folder of a tree: bytes (None for folders) and permission bits."""
    tree = {}
    for path in sorted(out.rglob("*")):
        mode = stat.S_IMODE(path.lstat().st_mode)
        tree[path.relative_to(out).as_posix()] = (
            path.read_bytes() if path.is_file() else None,
            mode,
        )
    return tree


#: What this run's environment holds and a student's shell does not: path and grader
#: overrides, and the variables of the `make` that runs these tests (a nested make would
#: print its "Entering directory" lines).
NOT_A_STUDENTS = ("PYTHONPATH", "GRADER_ROOT", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")


def clean_env() -> dict[str, str]:
    """The environment of a student shell: no path or grader overrides from this run."""
    env = {k: v for k, v in os.environ.items() if k not in NOT_A_STUDENTS}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_python(out: Path, code: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=out,
        input=stdin,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
    )


def check_imports(out: Path) -> None:
    # Every module's package: module 1's Scalar or module 2's Tensor, when it has them.
    made = "(minitorch.Scalar(1.0).data if hasattr(minitorch, 'Scalar') else 1.0)"
    if_tensor = "(len(minitorch.tensor([1.0]).shape) if hasattr(minitorch, 'Tensor') else 1.0)"
    check = f"import minitorch; print(float({made} * {if_tensor}))"
    proc = run_python(out, check)
    assert proc.returncode == 0, f"import minitorch failed in the hand-out:\n{proc.stderr}"
    assert proc.stdout.strip() == "1.0"


# Calls each function a student writes with harmless arguments, in the hand-out, and reports
# what happened as JSON. Arguments are chosen by parameter name; `self` is built per class.
CALL_EVERY_STUDENT_FUNCTION = r"""
import importlib, inspect, json, sys

import minitorch


def leaf():
    return minitorch.Scalar(2.0)


def node():
    # A Scalar made by a function, built by hand: the skeleton's forward functions raise.
    ctx = minitorch.Context()
    ctx.save_for_backward(2.0, 3.0)
    history = minitorch.ScalarHistory(minitorch.Mul, ctx, (leaf(), minitorch.Scalar(3.0)))
    return minitorch.Scalar(6.0, history)


def context():
    ctx = minitorch.Context()
    ctx.save_for_backward(2.0, 3.0)
    return ctx


BY_NAME = {
    "ctx": context,
    "fn": lambda: (lambda *args: 1.0),
    "f": lambda: (lambda *args: 1.0),
    "ls": lambda: [1.0, 2.0],
    "ls1": lambda: [1.0, 2.0],
    "ls2": lambda: [3.0, 4.0],
    "variable": node,
    "start": lambda: 0.0,
    "name": lambda: "p",
    "key": lambda: "p",
    "k": lambda: "p",
    "order": lambda: 0,  # TensorData.permute(*order) of a one-dimensional TensorData
}
INSTANCES = {
    "Scalar": node,
    "Context": context,
    "Module": lambda: minitorch.Module(),
    "Parameter": lambda: minitorch.Parameter(1.0),
    "TensorData": lambda: minitorch.TensorData([1.0, 2.0], (2,)),
}


def arguments(fn):
    args = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            args.append(BY_NAME.get(p.name, lambda: 2.0)())
        elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty:
            args.append(BY_NAME.get(p.name, lambda: 2.0)())
    return args


def resolve(module_name, qualname):
    module = importlib.import_module(module_name)
    parts = qualname.split(".")
    if len(parts) == 1:
        return getattr(module, parts[0])
    cls = getattr(module, parts[0])
    raw = inspect.getattr_static(cls, parts[1])
    if isinstance(raw, (staticmethod, classmethod)):
        return getattr(cls, parts[1])
    instance = INSTANCES.get(cls.__name__, cls)()
    if isinstance(raw, property):
        return lambda: getattr(instance, parts[1])
    return getattr(instance, parts[1])


results = []
for module_name, qualname in json.load(sys.stdin):
    try:
        result = resolve(module_name, qualname)
        for _ in range(3):  # curried functions (map(fn)(ls)) raise on the inner call
            result = result(*arguments(result))
            if not callable(result):
                break
    except NotImplementedError as exc:
        results.append([qualname, "NotImplementedError", str(exc)])
    except BaseException as exc:
        results.append([qualname, type(exc).__name__, str(exc)])
    else:
        results.append([qualname, "returned", repr(result)])
print(json.dumps(results))
"""


def check_student_functions_raise(assignment: Assignment, out: Path) -> int:
    """Every region's function raises NotImplementedError('Task <id>: implement <name>')."""
    expected: dict[tuple[str, str], str] = {}
    for rel in (*assignment.editable, *assignment.stubbed):
        text = assignment.reference_file(rel).read_text("utf-8")
        module = rel.removesuffix(".py").replace("/", ".")
        for region in solution_regions(text, rel):
            # The first region of a function is the one its call reaches.
            expected.setdefault((module, region.function), region.hint(rel))
    proc = run_python(out, CALL_EVERY_STUDENT_FUNCTION, json.dumps(sorted(expected)))
    assert proc.returncode == 0, proc.stderr
    got = {
        (m, q): (kind, msg)
        for (m, q), (_, kind, msg) in zip(sorted(expected), json.loads(proc.stdout), strict=True)
    }
    wrong = [
        f"{q}: expected NotImplementedError({expected[m, q]!r}), got {kind}({msg})"
        for (m, q), (kind, msg) in got.items()
        if (kind, msg) != ("NotImplementedError", expected[m, q])
    ]
    assert not wrong, "\n".join(wrong)
    return len(expected)


# --- a small fake course --------------------------------------------------------------------

FAKE_PYPROJECT = """
[project]
name = "fake"
dependencies = [
    "pytest==1.2.3",
    "hypothesis==4.5.6",
    "pytest-json-report==7.8.9",
    "numpy==2.0.1",
    "typing-extensions==4.0.0",
    "rich==9.9.9",
    "tomli>=2.0; python_version < '3.11'",
]
"""

FAKE_OPERATORS = '''
"""Fake operators: whole bodies, a curried helper, a line shared with the skeleton."""


def mul(x, y):
    """Return x * y."""
    # BEGIN SOLUTION task=0.1
    product = x * y
    return product
    # END SOLUTION


def id(x):
    return x


def ident(x):
    # BEGIN SOLUTION task=0.1
    return x
    # END SOLUTION


def map(fn):
    """Curried: the raise sits in the helper, reached by map(fn)(ls)."""

    def apply(ls):
        # BEGIN SOLUTION task=0.3
        return [fn(value) for value in ls]
        # END SOLUTION

    return apply
'''

FAKE_SCALAR = '''
"""Fake scalar: methods, a static method, code before a region."""

from .operators import mul


class ScalarHistory:
    def __init__(self, last_fn=None, ctx=None, inputs=()):
        self.last_fn, self.ctx, self.inputs = last_fn, ctx, inputs


class Context:
    def __init__(self):
        self.saved_values = ()

    def save_for_backward(self, *values):
        self.saved_values = values


class Scalar:
    def __init__(self, v, back=None, name=None):
        self.data = float(v)
        self.history = back or ScalarHistory()

    def __mul__(self, b):
        # BEGIN SOLUTION task=1.2
        return Scalar(mul(self.data, float(b)))
        # END SOLUTION

    def backward(self, d_output=None):
        if d_output is None:
            d_output = 1.0
        # BEGIN SOLUTION task=1.4
        self.derivative_seed = d_output * 1.0
        # END SOLUTION


class Mul:
    @staticmethod
    def forward(ctx, a, b):
        # BEGIN SOLUTION task=1.2
        ctx.save_for_backward(a, b)
        return mul(a, b)
        # END SOLUTION
'''

FAKE_FILES = {
    "pyproject.toml": FAKE_PYPROJECT,
    "reference/minitorch/__init__.py": (
        "from .operators import *\nfrom .scalar import *\nfrom .helpers import *\n"
        "from .optim import *\n"
    ),
    "reference/minitorch/operators.py": FAKE_OPERATORS,
    "reference/minitorch/scalar.py": FAKE_SCALAR,
    "reference/minitorch/helpers.py": (
        "def double(x):\n    # BEGIN SOLUTION task=0.1\n    return 2.0 * x\n    # END SOLUTION\n"
    ),
    "reference/minitorch/optim.py": "class SGD:\n    pass\n",
    "reference/project/run.py": "#!/usr/bin/env python3\nimport minitorch\n",
    "assignments/fake/README.md": "# Fake course\n\nWrite `mul`.\n",
    "assignments/fake/assignment.toml": """
        name = "fake"
        title = "Fake course"

        [files]
        editable = ["minitorch/operators.py"]
        provided = ["minitorch/__init__.py", "minitorch/optim.py"]
        solved = ["minitorch/helpers.py"]
        stubbed = ["minitorch/scalar.py"]
        extra = ["project/run.py"]

        [tests]
        public = ["test_ops.py"]
        hidden = ["hidden/test_ops_hidden.py"]
        [tests.visibility]
        test_secret_hidden_check = "hidden"
        test_public_mul = "after_due_date"

        [hypothesis]
        max_examples = 7
        local_max_examples = 11

        [[tasks]]
        id = "0.1"
        title = "Operators"
        points = 30
        weights = { test_public_mul = 2, test_secret_hidden_check = 5 }

        [[tasks]]
        id = "0.3"
        title = "Higher-order"
        points = 12.5
    """,
    "tests/test_ops.py": (
        "import pytest\nfrom support import close\nfrom strategies import floats\n"
        "from grader.isolation.protocol import StudentError\n\n\n"
        '@pytest.mark.task("0.1")\ndef test_public_mul(mt):\n    pass\n'
    ),
    "tests/strategies.py": "floats = None\n",
    "tests/unrelated.py": "UNUSED = 1\n",
    "tests/support.py": "def close(a, b):\n    return abs(a - b) < 1e-9\n",
    "tests/conftest.py": "",
    "tests/hidden/test_ops_hidden.py": "def test_secret_hidden_check(mt):\n    pass\n",
}
FAKE_PLUGIN = (
    '"""A stand-in for grader/course/student_plugin.py."""\n\nimport pytest\n\n'
    '__all__ = ["StudentError"]\n\n\nclass StudentError(Exception):\n    pass\n'
)
FAKE_HANDLES_IMPORT = (
    "try:\n    from . import protocol\nexcept ImportError:  # beside the worker\n"
    "    import protocol\n"
)
FAKE_HANDLES = f'''"""A stand-in for grader/isolation/handles.py."""

import math

{FAKE_HANDLES_IMPORT}
__all__ = ["value"]


def value(handle):
    raise protocol.StudentError(str(math.pi))
'''
FAKE_EXECUTOR = '"""A stand-in for grader/isolation/executor.py."""\n\nimport math\n'
FAKE_CHECKS = '"""A stand-in for grader/isolation/checks.py."""\n\nfrom .handles import value\n'


@pytest.fixture
def fake(tmp_path: Path) -> tuple[Assignment, Path]:
    """A complete fake course and its grader folder; returns (assignment, grader_dir)."""
    root = tmp_path / "course"
    for rel, text in FAKE_FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    grader_dir = tmp_path / "grader" / "course"
    grader_dir.mkdir(parents=True)
    (grader_dir / PLUGIN_SOURCE).write_text(FAKE_PLUGIN)
    (tmp_path / "grader" / "isolation").mkdir()
    (tmp_path / "grader" / "isolation" / "handles.py").write_text(FAKE_HANDLES)
    (tmp_path / "grader" / "isolation" / "executor.py").write_text(FAKE_EXECUTOR)
    (tmp_path / "grader" / "isolation" / "checks.py").write_text(FAKE_CHECKS)
    return load_assignment("fake", root=root), grader_dir


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_fake_handout_layout(fake: tuple[Assignment, Path], tmp_path: Path) -> None:
    assignment, grader_dir = fake
    out = generate(assignment, tmp_path / "out", grader_dir=grader_dir)
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert files == {
        ".gitignore",
        MARKER_FILE,
        "Makefile",
        "README.md",
        "assignment.toml",
        "setup.cfg",
        "requirements.txt",
        PLUGIN_FILE,
        f"{PLUGIN_MODULE}/handles.py",
        f"{PLUGIN_MODULE}/checks.py",
        f"{PLUGIN_MODULE}/executor.py",
        "minitorch/__init__.py",
        "minitorch/helpers.py",
        "minitorch/operators.py",
        "minitorch/optim.py",
        "minitorch/scalar.py",
        "project/run.py",
        "tests/conftest.py",
        "tests/strategies.py",  # imported by a public test, so shipped
        "tests/support.py",
        "tests/test_ops.py",
    }
    # The public test's grader import points at the plugin module: there is no grader/.
    shipped_test = (out / "tests/test_ops.py").read_text()
    assert "from pytest_minitorch import StudentError\n" in shipped_test
    assert "grader" not in shipped_test
    # The tooling package: the plugin, and the grader modules beside it, whose import of
    # protocol.py is the plugin (its fault classes are the hand-out's one set).
    assert (out / PLUGIN_FILE).read_text() == FAKE_PLUGIN
    assert (out / PLUGIN_MODULE / "executor.py").read_text() == FAKE_EXECUTOR
    assert (out / PLUGIN_MODULE / "checks.py").read_text() == FAKE_CHECKS.replace(
        "from .handles import", f"from {PLUGIN_MODULE}.handles import"
    )
    shipped_handles = (out / PLUGIN_MODULE / "handles.py").read_text()
    assert FAKE_HANDLES_IMPORT not in shipped_handles
    assert shipped_handles == FAKE_HANDLES.replace(
        FAKE_HANDLES_IMPORT,
        "import pytest_minitorch as protocol  # the plugin: the hand-out's faults\n",
    )
    ref = assignment.reference_dir
    assert (out / "minitorch/optim.py").read_bytes() == (ref / "minitorch/optim.py").read_bytes()
    assert (out / "minitorch/helpers.py").read_text() == "def double(x):\n    return 2.0 * x\n"
    assert (out / "README.md").read_bytes() == (assignment.folder / "README.md").read_bytes()


def test_fake_handout_holds_no_solution(fake: tuple[Assignment, Path], tmp_path: Path) -> None:
    assignment, grader_dir = fake
    out = generate(assignment, tmp_path / "out", grader_dir=grader_dir)
    # `return x` is shared with id(), so exempt; the other seven region lines are checked.
    assert check_no_solution_lines(assignment, out) == 7
    check_hidden_absent(assignment, out)


def test_fake_handout_is_byte_identical_across_runs(
    fake: tuple[Assignment, Path], tmp_path: Path
) -> None:
    assignment, grader_dir = fake
    first = snapshot(generate(assignment, tmp_path / "a", grader_dir=grader_dir))
    second = snapshot(generate(assignment, tmp_path / "a", grader_dir=grader_dir))  # regenerate
    third = snapshot(generate(assignment, tmp_path / "b", grader_dir=grader_dir))
    assert first == second == third
    modes = {rel: mode for rel, (_, mode) in first.items()}
    assert modes["project/run.py"] == 0o755  # a script
    assert modes["project"] == modes["minitorch"] == 0o755
    assert {mode for rel, mode in modes.items() if rel not in ("project/run.py",)} <= {
        0o644,
        0o755,
    }
    assert modes["minitorch/operators.py"] == modes["Makefile"] == 0o644


def test_fake_handout_imports_and_every_student_function_raises(
    fake: tuple[Assignment, Path], tmp_path: Path
) -> None:
    assignment, grader_dir = fake
    out = generate(assignment, tmp_path / "out", grader_dir=grader_dir)
    check_imports(out)
    assert check_student_functions_raise(assignment, out) == 6


def test_requirements_pin_the_pyproject_versions(
    fake: tuple[Assignment, Path], tmp_path: Path
) -> None:
    assignment, grader_dir = fake
    out = generate(assignment, tmp_path / "out", grader_dir=grader_dir)
    lines = [ln for ln in (out / "requirements.txt").read_text().splitlines() if ln[:1] != "#"]
    assert lines == [
        "numpy==2.0.1",
        "typing-extensions==4.0.0",
        "pytest==1.2.3",
        "hypothesis==4.5.6",
        "tomli>=2.0; python_version < '3.11'",
    ]


def test_unpinned_tool_is_refused(fake: tuple[Assignment, Path], tmp_path: Path) -> None:
    assignment, grader_dir = fake
    edit(assignment.root / "pyproject.toml", "hypothesis==4.5.6", "hypothesis>=4")
    with pytest.raises(ConfigError, match="must pin hypothesis with '=='"):
        generate(assignment, tmp_path / "out", grader_dir=grader_dir)


def test_handout_toml_keeps_points_and_drops_hidden_names(
    fake: tuple[Assignment, Path], tmp_path: Path
) -> None:
    assignment, grader_dir = fake
    out = generate(assignment, tmp_path / "out", grader_dir=grader_dir)
    text = (out / "assignment.toml").read_text()
    assert "test_secret_hidden_check" not in text
    assert "hidden/" not in text
    shipped = load_assignment(out / "assignment.toml", root=out)
    assert shipped.hidden_tests == ()
    assert shipped.public_tests == assignment.public_tests
    assert [(t.id, t.title, t.points) for t in shipped.tasks] == [
        (t.id, t.title, t.points) for t in assignment.tasks
    ]
    assert shipped.task("0.1").weights == {"test_public_mul": 2.0}
    assert shipped.visibility_overrides == {"test_public_mul": "after_due_date"}
    assert (shipped.max_examples, shipped.local_max_examples) == (7, 11)
    assert shipped.limits == assignment.limits
    assert shipped.editable == assignment.editable


def test_setup_cfg_and_gitignore(fake: tuple[Assignment, Path], tmp_path: Path) -> None:
    """pytest's settings live in setup.cfg as in the course, with one marker per task."""
    assignment, grader_dir = fake
    out = generate(assignment, tmp_path / "out", grader_dir=grader_dir)
    assert not (out / "pytest.ini").exists()
    ini = configparser.ConfigParser()
    ini.read(out / "setup.cfg")
    section = ini["tool:pytest"]
    assert section["testpaths"].split() == ["tests"]
    assert section["pythonpath"].split() == [".", "tests"]
    addopts = section["addopts"].split()
    assert addopts[addopts.index(PLUGIN_MODULE) - 1] == "-p"
    assert "no:minitorch_grader" in addopts
    markers = [line.split(":")[0] for line in section["markers"].strip().splitlines()]
    assert markers == ["task(id)", *(f"task{t.id.replace('.', '_')}" for t in assignment.tasks)]
    assert ".venv/" in (out / ".gitignore").read_text().splitlines()


def test_makefile_commands(fake: tuple[Assignment, Path], tmp_path: Path) -> None:
    assignment, grader_dir = fake
    out = generate(assignment, tmp_path / "out", grader_dir=grader_dir)

    def dry_run(*args: str) -> str:
        proc = subprocess.run(
            ["make", "-n", *args, f"PYTHON={sys.executable}"],
            cwd=out,
            capture_output=True,
            text=True,
            check=True,
        )
        return proc.stdout

    test = dry_run("test")
    assert "-m pytest --grading-profile=student --max-examples=11" in test
    assert "--task" not in test
    assert "--task 0.3" in dry_run("test", "TASK=0.3")
    grade = dry_run("grade")
    for part in ("--grading-profile=grading", "--max-examples=7", "--score-table"):
        assert part in grade
    assert "-m venv .venv" in dry_run("install")
    assert "-r requirements.txt" in dry_run("install")

    subprocess.run(
        ["make", "submit", f"PYTHON={sys.executable}"], cwd=out, check=True, capture_output=True
    )
    with zipfile.ZipFile(out / "submission.zip") as archive:
        names = {n for n in archive.namelist() if not n.endswith("/")}
    assert names == {f"minitorch/{p.name}" for p in (out / "minitorch").glob("*.py")}
    subprocess.run(["make", "clean"], cwd=out, check=True, capture_output=True)
    assert not (out / "submission.zip").exists()


@pytest.mark.parametrize(
    ("stated", "warns"),
    [
        (f"{sys.version_info.major}.{sys.version_info.minor - 1}", True),
        (f"{sys.version_info.major}.{sys.version_info.minor}", False),
        (None, False),
    ],
)
def test_make_install_and_test_warn_on_a_python_newer_than_the_courses(
    fake: tuple[Assignment, Path], tmp_path: Path, stated: str | None, warns: bool
) -> None:
    """The course's Python ([runtime] python) is pinned in the Makefile: `make install` and
    `make test` say, in one line and without failing, when this Python is newer."""
    assignment, grader_dir = fake
    if stated is not None:
        edit(
            assignment.folder / "assignment.toml",
            "[tests]\n",
            f'[runtime]\npython = "{stated}"\n\n[tests]\n',
        )
    assignment = load_assignment("fake", root=assignment.root)
    assert assignment.python == (stated or "")
    out = generate(assignment, tmp_path / "out", grader_dir=grader_dir)
    proc = subprocess.run(
        ["make", "check-python", f"PYTHON={sys.executable}"],
        cwd=out,
        capture_output=True,
        text=True,
        env=clean_env(),
    )
    assert proc.returncode == 0, proc.stderr
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    expected = (
        f"warning: this is Python {here}, but your code is graded with Python {stated}: write "
        "nothing newer (no def f[T](...), no type X = ...), or it will not import when graded\n"
    )
    assert proc.stdout == (expected if warns else "")
    for target in ("install", "test"):
        dry = subprocess.run(
            ["make", "-n", target, f"PYTHON={sys.executable}"],
            cwd=out,
            capture_output=True,
            text=True,
            check=True,
            env=clean_env(),
        ).stdout
        assert "sys.version_info" in dry.splitlines()[0], target  # the check comes first


@pytest.mark.parametrize("value", ['"3"', '"3.9"', "3.11", '"python3.11"', '"3.11.2"'])
def test_the_courses_python_must_be_a_version(fake: tuple[Assignment, Path], value: str) -> None:
    assignment, _ = fake
    edit(
        assignment.folder / "assignment.toml",
        "[tests]\n",
        f"[runtime]\npython = {value}\n\n[tests]\n",
    )
    with pytest.raises(ConfigError, match=r"\[runtime\] python must be a Python version"):
        load_assignment("fake", root=assignment.root)


# --- refusals -------------------------------------------------------------------------------


def test_refuses_to_empty_a_folder_that_is_not_a_handout(
    fake: tuple[Assignment, Path], tmp_path: Path
) -> None:
    assignment, grader_dir = fake
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(ConfigError, match=r"not a previous hand-out \(no \.handout file\)"):
        generate(assignment, out, grader_dir=grader_dir)
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]


def test_regenerating_removes_stale_files(fake: tuple[Assignment, Path], tmp_path: Path) -> None:
    assignment, grader_dir = fake
    out = generate(assignment, tmp_path / "out", grader_dir=grader_dir)
    (out / "stale.py").write_text("old")
    (out / "minitorch" / "__pycache__").mkdir()
    generate(assignment, out, grader_dir=grader_dir)
    assert not (out / "stale.py").exists()
    assert not (out / "minitorch" / "__pycache__").exists()


def test_a_config_error_leaves_the_previous_handout_alone(
    fake: tuple[Assignment, Path], tmp_path: Path
) -> None:
    assignment, grader_dir = fake
    out = generate(assignment, tmp_path / "out", grader_dir=grader_dir)
    before = snapshot(out)
    (grader_dir / PLUGIN_SOURCE).unlink()
    with pytest.raises(ConfigError, match=r"needs grader/course/student_plugin\.py"):
        generate(assignment, out, grader_dir=grader_dir)
    assert snapshot(out) == before
    (grader_dir / PLUGIN_SOURCE).write_text(FAKE_PLUGIN)
    (grader_dir.parent / "isolation" / "handles.py").unlink()
    with pytest.raises(ConfigError, match=r"needs grader/isolation/handles\.py"):
        generate(assignment, out, grader_dir=grader_dir)
    assert snapshot(out) == before


TOML = "course/assignments/fake/assignment.toml"
PLUGIN = f"grader/course/{PLUGIN_SOURCE}"


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        pytest.param(
            [(PLUGIN, "import pytest", "from .protocol import Call")],
            r"grader/course/student_plugin\.py imports from the grader \(line 3\)",
            id="plugin-imports-the-grader",
        ),
        pytest.param(
            [(PLUGIN, "import pytest", "import numpy")],
            r"grader/course/student_plugin\.py imports numpy, which the hand-out does not "
            r"have \(line 3\)",
            id="plugin-imports-a-package-the-handout-lacks",
        ),
        pytest.param(
            [("grader/isolation/executor.py", "import math", "from grader.errors import X")],
            r"grader/isolation/executor\.py imports from the grader \(line 3\)",
            id="companion-imports-the-grader",
        ),
        pytest.param(
            [("grader/isolation/handles.py", "import math", "import numpy as math")],
            r"grader/isolation/handles\.py imports numpy, which the hand-out does not have",
            id="companion-imports-a-package-the-handout-lacks",
        ),
        pytest.param(
            [("grader/isolation/handles.py", "from . import protocol", "from . import worker")],
            r"grader/isolation/handles\.py imports from the grader",
            id="companion-imports-a-sibling-that-does-not-ship",
        ),
        pytest.param(
            [("grader/isolation/handles.py", "protocol.StudentError", "protocol.fault_from_json")],
            r"grader/isolation/handles\.py uses protocol\.fault_from_json, which the "
            r"hand-out's plugin \(grader/course/student_plugin\.py\) does not define",
            id="companion-uses-a-fault-the-plugin-lacks",
        ),
        pytest.param(
            [
                (
                    "course/tests/test_ops.py",
                    "import StudentError\n",
                    "import StudentError\nfrom grader.isolation.handles import values\n",
                )
            ],
            r"\['values'\] are missing in the hand-out's pytest_minitorch\.handles",
            id="public-test-imports-a-name-handles-lacks",
        ),
        pytest.param(
            [("course/tests/test_ops.py", "grader.isolation.protocol", "grader.isolation.sandbox")],
            r"test_ops\.py:\d+: the hand-out cannot satisfy "
            r"`from grader\.isolation\.sandbox import",
            id="public-test-imports-unshipped-grader-module",
        ),
        pytest.param(
            [("course/tests/test_ops.py", "import StudentError", "import BadValue")],
            r"\['BadValue'\] are missing in the hand-out's pytest_minitorch\b",
            id="public-test-imports-a-name-the-plugin-lacks",
        ),
        pytest.param(
            [("course/tests/test_ops.py", "from strategies", "from hidden.test_ops_hidden")],
            r"imports the hidden hidden/test_ops_hidden\.py",
            id="public-test-imports-hidden",
        ),
        pytest.param(
            [(TOML, '"minitorch/optim.py"]', "]")],
            r"reference files minitorch/optim\.py are in no \[files\] list",
            id="unlisted-reference-file",
        ),
        pytest.param(
            [(TOML, 'id = "0.3"', 'id = "0.2"')],
            r"operators\.py:\d+: region of task 0\.3 \(map\) is editable, but fake has no task",
            id="region-of-unknown-task",
        ),
        pytest.param(
            [
                (TOML, 'solved = ["minitorch/helpers.py"]', "solved = []"),
                (TOML, '"minitorch/optim.py"]', '"minitorch/optim.py", "minitorch/helpers.py"]'),
            ],
            r"helpers\.py is provided \(shipped verbatim\) but has solution regions",
            id="verbatim-file-with-regions",
        ),
        pytest.param(
            [
                (
                    TOML,
                    '["minitorch/scalar.py"]',
                    '["minitorch/scalar.py", "minitorch/operators.py"]',
                )
            ],
            r"minitorch/operators\.py is listed both as editable and as stubbed",
            id="two-roles",
        ),
        pytest.param(
            [
                (
                    "course/reference/minitorch/operators.py",
                    "# END SOLUTION\n\n\ndef id",
                    "\n\ndef id",
                )
            ],
            r"minitorch/operators\.py:\d+: BEGIN SOLUTION inside the region",
            id="bad-markers",
        ),
        pytest.param(
            [("course/tests/support.py", "def close", "def close(:")],
            r"support\.py:1: not valid Python",
            id="broken-test-support",
        ),
        pytest.param(
            [
                (
                    TOML,
                    'editable = ["minitorch/operators.py"]',
                    'editable = ["minitorch/optim.py"]',
                ),
                (TOML, '"minitorch/__init__.py", "minitorch/optim.py"', '"minitorch/__init__.py"'),
                (
                    TOML,
                    '["minitorch/scalar.py"]',
                    '["minitorch/scalar.py", "minitorch/operators.py"]',
                ),
            ],
            r"optim\.py is editable but has no solution regions",
            id="editable-without-regions",
        ),
    ],
)
def test_config_errors_are_clear(
    fake: tuple[Assignment, Path], tmp_path: Path, edits: list[tuple[str, str, str]], message: str
) -> None:
    assignment, grader_dir = fake
    for rel, old, new in edits:
        edit(tmp_path / rel, old, new)
    assignment = load_assignment("fake", root=assignment.root)
    with pytest.raises(ConfigError, match=message):
        generate(assignment, tmp_path / "out", grader_dir=grader_dir)
    assert not (tmp_path / "out").exists()


def test_cli_registers_the_handout_command(
    fake: tuple[Assignment, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    assignment, grader_dir = fake
    parser = argparse.ArgumentParser(prog="grader")
    handout.add_commands(parser.add_subparsers(dest="command"))
    monkeypatch.setenv("GRADER_ROOT", str(assignment.root))
    real_generate = handout.generate
    monkeypatch.setattr(
        handout, "generate", lambda a, out: real_generate(a, out, grader_dir=grader_dir)
    )
    monkeypatch.chdir(tmp_path)
    args = parser.parse_args(["handout", "fake"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str((tmp_path / "build" / "handout" / "fake").resolve())
    args = parser.parse_args(["handout", "fake", "--out", str(tmp_path / "elsewhere")])
    assert args.func(args) == 0
    assert (tmp_path / "elsewhere" / MARKER_FILE).is_file()


# --- the shipped plugin on a small course: what a failure shows, and what it costs ---------

#: What pytest prints between the exceptions of a chain: never in a student's output.
CHAINED = ("During handling of the above exception", "The above exception was the direct cause")

SMALL_COURSE = {
    "setup.cfg": """
        [tool:pytest]
        testpaths = tests
        pythonpath = . tests
        addopts = -p no:minitorch_grader -p pytest_minitorch -p no:cacheprovider
    """,
    "minitorch/__init__.py": "",
    "minitorch/ops.py": """
        import importlib
        import os


        def _log(name):  # what ran, counted by the test
            with open(os.environ["CALL_LOG"], "a") as fh:
                fh.write(name + "\\n")


        def mul(xs):
            _log("mul")
            raise NotImplementedError("Task 0.1: implement ops.mul")


        def buggy(xs):
            return [x + 1 if x >= 10 else x for x in xs]


        def fragile(xs):
            if max(xs) >= 10:
                raise ValueError(f"too big: {max(xs)}")
            return xs


        def spin(xs):
            _log("spin")
            while True:
                pass


        def use_broken(xs):
            _log("broken")
            return importlib.import_module("minitorch.broken").f(xs)
    """,
    "minitorch/broken.py": """
        from .ops import mul

        def f(:
            pass
    """,
    "tests/test_small.py": """
        import pytest
        from hypothesis import given
        from hypothesis import strategies as st

        from pytest_minitorch import StudentError
        from pytest_minitorch.handles import value

        LISTS = st.lists(st.integers(0, 1000), min_size=3, max_size=8)


        def ask(mt, name, xs):
            try:
                return value(getattr(mt.ops, name)(xs))
            except StudentError as exc:
                message = f"ops.{name} raised {exc}\\n  called:   ops.{name}({xs})\\n"
                pytest.fail(message + exc.traceback, pytrace=False)


        @given(LISTS)
        def test_stub_first(mt, xs):
            ask(mt, "mul", xs)


        @given(LISTS)
        def test_stub_again(mt, xs):
            assert value(mt.ops.mul(xs)) == xs


        @given(LISTS)
        def test_bug(mt, xs):
            got = ask(mt, "buggy", xs)
            if got != xs:
                pytest.fail(f"ops.buggy({xs}) returned {got}", pytrace=False)


        @given(LISTS)
        def test_raises_on_some_inputs(mt, xs):
            ask(mt, "fragile", xs)


        @given(LISTS)
        def test_hangs(mt, xs):
            ask(mt, "spin", xs)


        @pytest.mark.parametrize("twice", [1, 2])
        @given(LISTS)
        def test_needs_a_file_that_does_not_import(mt, twice, xs):
            ask(mt, "use_broken", xs)
    """,
}


@pytest.fixture
def small_course(tmp_path: Path) -> Path:
    """A hand-out in miniature with the real plugin: a stub, a bug, an input-dependent
    error and a hang, each under a hypothesis test."""
    out = tmp_path / "small"
    for rel, text in SMALL_COURSE.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    files, _ = handout.tooling_files(ROOT / "grader" / "course")
    for rel, data in files.items():
        (out / rel).parent.mkdir(exist_ok=True)
        (out / rel).write_bytes(data)
    return out


@pytest.mark.slow
def test_plugin_tells_a_standing_fault_once_unshrunk(small_course: Path) -> None:
    """A stub's NotImplementedError is not shrunk (hypothesis calls it only to find, replay
    and report it), the first test shows it in full and the next says what it waits on in
    one line; so is a file that does not import; a hung call is not re-run; a bug and an
    input-dependent error are still shrunk to their smallest input; no report shows a
    chain of exceptions."""
    log = small_course / "calls.log"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "--probe-timeout", "2"],
        cwd=small_course,
        capture_output=True,
        text=True,
        # CI=true as GitHub Classroom sets it: pytest would then print whole reports again
        # in its short summary, unless the plugin keeps that to one line a failure.
        env={**clean_env(), "CALL_LOG": str(log), "CI": "true"},
        timeout=300,
    )
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "7 failed" in out, out
    assert not [c for c in CHAINED if c in out], out
    calls = log.read_text().split()
    # Found, replayed before shrinking, reported: three calls per test; shrinking a list of
    # three to eight integers would take dozens.
    assert calls.count("mul") <= 6, calls.count("mul")
    assert calls.count("spin") == 1  # its repeats in the same test fail at once
    assert out.count("ops.mul raised NotImplementedError: Task 0.1: implement ops.mul") == 1
    assert 'File "minitorch/ops.py", line 12, in mul' in out
    assert "waits on Task 0.1: ops.mul (see test_stub_first above)" in out
    assert "ops.buggy([0, 0, 10]) returned [0, 0, 11]" in out  # shrunk
    assert "ops.fragile raised ValueError: too big: 10" in out  # shrunk, told without chain
    assert "timed out after 2 s in minitorch.ops.spin" in out
    assert calls.count("broken") <= 6  # two tests
    assert out.count("ops.use_broken raised SyntaxError") == 1
    assert 'File "minitorch/broken.py", line 3\n    def f(:' in out
    assert re.search(
        r"^waits on minitorch/broken\.py, which does not import \(SyntaxError: .*\) "
        r"\(see test_needs_a_file_that_does_not_import\[1\] above\)$",
        out,
        re.M,
    ), out


#: A public test file over handles (the `mt` fixture), as the grader's tests are written.
HANDLE_TESTS = """
import pytest
from hypothesis import given
from hypothesis import strategies as st

from grader.isolation.handles import code, outcomes, reproducer, value
from grader.isolation.protocol import BadValue, StudentFault


@pytest.mark.task("0.1")
@given(st.lists(st.floats(-100, 100), min_size=3, max_size=6))
def test_mul(mt, xs):
    x, y = xs[0], xs[-1]
    got = mt.operators.mul(x, y)
    if value(got) != x * y:
        lines = "\\n".join(reproducer(got))
        pytest.fail(f"got {value(got)}, expected {x * y}\\n{lines}", pytrace=False)


@pytest.mark.task("0.1")
def test_mul_commutes(mt):
    assert value(mt.operators.mul(0.5, 0.25)) == value(mt.operators.mul(0.25, 0.5))


@pytest.mark.task("0.1")
def test_ident(mt):
    assert value(mt.operators.ident(2.5)) == 2.5


@pytest.mark.task("0.3")
def test_map(mt):
    double = code(mt, "lambda v: 2 * v")
    assert value(mt.operators.map(double)([1.0, 2.0, 3.0])) == [2.0, 4.0, 6.0]


@pytest.mark.task("0.3")
def test_map_keeps_one(mt):
    [got] = outcomes(mt.operators.map(code(mt, "lambda v: v"))([1.0]))
    if isinstance(got, StudentFault):
        pytest.fail(f"map raised {got}", pytrace=False)  # worded here, not raised
    assert got == [1.0]


@pytest.mark.task("0.1")
def test_plain_values_only(mt):
    assert value(code(mt, "__import__('numpy').float64(2.5)")) == 2.5
    [got] = outcomes(mt.operators.id)
    assert isinstance(got, BadValue), got
"""

#: The fake course's operators.py with a bug per function: an error on some inputs, a hang,
#: a wrong value.
BUGGY_OPERATORS = """
def mul(x, y):
    if x >= 1:
        raise ValueError(f"too big: {x}")
    return x * y


def id(x):
    return x


def ident(x):
    while True:
        pass


def map(fn):
    def apply(ls):
        return [fn(value) for value in ls[:1]]

    return apply
"""


def _run_handout_tests(out: Path, *args: str) -> str:
    """The hand-out's pytest in ``out``, from a student's shell: its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", *args],
        cwd=out,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=300,
    )
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert not [c for c in CHAINED if c in proc.stdout], proc.stdout
    return proc.stdout


@pytest.mark.slow
def test_handle_tests_run_in_the_students_process(
    fake: tuple[Assignment, Path], tmp_path: Path
) -> None:
    """Public tests over handles (`mt`) run in the student's own process with the shipped
    handles and executor: the reference passes (numpy scalars made plain, other objects
    refused), an unwritten function is told once and not shrunk, a student's exception
    shows the student's own frames, a hang times out, a plain assert shows the lines that
    rebuild what it read, and no report shows a chain of exceptions."""
    assignment, _ = fake
    (assignment.tests_dir / "test_ops.py").write_text(textwrap.dedent(HANDLE_TESTS).lstrip())
    assignment = load_assignment("fake", root=assignment.root)
    out = generate(assignment, tmp_path / "out")  # this grader's own plugin and companions
    shipped = (out / "tests" / "test_ops.py").read_text()
    assert "from pytest_minitorch.handles import code, outcomes, reproducer, value\n" in shipped
    assert "from pytest_minitorch import BadValue, StudentFault\n" in shipped

    untouched_dir = shutil.copytree(out, tmp_path / "untouched")
    stub = '    raise NotImplementedError("Task 0.1: implement operators.mul")'
    edit(
        untouched_dir / "minitorch/operators.py",
        stub,
        f'    open("calls.log", "a").write("mul ")\n{stub}',
    )
    untouched = _run_handout_tests(untouched_dir)
    # Found, replayed, reported, and one call from the second test: no shrinking (every
    # input fails the same way; shrinking these lists took 12 calls in all).
    assert len((untouched_dir / "calls.log").read_text().split()) <= 6
    assert "5 failed, 1 passed" in untouched, untouched
    told = "your code raised NotImplementedError: Task 0.1: implement operators.mul"
    assert untouched.count(told) == 1, untouched
    assert re.search(r'File "minitorch/operators\.py", line \d+, in mul\n', untouched), untouched
    assert "waits on Task 0.1: operators.mul (see test_mul above)" in untouched, untouched
    assert "Falsifying example" not in untouched
    # A fault a check words itself (from outcomes) is told once as well.
    assert "waits on Task 0.3: operators.map (see test_map above)" in untouched, untouched

    reference = shutil.copytree(out, tmp_path / "reference")
    shutil.copyfile(
        assignment.reference_dir / "minitorch/operators.py", reference / "minitorch/operators.py"
    )
    passed = _run_handout_tests(reference)
    assert "6 passed" in passed, passed

    buggy = shutil.copytree(out, tmp_path / "buggy")
    (buggy / "minitorch/operators.py").write_text(BUGGY_OPERATORS.lstrip())
    failed = _run_handout_tests(buggy, "--probe-timeout", "2", "--grading-profile=grading")
    assert "3 failed, 3 passed" in failed, failed
    assert "your code raised ValueError: too big: " in failed, failed
    frame = 'File "minitorch/operators.py", line 3, in mul\n    raise ValueError(f"too big: {x}")'
    assert frame in failed, failed
    assert "Falsifying example: test_mul(" in failed and "mt=" not in failed, failed
    assert "timed out after 2 s in minitorch.operators.ident" in failed, failed
    assert "assert [2.0] == [2.0, 4.0, 6.0]" in failed, failed
    assert "To reproduce:\n    import minitorch\n" in failed, failed
    assert "minitorch.operators.map(" in failed, failed


@pytest.mark.evidence
@pytest.mark.slow
def test_the_authoring_example_runs_in_the_students_process(tmp_path: Path) -> None:
    """docs/authoring.md's worked example, a test over handles, in a module-1 hand-out (its
    grader imports rewritten as the hand-out build does): the reference passes it, and a
    Mul.backward that swaps its derivatives fails it, told by the assertion and the lines
    that rebuild what the failing example read."""
    from grader.evidence.mutations import apply_mutations, load_corpus

    doc = (ROOT / "docs" / "authoring.md").read_text(encoding="utf-8")
    found = re.search(r"<!-- authoring-example: (\S+) -->\n```python\n(.*?)```", doc, re.S)
    assert found, "docs/authoring.md lost its worked example"
    assignment = load_assignment("module1", root=ROOT)
    out = generate(assignment, tmp_path / "handout")
    _, exported = handout.tooling_files(ROOT / "grader" / "course")
    example = tmp_path / Path(found.group(1)).name
    example.write_text(found.group(2), encoding="utf-8")
    shipped = handout.rewrite_grader_imports(example, example.read_bytes(), exported)
    (out / "tests" / example.name).write_bytes(shipped)
    corpus = {e.name: e for e in load_corpus(ROOT / "grader/tests/corpus/buggy.toml")}
    bug = apply_mutations(
        assignment.reference_dir, corpus["mul_backward_swapped"].edits, tmp_path / "bug"
    )
    told = {}
    for name, solution in (("reference", assignment.reference_dir), ("bug", bug)):
        work = shutil.copytree(out, tmp_path / f"run-{name}")
        for rel in assignment.editable:
            shutil.copyfile(solution / rel, work / rel)
        told[name] = _run_handout_tests(work, f"tests/{example.name}", "--max-examples=20")
    assert "1 passed" in told["reference"], told["reference"]
    assert "1 failed" in told["bug"], told["bug"]
    for part in ("assert ", "To reproduce:\n    import minitorch\n", ".backward("):
        assert part in told["bug"], told["bug"]


# --- the real course ------------------------------------------------------------------------

REAL = ("module0", "module1", "module2")


def missing_inputs(assignment: Assignment, hidden: bool = False) -> list[str]:
    """Inputs of the real hand-out (or its hidden tests) that are not written yet."""
    if hidden:
        paths = [assignment.tests_dir / rel for rel in assignment.hidden_tests]
        return [str(p.relative_to(ROOT)) for p in paths if not p.exists()]
    wanted = [
        assignment.reference_file(rel)
        for role in ("editable", "provided", "solved", "stubbed", "extra")
        for rel in getattr(assignment, role)
    ]
    wanted += assignment.test_files(include_hidden=False)
    wanted += [assignment.tests_dir / n for n in handout.REQUIRED_TEST_SUPPORT]
    wanted += [ROOT / "grader" / "course" / PLUGIN_SOURCE]
    wanted += [ROOT / "grader" / "isolation" / name for name in handout.COMPANIONS]
    missing = [str(p.relative_to(ROOT)) for p in wanted if not p.exists()]
    listed = {
        rel
        for role in ("editable", "provided", "solved", "stubbed", "extra")
        for rel in getattr(assignment, role)
    }
    missing += [
        f"{rel} (in no [files] list of assignments/{assignment.name}/assignment.toml yet)"
        for rel in assignment.reference_package()
        if rel not in listed
    ]
    return missing


@pytest.fixture(scope="module", params=REAL)
def real(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """(assignment, hand-out folder) of a real assignment, generated once per module."""
    assignment = load_assignment(request.param, root=ROOT)
    missing = missing_inputs(assignment)
    if missing:
        pytest.fail(f"inputs of the {request.param} hand-out are missing: {missing}")
    out = generate(assignment, tmp_path_factory.mktemp(request.param) / "handout")
    return assignment, out


def test_real_handout_holds_no_solution(real: tuple[Assignment, Path]) -> None:
    assignment, out = real
    assert check_no_solution_lines(assignment, out) >= 60  # not vacuous


def test_real_handout_has_no_hidden_tests(real: tuple[Assignment, Path]) -> None:
    assignment, out = real
    missing = missing_inputs(assignment, hidden=True)
    if missing:
        pytest.fail(f"hidden tests are missing: {missing}")
    check_hidden_absent(assignment, out)
    shipped = {p.relative_to(out / "tests").as_posix() for p in (out / "tests").rglob("*.py")}
    assert set(assignment.public_tests) <= shipped
    assert "support.py" in shipped and "probes.py" not in shipped


def test_real_handout_is_reproducible(real: tuple[Assignment, Path], tmp_path: Path) -> None:
    assignment, out = real
    assert snapshot(generate(assignment, tmp_path / "again")) == snapshot(out)


def test_real_handout_imports(real: tuple[Assignment, Path]) -> None:
    check_imports(real[1])


def test_real_handout_tooling_stands_alone(real: tuple[Assignment, Path]) -> None:
    """The tooling package is the grader's plugin, executor and handles, importing only the
    standard library, pytest and hypothesis; handles.py differs from the grader's only in
    its import of protocol.py, which is the plugin (one set of fault classes)."""
    _, out = real
    package = out / PLUGIN_MODULE
    assert sorted(p.name for p in package.glob("*.py")) == sorted(["__init__.py", *COMPANIONS])
    isolation = ROOT / "grader" / "isolation"
    plugin = (ROOT / "grader" / "course" / PLUGIN_SOURCE).read_bytes()
    assert (package / "__init__.py").read_bytes() == plugin
    assert (package / "executor.py").read_bytes() == (isolation / "executor.py").read_bytes()
    grader_lines = (isolation / "handles.py").read_text().splitlines()
    shipped_lines = (package / "handles.py").read_text().splitlines()
    changed = [
        line
        for line in difflib.unified_diff(grader_lines, shipped_lines, lineterm="", n=0)
        if line[:1] in "+-" and line[:3] not in ("+++", "---")
    ]
    assert [line for line in changed if line[0] == "+"] == [
        "+import pytest_minitorch as protocol  # the plugin: the hand-out's faults"
    ]
    removed = [line[1:].split("#")[0].strip() for line in changed if line[0] == "-"]
    assert set(removed) == {
        "try:",
        "from . import protocol",
        "except ImportError:",
        "import protocol",
    }
    allowed = {*sys.stdlib_module_names, "pytest", "_pytest", "hypothesis", "tomli", PLUGIN_MODULE}
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level == 0, f"{path.name}:{node.lineno}: a relative import"
                tops = [(node.module or "").split(".")[0]]
            elif isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            else:
                continue
            assert set(tops) <= allowed, f"{path.name}:{node.lineno} imports {tops}"
    check = (
        "import sys, pytest_minitorch.handles as h, pytest_minitorch.executor; "
        "import pytest_minitorch as p; assert h.protocol is p; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'grader'))"
    )
    proc = run_python(out, check)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_real_student_functions_raise_with_their_task(real: tuple[Assignment, Path]) -> None:
    assignment, out = real
    assert check_student_functions_raise(assignment, out) >= 10


def test_real_handout_toml_loads_in_the_handout(real: tuple[Assignment, Path]) -> None:
    assignment, out = real
    shipped = load_assignment(out / "assignment.toml", root=out)
    assert shipped.max_score == assignment.max_score
    assert shipped.hidden_tests == ()


def test_real_regions_use_the_assignment_tasks(real: tuple[Assignment, Path]) -> None:
    """Every task has something to write, and hints name real functions of the file."""
    assignment, out = real
    tasks = set()
    for rel in assignment.editable:
        text = assignment.reference_file(rel).read_text("utf-8")
        for region in solution_regions(text, rel):
            tasks.add(region.task)
            assert display_name(region.function, rel) in (out / rel).read_text("utf-8")
    assert tasks == {t.id for t in assignment.tasks}


@pytest.mark.slow
def test_real_handout_collects_with_its_own_setup_cfg(real: tuple[Assignment, Path]) -> None:
    """The hand-out's tests load the shipped plugin and collect, as `make test` would."""
    assignment, out = real
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q"],
        cwd=out,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "error" not in proc.stdout.lower()


@pytest.mark.evidence
@pytest.mark.slow
def test_real_handout_reports_the_task_of_a_missing_function(real: tuple[Assignment, Path]) -> None:
    """`make test TASK=<first task>` on the untouched hand-out names the work to do."""
    assignment, out = real
    first = assignment.tasks[0].id
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "--grading-profile=student", "--task", first],
        cwd=out,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=300,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # tests ran and failed
    assert f"NotImplementedError: Task {first}: implement " in proc.stdout


def _make_test(
    assignment: Assignment, folder: Path, timeout: float = 600
) -> tuple[subprocess.CompletedProcess[str], float]:
    """The hand-out Makefile's `make test` command in ``folder`` (with this Python), and the
    CPU seconds it took, children included."""
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "--grading-profile=student",
        f"--max-examples={assignment.local_max_examples}",
    ]
    with tempfile.TemporaryFile("w+", encoding="utf-8") as out:
        proc = subprocess.Popen(
            cmd, cwd=folder, env=clean_env(), stdout=out, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.1)
        out.seek(0)
        text = out.read()
    code = os.waitstatus_to_exitcode(status)
    return subprocess.CompletedProcess(cmd, code, text, ""), usage.ru_utime + usage.ru_stime


@pytest.mark.slow
def test_real_handout_untouched_tells_each_missing_function_once(
    real: tuple[Assignment, Path], tmp_path: Path
) -> None:
    """A student's first `make test`: every unwritten function fails its tests at once (no
    minutes of hypothesis shrinking an error no input changes), the first test it stops
    shows it with its location, every later one says in one line what it waits on, and no
    report shows a chain of exceptions."""
    assignment, out = real
    work = shutil.copytree(out, tmp_path / "untouched")
    proc, cpu = _make_test(assignment, work)
    text = proc.stdout
    assert proc.returncode == 1, text[-3000:]
    assert not [c for c in CHAINED if c in text], text
    causes = set(re.findall(r"^waits on Task (\S+): (\S+)$", text, re.M))
    assert len(causes) >= 5, text
    for task, name in causes:
        told = f"raised NotImplementedError: Task {task}: implement {name}\n"
        assert text.count(told) == 1, f"{name} is told {text.count(told)} times:\n{text}"
    # Module 1's tests share their stubs (module 0's mostly have one each).
    assert re.search(r"^waits on Task .* \(see \S+ above\)$", text, re.M), text
    # main before this change: 224 s of wall clock for module 1, most of it CPU shrinking.
    assert cpu < 60, f"{cpu:.1f} s of CPU for a hand-out with nothing written"


def _pytest_in(folder: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """The bare `pytest ARGS` command in ``folder``, from a student's shell."""
    return subprocess.run(
        [sys.executable, "-c", "import sys, pytest; sys.exit(pytest.console_main())", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=timeout,
    )


def _collected(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`pytest --collect-only -q ARGS` in the hand-out."""
    return _pytest_in(out, "--collect-only", "-q", *args)


def _public_ids_of_task(assignment: Assignment, collected: str, task: str) -> set[str]:
    """Node ids of the public tests marked @pytest.mark.task(task), from the output of an
    unfiltered collection (``collected``)."""
    ids = set()
    for path in assignment.test_files(include_hidden=False):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test"):
                continue
            for deco in node.decorator_list:
                if (
                    isinstance(deco, ast.Call)
                    and ast.unparse(deco.func) == "pytest.mark.task"
                    and deco.args
                    and ast.literal_eval(deco.args[0]) == task
                ):
                    prefix = f"tests/{path.relative_to(assignment.tests_dir).as_posix()}"
                    ids |= {
                        line.strip()
                        for line in collected.splitlines()
                        if line.strip().startswith(f"{prefix}::{node.name}")
                        and line.strip()[len(f"{prefix}::{node.name}") :][:1] in ("", "[")
                    }
    return ids


@pytest.mark.evidence
@pytest.mark.slow
def test_real_handout_marker_selects_exactly_the_public_tests_of_a_task(
    real: tuple[Assignment, Path],
) -> None:
    """`pytest -m task1_4` in the hand-out runs the public 1.4 tests, and nothing else."""
    assignment, out = real
    everything = _collected(out)
    assert everything.returncode == 0, everything.stdout + everything.stderr
    for task in assignment.tasks:
        marker = "task" + task.id.replace(".", "_")
        proc = _collected(out, "-m", marker)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        selected = {ln.strip() for ln in proc.stdout.splitlines() if "::" in ln}
        expected = _public_ids_of_task(assignment, everything.stdout, task.id)
        assert expected, f"no public test of task {task.id}"
        assert selected == expected, f"-m {marker}"
        by_option = _collected(out, "--task", task.id)
        assert {ln.strip() for ln in by_option.stdout.splitlines() if "::" in ln} == expected


@pytest.mark.slow
@pytest.mark.parametrize("how", ["option", "make"])
def test_real_handout_refuses_an_unknown_task(real: tuple[Assignment, Path], how: str) -> None:
    """`--task 1.7` (or `make test TASK=1.7`) is an error that lists the real task ids."""
    assignment, out = real
    cmd = (
        [sys.executable, "-m", "pytest", "--task", "9.7"]
        if how == "option"
        else ["make", "test", "TASK=9.7", f"PYTHON={sys.executable}"]
    )
    proc = subprocess.run(
        cmd, cwd=out, capture_output=True, text=True, env=clean_env(), timeout=300
    )
    assert proc.returncode != 0
    listed = ", ".join(t.id for t in assignment.tasks)
    assert f"unknown task 9.7: the tasks of this assignment are {listed}" in proc.stderr


def _local_run(
    assignment: Assignment, out: Path, solution: Path
) -> subprocess.CompletedProcess[str]:
    """A student's `pytest` in a copy of the hand-out whose editable files are ``solution``'s."""
    work = out.parent / f"run-{solution.name}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(out, work)
    for rel in assignment.editable:
        shutil.copyfile(solution / rel, work / rel)
    return _pytest_in(work, "-q", "-x", timeout=900)


#: A corpus entry per module whose derivative is wrong (a backward, or module 0's *_back).
WRONG_DERIVATIVE = {
    "module0": "log_back_forgets_d",
    "module1": "mul_backward_swapped",
    "module2": "m2_exp_backward_drops_grad_output",
}


@pytest.mark.evidence
@pytest.mark.slow
def test_real_handout_passes_a_correct_solution_and_fails_a_wrong_derivative(
    real: tuple[Assignment, Path], tmp_path: Path
) -> None:
    """A student's own `make test` judges like the grader: the reference passes every public
    test, although the hand-out measures derivatives instead of holding their closed forms,
    and a backward (module 1) or *_back (module 0) mistake still fails."""
    from grader.evidence.mutations import apply_mutations, load_corpus

    assignment, out = real
    layer = assignment.reference_layer
    right = _local_run(
        assignment, out, apply_mutations(assignment.reference_dir, [], tmp_path / "right", layer)
    )
    assert right.returncode == 0, right.stdout[-3000:] + right.stderr[-2000:]
    corpus = {e.name: e for e in load_corpus(ROOT / "grader/tests/corpus/buggy.toml")}
    name = WRONG_DERIVATIVE[assignment.name]
    wrong = apply_mutations(assignment.reference_dir, corpus[name].edits, tmp_path / name, layer)
    proc = _local_run(assignment, out, wrong)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "backward" in proc.stdout or "_back" in proc.stdout
    # A real bug is told as before: the inputs, got and expected, a reproducer; no chain.
    for part in ("  called:   ", "  returned: ", "  expected: ", "Reproduce it in a Python shell:"):
        assert part in proc.stdout, proc.stdout[-3000:]
    assert not [c for c in CHAINED if c in proc.stdout], proc.stdout[-3000:]
    assert "waits on" not in proc.stdout
