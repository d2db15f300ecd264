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
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    pass
else:  # pragma: no cover - Python 3.10
    pass

from grader.course.assignment import Assignment, load_assignment
from grader.course.handout_root import root_texts
from grader.course.skeleton import make_skeleton, solution_regions, strip_grader_only, strip_markers
from grader.errors import ConfigError

__all__ = [
    "COMPANIONS",
    "MARKER_FILE",
    "PLUGIN_FILE",
    "PLUGIN_MODULE",
    "add_commands",
    "generate",
    "plan_handout",
    "tooling_files",
]

# The hand-out's test tooling: one package at its top, loaded by setup.cfg with `-p`. Its
# __init__.py is grader/course/student_plugin.py, which runs the public tests in the
# student's own process; beside it, the grader modules the `mt` fixture needs (standard
# library only), their import of grader/isolation/protocol.py pointed at the plugin, whose
# fault classes are the hand-out's one set. Nothing of the sandbox or the worker ships.
PLUGIN_SOURCE = "student_plugin.py"
PLUGIN_MODULE = "pytest_minitorch"
PLUGIN_FILE = f"{PLUGIN_MODULE}/__init__.py"
#: Files of grader/isolation/ shipped into the plugin's package under the same name.
COMPANIONS = ("handles.py", "executor.py")
#: The grader module whose faults the plugin defines (for the companions and the tests).
PROTOCOL = "grader.isolation.protocol"
# The grader modules a public test may import, and what the hand-out imports instead.
REWRITTEN_IMPORTS = {
    PROTOCOL: PLUGIN_MODULE,
    "grader.isolation.handles": f"{PLUGIN_MODULE}.handles",
}
#: What the shipped tooling may import besides the standard library and its own package.
TOOLING_IMPORTS = frozenset({"pytest", "_pytest", "hypothesis", "tomli"})
# Test support shipped with the public tests; the optional ones only when they exist
# (probes.py: for the tests that still use the `student` fixture).
REQUIRED_TEST_SUPPORT = ("support.py",)
OPTIONAL_TEST_SUPPORT = ("probes.py", "__init__.py", "conftest.py")
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


def _test_files(assignment: Assignment, exported: dict[str, set[str]]) -> Plan:
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


# --- the tooling package --------------------------------------------------------------------


def _all_names(tree: ast.Module) -> set[str]:
    """The names a module exports (its ``__all__``)."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return {ast.literal_eval(elt) for elt in getattr(node.value, "elts", [])}
    return set()


def _defined_names(tree: ast.Module) -> set[str]:
    """The names a module defines at its top level."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _check_standalone(label: str, tree: ast.Module) -> None:
    """Refuse a shipped tooling module that imports anything but the standard library,
    pytest, hypothesis and its own package: the hand-out has nothing else."""
    allowed = set(sys.stdlib_module_names) | TOOLING_IMPORTS | {PLUGIN_MODULE, "__future__"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            modules, relative = [node.module or ""], node.level > 0
        elif isinstance(node, ast.Import):
            modules, relative = [a.name for a in node.names], False
        else:
            continue
        for module in modules:
            top = module.split(".")[0]
            if relative or top == "grader":
                what = "imports from the grader"
            elif top not in allowed:
                what = f"imports {module}, which the hand-out does not have"
            else:
                continue
            raise ConfigError(
                f"{label} {what} (line {node.lineno}); it ships in the hand-out, where only "
                "pytest, hypothesis, the standard library and its own package exist"
            )


def _sibling_import(node: ast.stmt, siblings: set[str]) -> str | None:
    """What the hand-out's copy says for a module-level import of a grader/isolation
    sibling (``from . import protocol``, ``from .protocol import X``), else None."""
    if not isinstance(node, ast.ImportFrom):
        return None
    dotted = node.module or ""
    if node.level == 1:
        module = dotted
    elif node.level == 0 and (
        dotted == "grader.isolation" or dotted.startswith("grader.isolation.")
    ):
        module = dotted.removeprefix("grader.isolation").lstrip(".")
    else:
        return None
    names = ", ".join(a.name if a.asname is None else f"{a.name} as {a.asname}" for a in node.names)
    if module == "protocol":
        return f"from {PLUGIN_MODULE} import {names}"
    if module in siblings:
        return f"from {PLUGIN_MODULE}.{module} import {names}"
    if module:
        return None
    out = []
    for alias in node.names:
        bound = alias.asname or alias.name
        if alias.name == "protocol":
            out.append(f"import {PLUGIN_MODULE} as {bound}  # the plugin: the hand-out's faults")
        elif alias.name in siblings:
            out.append(f"from {PLUGIN_MODULE} import {alias.name} as {bound}")
        else:
            return None
    return "\n".join(out)


def _companion(path: Path, siblings: set[str]) -> str:
    """A grader/isolation module as the plugin's package holds it: each module-level import
    of a sibling (alone, or a ``try`` whose fallbacks import it beside the worker) becomes
    an import from the package, protocol.py's being the plugin itself."""
    text = _read_text(path, "hand-out tooling")
    lines = text.splitlines(keepends=True)
    for node in reversed(_parse_file(path).body):
        first = node.body[0] if isinstance(node, ast.Try) and node.body else node
        replacement = _sibling_import(first, siblings)
        if replacement is None:
            continue
        if isinstance(node, ast.Try):
            rest = [*node.body, *(s for h in node.handlers for s in h.body), *node.orelse]
            if node.finalbody or not all(isinstance(s, ast.Import | ast.ImportFrom) for s in rest):
                continue  # more than a choice of imports: the standalone check tells
        end = node.end_lineno or node.lineno
        lines[node.lineno - 1 : end] = [replacement + "\n"]
    return "".join(lines)


def tooling_files(grader_dir: Path) -> tuple[Plan, dict[str, set[str]]]:
    """The hand-out's tooling package, checked to stand alone, and the names each grader
    module a shipped test may import gives there (by the grader module's name)."""
    path = grader_dir / PLUGIN_SOURCE
    if not path.is_file():
        raise ConfigError(
            f"the hand-out needs grader/course/{PLUGIN_SOURCE}, but {path} does not exist"
        )
    plugin = _parse_file(path)
    _check_standalone(f"grader/course/{PLUGIN_SOURCE}", plugin)
    plan: Plan = {PLUGIN_FILE: _file(path.read_bytes())}
    exported = {PROTOCOL: _all_names(plugin)}
    defined = _defined_names(plugin)
    siblings = {Path(name).stem for name in COMPANIONS}
    for name in COMPANIONS:
        source = grader_dir.parent / "isolation" / name
        label = f"grader/isolation/{name}"
        if not source.is_file():
            raise ConfigError(f"the hand-out needs {label}, but {source} does not exist")
        text = _companion(source, siblings)
        tree = ast.parse(text, filename=str(source))
        _check_standalone(label, tree)
        lacking = sorted(
            {
                n.attr
                for n in ast.walk(tree)
                if isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name)
                and n.value.id == "protocol"
            }
            - defined
        )
        if lacking:
            raise ConfigError(
                f"{label} uses protocol.{', protocol.'.join(lacking)}, which the hand-out's "
                f"plugin (grader/course/{PLUGIN_SOURCE}) does not define"
            )
        plan[f"{PLUGIN_MODULE}/{name}"] = _text_file(text)
        exported[f"grader.isolation.{source.stem}"] = _all_names(tree)
    return plan, exported


