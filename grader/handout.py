"""Generate the student repository of an assignment from ``reference/`` and its toml.

The hand-out is built, never copied by hand, so it cannot drift from what the grader runs:
editable files are skeletons of the reference, the public tests and probes are the ones the
grader uses, and the test tools are pinned to the grader's versions. The hidden tests and
the solutions never enter it.

The whole tree is planned in memory first (``plan_handout``) and written afterwards, so a
configuration error leaves an existing hand-out untouched; and the output depends only on
the inputs (sorted, no timestamps, fixed modes), so regenerating gives identical bytes.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from .assignment import Assignment, Limits, load_assignment
from .errors import ConfigError
from .skeleton import make_skeleton, solution_regions, strip_grader_only, strip_markers

__all__ = [
    "MARKER_FILE",
    "PLUGIN_MODULE",
    "PINNED_PACKAGES",
    "add_commands",
    "generate",
    "plan_handout",
]

# The one module of test tooling a hand-out carries: grader/student_plugin.py, shipped at the
# top of the hand-out under this name (setup.cfg loads it with `-p`). It runs the public
# tests in the student's own process; nothing of the sandbox, protocol or worker ships.
PLUGIN_SOURCE = "student_plugin.py"
PLUGIN_MODULE = "pytest_minitorch"
# The grader modules a public test may import, and what the hand-out imports instead.
REWRITTEN_IMPORTS = {"grader.protocol": PLUGIN_MODULE}
# Test support shipped with the public tests; the optional ones only when they exist.
REQUIRED_TEST_SUPPORT = ("probes.py", "support.py")
OPTIONAL_TEST_SUPPORT = ("__init__.py", "conftest.py")
# Pinned in requirements.txt with the exact versions of the grader's pyproject.toml: the
# runtime packages student code may import (the template imports both), and the test
# tools (hypothesis derandomizes by hashing the test, so other versions draw other examples).
PINNED_PACKAGES = ("numpy", "typing_extensions", "pytest", "hypothesis")
# Copied as well when pyproject lists them (environment markers included).
CONDITIONAL_PACKAGES = ("tomli",)
MARKER_FILE = ".handout"
HIDDEN_TESTS_DIR = "hidden"

FILE_MODE = 0o644
SCRIPT_MODE = 0o755
DIR_MODE = 0o755


@dataclass(frozen=True)
class HandoutFile:
    data: bytes
    mode: int


Plan = dict[str, HandoutFile]  # posix path inside the hand-out -> content


def _text_file(text: str) -> HandoutFile:
    return _file(text.encode("utf-8"))


def _file(data: bytes) -> HandoutFile:
    """Scripts (a ``#!`` line) are executable, everything else is plain 0644."""
    return HandoutFile(data, SCRIPT_MODE if data.startswith(b"#!") else FILE_MODE)


def _read_text(path: Path, role: str) -> str:
    if not path.is_file():
        raise ConfigError(f"{role} file {path} does not exist")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{role} file {path} is not UTF-8: {exc}") from exc


# --- minitorch/ and extras ----------------------------------------------------------------


def _check_roles(assignment: Assignment) -> None:
    """Every reference module has exactly one role, so none is forgotten or shipped twice."""
    roles: dict[str, str] = {}
    for role in ("editable", "solved", "stubbed", "provided", "extra"):
        for rel in getattr(assignment, role):
            if rel in roles:
                raise ConfigError(
                    f"{assignment.folder / 'assignment.toml'}: {rel} is listed both as "
                    f"{roles[rel]} and as {role}"
                )
            roles[rel] = role
    package = assignment.reference_dir / "minitorch"
    unlisted = sorted(
        p.relative_to(assignment.reference_dir).as_posix()
        for p in package.glob("*.py")
        if p.relative_to(assignment.reference_dir).as_posix() not in roles
    )
    if unlisted:
        raise ConfigError(
            f"{assignment.folder / 'assignment.toml'}: reference files {', '.join(unlisted)} "
            "are in no [files] list; the hand-out's `import minitorch` would miss them"
        )


def _package_files(assignment: Assignment) -> Plan:
    _check_roles(assignment)
    ref = assignment.reference_dir
    task_ids = {t.id for t in assignment.tasks}
    plan: Plan = {}
    for rel in assignment.editable:
        text = _read_text(ref / rel, "editable")
        regions = solution_regions(text, rel)
        if not regions:
            raise ConfigError(
                f"{ref / rel} is editable but has no solution regions: students would have "
                "nothing to write (list it as solved or provided instead)"
            )
        for region in regions:
            if region.task not in task_ids:
                raise ConfigError(
                    f"{rel}:{region.start}: region of task {region.task} ({region.function}) "
                    f"is editable, but {assignment.name} has no task {region.task} "
                    f"(tasks: {', '.join(sorted(task_ids))})"
                )
        plan[rel] = _text_file(make_skeleton(text, rel))
    for rel in assignment.stubbed:
        plan[rel] = _text_file(make_skeleton(_read_text(ref / rel, "stubbed"), rel))
    for rel in assignment.solved:
        plan[rel] = _text_file(strip_markers(_read_text(ref / rel, "solved"), rel))
    for role in ("provided", "extra"):
        for rel in getattr(assignment, role):
            path = ref / rel
            text = _read_text(path, role)
            if path.suffix == ".py" and solution_regions(text, rel):
                raise ConfigError(
                    f"{path} is {role} (shipped verbatim) but has solution regions; "
                    "it would hand out the solution: make it editable, solved or stubbed"
                )
            plan[rel] = _file(path.read_bytes())
    return plan


# --- tests/ --------------------------------------------------------------------------------


def _parse_file(path: Path) -> ast.Module:
    try:
        return ast.parse(path.read_bytes(), filename=str(path))
    except SyntaxError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: not valid Python: {exc.msg}") from exc


def _local_imports(path: Path, tests_dir: Path) -> set[Path]:
    """Files under tests/ that ``path`` imports (``support``, ``tests.support``, ``.x``)."""
    package = path.parent.relative_to(tests_dir).parts
    dotted: list[list[str]] = []
    for node in ast.walk(_parse_file(path)):
        if isinstance(node, ast.Import):
            dotted += [alias.name.split(".") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level - 1 > len(package):
                continue  # reaches above tests/: not a test module
            prefix = list(package[: len(package) - node.level + 1]) if node.level else []
            base = [*prefix, *(node.module.split(".") if node.module else [])]
            dotted += [base, *([*base, alias.name] for alias in node.names)]
    found = set()
    for parts in dotted:
        if parts[:1] == [tests_dir.name]:
            parts = parts[1:]
        candidate = tests_dir.joinpath(*parts).with_suffix(".py") if parts else None
        if candidate is not None and candidate.is_file():
            found.add(candidate)
    return found


def _test_files(assignment: Assignment, grader_dir: Path) -> Plan:
    tests_dir = assignment.tests_dir
    hidden = set(assignment.hidden_tests)
    wanted: list[Path] = []
    for rel in assignment.public_tests:
        if rel in hidden or Path(rel).parts[0] == HIDDEN_TESTS_DIR:
            raise ConfigError(f"public test {rel} is hidden; it cannot be in the hand-out")
        wanted.append(tests_dir / rel)
    wanted += [tests_dir / name for name in REQUIRED_TEST_SUPPORT]
    wanted += [tests_dir / name for name in OPTIONAL_TEST_SUPPORT if (tests_dir / name).is_file()]
    for path in wanted:
        if not path.is_file():
            raise ConfigError(f"test file {path} does not exist; the public tests need it")

    shipped: set[Path] = set()
    todo = list(wanted)
    while todo:  # public tests and whatever local modules they import, transitively
        path = todo.pop()
        if path in shipped:
            continue
        rel = path.relative_to(tests_dir)
        if rel.parts[0] == HIDDEN_TESTS_DIR or rel.as_posix() in hidden:
            raise ConfigError(
                f"a public test file imports the hidden {rel.as_posix()}; "
                "hidden tests never go into the hand-out"
            )
        shipped.add(path)
        todo.extend(_local_imports(path, tests_dir) - shipped)
    exported = _plugin_names(grader_dir / PLUGIN_SOURCE)
    plan: Plan = {}
    for p in shipped:
        data = p.read_bytes()
        if p.suffix == ".py":
            data = _strip_grader_only(p, data)
            data = _rewrite_grader_imports(p, data, exported)
        plan[f"tests/{p.relative_to(tests_dir).as_posix()}"] = _file(data)
    return plan


def _strip_grader_only(path: Path, data: bytes) -> bytes:
    """A shipped test file without its grader-only blocks (``skeleton.strip_grader_only``)."""
    return strip_grader_only(data.decode("utf-8"), path).encode("utf-8")


def _test_function_names(assignment: Assignment) -> set[str]:
    """Names of the public test functions (for filtering per-test weights)."""
    names = set()
    for path in assignment.test_files(include_hidden=False):
        for node in ast.walk(_parse_file(path)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
    return names


# --- the plugin module -----------------------------------------------------------------------


def _plugin_names(source: Path) -> set[str]:
    """The names the plugin module exports (its ``__all__``)."""
    for node in _parse_file(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return {ast.literal_eval(elt) for elt in getattr(node.value, "elts", [])}
    return set()


def _plugin_file(grader_dir: Path) -> Plan:
    """The hand-out's one plugin module, checked to stand alone (no grader import)."""
    path = grader_dir / PLUGIN_SOURCE
    if not path.is_file():
        raise ConfigError(f"the hand-out needs grader/{PLUGIN_SOURCE}, but {path} does not exist")
    for node in ast.walk(_parse_file(path)):
        relative = isinstance(node, ast.ImportFrom) and node.level > 0
        names = (
            [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else []
        )
        if relative or any(n == "grader" or n.startswith("grader.") for n in names):
            raise ConfigError(
                f"grader/{PLUGIN_SOURCE} imports from the grader (line {node.lineno}); "
                "it ships alone in the hand-out and must use only pytest, hypothesis and "
                "the standard library"
            )
    return {f"{PLUGIN_MODULE}.py": _file(path.read_bytes())}


def _rewrite_grader_imports(path: Path, data: bytes, exported: set[str]) -> bytes:
    """``from grader.protocol import X`` becomes ``from pytest_minitorch import X``.

    The public tests are the grader's own files; the hand-out has no ``grader`` package, so
    each import of it is pointed at the plugin module, which defines the same names. Any
    other grader import is a configuration error (it would crash on a student's machine).
    """
    tree = _parse_file(path)
    lines = data.decode("utf-8").splitlines(keepends=True)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bad = [a.name for a in node.names if a.name.split(".")[0] == "grader"]
            if bad:
                raise ConfigError(
                    f"{path}:{node.lineno}: `import {bad[0]}` cannot work in the hand-out "
                    f"(no grader package there); import from {', '.join(REWRITTEN_IMPORTS)}"
                )
        if not isinstance(node, ast.ImportFrom) or node.level != 0:
            continue
        module = node.module or ""
        if module.split(".")[0] != "grader":
            continue
        target = REWRITTEN_IMPORTS.get(module)
        missing = sorted({a.name for a in node.names} - exported)
        if target is None or missing:
            what = f"{module} is not available" if target is None else f"{missing} are missing"
            raise ConfigError(
                f"{path}:{node.lineno}: the hand-out cannot satisfy `from {module} import ...`: "
                f"{what} in the hand-out's plugin module ({PLUGIN_MODULE})"
            )
        i = node.lineno - 1
        pattern = re.compile(rf"\bfrom\s+{re.escape(module)}\s+import\b")
        if not pattern.search(lines[i]):
            raise ConfigError(f"{path}:{node.lineno}: cannot rewrite the import of {module}")
        lines[i] = pattern.sub(f"from {target} import", lines[i], count=1)
    return "".join(lines).encode("utf-8")


# --- root files ----------------------------------------------------------------------------


def _requirements(root: Path) -> str:
    pyproject = root / "pyproject.toml"
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the pinned versions from {pyproject}: {exc}") from exc
    by_name: dict[str, str] = {}
    for spec in data.get("project", {}).get("dependencies", []):
        match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
        if match:
            by_name[re.sub(r"[-_.]+", "-", match[1]).lower()] = spec.strip()
    lines = [
        "# The packages of this hand-out, pinned to the versions the grader uses: numpy and",
        "# typing_extensions are what your minitorch code may import besides the standard",
        "# library; pytest and hypothesis run the tests (hypothesis draws different examples",
        "# in different versions, so the same versions make `make grade` agree with Gradescope).",
    ]
    for name in PINNED_PACKAGES:
        spec = by_name.get(re.sub(r"[-_.]+", "-", name).lower())
        if spec is None or not re.fullmatch(r"[A-Za-z0-9._-]+==[^;,\s]+", spec):
            raise ConfigError(
                f"{pyproject}: [project] dependencies must pin {name} with '==' "
                f"(found {spec!r}); the hand-out copies that version"
            )
        lines.append(spec)
    lines += [by_name[name] for name in CONDITIONAL_PACKAGES if name in by_name]
    return "\n".join(lines) + "\n"


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON escapes are valid TOML
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise TypeError(f"no TOML form for {value!r}")


def _plain_number(value: float) -> float | int:
    """30.0 -> 30, so points read as the toml author wrote them."""
    return int(value) if value.is_integer() else value


def _handout_toml(assignment: Assignment) -> str:
    """The assignment's toml for ``make grade``'s preview, without any hidden test name."""
    public_names = _test_function_names(assignment)
    out = [
        f"# Tasks and points of {assignment.name}, for the score preview of `make grade`.",
        "# Generated by `grader handout`. The grader keeps its own copy (with the hidden",
        "# tests), so editing this file changes nothing in your grade.",
        f"name = {_toml_value(assignment.name)}",
        f"title = {_toml_value(assignment.title)}",
        "",
        "[files]",
    ]
    for role in ("editable", "provided", "solved", "stubbed", "extra"):
        out.append(f"{role} = {_toml_value(getattr(assignment, role))}")
    out += [
        "",
        "[tests]",
        f"public = {_toml_value(assignment.public_tests)}",
        f"public_visibility = {_toml_value(assignment.public_visibility)}",
    ]
    overrides = {k: v for k, v in assignment.visibility_overrides.items() if k in public_names}
    if overrides:
        out += ["", "[tests.visibility]"]
        out += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in sorted(overrides.items())]
    out += [
        "",
        "[hypothesis]",
        f"max_examples = {assignment.max_examples}",
        f"local_max_examples = {assignment.local_max_examples}",
        "",
        "[limits]",
    ]
    out += [
        f"{k} = {_toml_value(getattr(assignment.limits, k))}" for k in Limits.__dataclass_fields__
    ]
    for task in assignment.tasks:
        out += [
            "",
            "[[tasks]]",
            f"id = {_toml_value(task.id)}",
            f"title = {_toml_value(task.title)}",
            f"points = {_toml_value(_plain_number(task.points))}",
        ]
        weights = {k: v for k, v in sorted(task.weights.items()) if k in public_names}
        if weights:
            out.append(f"weights = {_toml_value(weights)}")
    return "\n".join(out) + "\n"


SETUP_CFG = """\
# Generated by `grader handout`. pytest reads its settings from here: the tests in tests/,
# the assignment's test plugin (pytest_minitorch.py, next to this file), and one marker per
# task, so `pytest -m task1_4` runs the tests of task 1.4 as in the course.
[metadata]
name = minitorch
version = 0.1

[files]
packages =
    minitorch

[tool:pytest]
testpaths = tests
pythonpath = . tests
addopts = -p no:minitorch_grader -p pytest_minitorch -p no:cacheprovider
markers =
    task(id): the assignment task a test belongs to, e.g. @pytest.mark.task("1.4")
@MARKERS@
"""

MAKEFILE = """\
# @TITLE@: the student's commands. Generated by `grader handout`.
#
#   make install        create .venv and install the pinned packages
#   make test           run the public tests (make test TASK=@TASK@ for one task)
#   make grade          run the public tests as the grader does, with a score preview
#   make submit         zip minitorch/ into submission.zip
#   make clean          remove caches and submission.zip

PYTHON ?= python3
VENV ?= .venv
VENV_PYTHON := $(VENV)/bin/python
# Use the virtual environment once `make install` has created it.
PY := $(if $(wildcard $(VENV_PYTHON)),$(VENV_PYTHON),$(PYTHON))
TASK ?=
TASK_OPTION := $(if $(TASK),--task $(TASK))
# hypothesis examples per property test: more locally, the grading budget for `make grade`
LOCAL_EXAMPLES := @LOCAL_EXAMPLES@
GRADING_EXAMPLES := @GRADING_EXAMPLES@

.PHONY: help install test grade submit clean

help:
\t@echo "make install          create .venv and install the pinned packages"
\t@echo "make test             run the public tests"
\t@echo "make test TASK=@TASK@    run the tests of one task"
\t@echo "make grade            run the public tests as the grader does, with a score preview"
\t@echo "make submit           zip minitorch/ into submission.zip"
\t@echo "make clean            remove caches and submission.zip"

install:
\t$(PYTHON) -m venv $(VENV)
\t$(VENV_PYTHON) -m pip install -r requirements.txt

test:
\t$(PY) -m pytest --grading-profile=student --max-examples=$(LOCAL_EXAMPLES) $(TASK_OPTION) $(ARGS)

# A preview: one line per failed test and the task table (`make test` shows the details).
grade:
\t$(PY) -m pytest --grading-profile=grading --max-examples=$(GRADING_EXAMPLES) \\
\t\t--score-table -q --tb=no $(TASK_OPTION) $(ARGS)

submit:
\trm -rf minitorch/__pycache__ submission.zip
\t$(PY) -m zipfile -c submission.zip minitorch
\t@echo "Wrote submission.zip: upload it to Gradescope."

clean:
\trm -rf .pytest_cache .hypothesis submission.zip
\tfind . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
"""

GITIGNORE = """\
.venv/
__pycache__/
*.pyc
.hypothesis/
.pytest_cache/
submission.zip
"""


def _makefile(assignment: Assignment) -> str:
    return (
        MAKEFILE.replace("@TITLE@", assignment.title)
        .replace("@TASK@", assignment.tasks[-1].id)
        .replace("@LOCAL_EXAMPLES@", str(assignment.local_max_examples))
        .replace("@GRADING_EXAMPLES@", str(assignment.max_examples))
    )


def _setup_cfg(assignment: Assignment) -> str:
    markers = "\n".join(
        f"    task{task.id.replace('.', '_')}: the tests of task {task.id} ({task.title})"
        for task in assignment.tasks
    )
    return SETUP_CFG.replace("@MARKERS@", markers)


def _marker(assignment: Assignment) -> str:
    return (
        f"Generated by `grader handout {assignment.name}`.\n"
        "`grader handout` empties and regenerates a folder holding this file, and refuses\n"
        "to touch a non-empty folder without it.\n"
    )


def _root_files(assignment: Assignment) -> Plan:
    readme = assignment.folder / "README.md"
    return {
        "README.md": _file(_read_text(readme, "assignment README").encode("utf-8")),
        "Makefile": _text_file(_makefile(assignment)),
        "setup.cfg": _text_file(_setup_cfg(assignment)),
        "requirements.txt": _text_file(_requirements(assignment.root)),
        "assignment.toml": _text_file(_handout_toml(assignment)),
        ".gitignore": _text_file(GITIGNORE),
        MARKER_FILE: _text_file(_marker(assignment)),
    }


# --- putting it together -------------------------------------------------------------------


def plan_handout(assignment: Assignment, grader_dir: Path | None = None) -> Plan:
    """Every file of the hand-out, by its posix path, without writing anything.

    ``grader_dir`` is where the hand-out's plugin module (``student_plugin.py``) comes from:
    this package unless a test points elsewhere.
    """
    grader_dir = grader_dir or Path(__file__).resolve().parent
    plan: Plan = {}
    for part in (
        _package_files(assignment),
        _plugin_file(grader_dir),  # before the tests: their imports are checked against it
        _test_files(assignment, grader_dir),
        _root_files(assignment),
    ):
        clash = plan.keys() & part.keys()
        if clash:
            raise ConfigError(f"hand-out files produced twice: {', '.join(sorted(clash))}")
        plan.update(part)
    return plan


def _prepare_out(out: Path) -> None:
    """Create ``out`` or empty it, but only if it is missing, empty or a previous hand-out."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"hand-out folder {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MARKER_FILE).is_file():
            raise ConfigError(
                f"{out} is not empty and is not a previous hand-out (no {MARKER_FILE} file); "
                "refusing to delete its contents: choose a new or empty folder"
            )
        for child in sorted(out.iterdir()):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    out.mkdir(parents=True, exist_ok=True)


def generate(assignment: Assignment, out: Path, *, grader_dir: Path | None = None) -> Path:
    """Build the student repository of ``assignment`` in ``out`` and return its path."""
    plan = plan_handout(assignment, grader_dir)  # may raise: nothing touched yet
    out = Path(out)
    _prepare_out(out)
    for rel in sorted(plan):
        target = out / rel
        for parent in reversed(target.relative_to(out).parents[:-1]):
            folder = out / parent
            folder.mkdir(exist_ok=True)
            folder.chmod(DIR_MODE)
        target.write_bytes(plan[rel].data)
        target.chmod(plan[rel].mode)
    out.chmod(DIR_MODE)
    return out.resolve()


# --- command line --------------------------------------------------------------------------


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``grader handout ASSIGNMENT [--out DIR]``."""
    parser = subparsers.add_parser(
        "handout",
        help="generate the student repository of an assignment",
        description="Build the student repository (skeletons, public tests, Makefile) of an "
        "assignment from reference/ and its assignment.toml.",
    )
    parser.add_argument("assignment", help="assignment name (module1) or its folder/toml path")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder, emptied first if it is a previous hand-out "
        "(default: build/handout/<name>)",
    )
    parser.set_defaults(func=run_handout)


def run_handout(args: argparse.Namespace) -> int:
    """The ``handout`` subcommand: generate and print where it went."""
    assignment = load_assignment(args.assignment)
    out = args.out if args.out is not None else Path("build") / "handout" / assignment.name
    print(generate(assignment, out))
    return 0