def _rewrite_grader_imports(path: Path, data: bytes, exported: dict[str, set[str]]) -> bytes:
    """``from grader.isolation.protocol import X`` becomes ``from pytest_minitorch import X``.

    The public tests are the grader's own files; the hand-out has no ``grader`` package, so
    each import of it is pointed at the tooling package, which gives the same names
    (``exported``, by grader module). Any other grader import is a configuration error (it
    would crash on a student's machine).
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
        missing = sorted({a.name for a in node.names} - exported.get(module, set()))
        if target is None or missing:
            what = f"{module} is not available" if target is None else f"{missing} are missing"
            raise ConfigError(
                f"{path}:{node.lineno}: the hand-out cannot satisfy `from {module} import ...`: "
                f"{what} in the hand-out's {target or PLUGIN_MODULE}"
            )
        i = node.lineno - 1
        pattern = re.compile(rf"\bfrom\s+{re.escape(module)}\s+import\b")
        if not pattern.search(lines[i]):
            raise ConfigError(f"{path}:{node.lineno}: cannot rewrite the import of {module}")
        lines[i] = pattern.sub(f"from {target} import", lines[i], count=1)
    return "".join(lines).encode("utf-8")


def _marker(assignment: Assignment) -> str:
    return (
        f"Generated by `grader handout {assignment.name}`.\n"
        "`grader handout` empties and regenerates a folder holding this file, and refuses\n"
        "to touch a non-empty folder without it.\n"
    )


def _root_files(assignment: Assignment) -> Plan:
    readme = assignment.folder / "README.md"
    texts = root_texts(assignment, _test_function_names(assignment))
    return {
        "README.md": _file(_read_text(readme, "assignment README").encode("utf-8")),
        **{path: _text_file(text) for path, text in texts.items()},
        MARKER_FILE: _text_file(_marker(assignment)),
    }


# --- putting it together -------------------------------------------------------------------


def plan_handout(assignment: Assignment, grader_dir: Path | None = None) -> Plan:
    """Every file of the hand-out, by its posix path, without writing anything.

    ``grader_dir`` is where the hand-out's plugin (``student_plugin.py``) comes from, its
    companions coming from ``isolation/`` beside it: this package unless a test points
    elsewhere.
    """
    grader_dir = grader_dir or Path(__file__).resolve().parent
    tooling, exported = tooling_files(grader_dir)  # the tests' imports are checked against it
    plan: Plan = {}
    for part in (
        _package_files(assignment),
        tooling,
        _test_files(assignment, exported),
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
