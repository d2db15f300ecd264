"""Generate the student repository of an assignment from ``reference/`` and its toml.

The hand-out is built, never copied by hand, so it cannot drift from what the grader runs:
editable files are skeletons of the reference, the public tests are the ones the grader
uses, and the test tools are pinned to the grader's versions. The hidden tests and
the solutions never enter it.

The whole tree is planned in memory first (``plan_handout``) and written afterwards, so a
configuration error leaves an existing hand-out untouched; and the output depends only on
the inputs (sorted, no timestamps, fixed modes), so regenerating gives identical bytes.
"""

from __future__ import annotations

import argparse
import ast
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
from grader.course.handout_tooling import (
    COMPANIONS,
    PLUGIN_FILE,
    PLUGIN_MODULE,
    PLUGIN_SOURCE,
    rewrite_grader_imports,
    tooling_files,
)
from grader.course.skeleton import make_skeleton, solution_regions, strip_grader_only, strip_markers
from grader.errors import ConfigError

__all__ = [
    "COMPANIONS",
    "MARKER_FILE",
    "PLUGIN_FILE",
    "PLUGIN_MODULE",
    "PLUGIN_SOURCE",
    "add_commands",
    "generate",
    "plan_handout",
    "rewrite_grader_imports",
    "tooling_files",
]

# Test support shipped with the public tests; the optional ones only when they exist.
REQUIRED_TEST_SUPPORT = ("support.py",)
OPTIONAL_TEST_SUPPORT = ("__init__.py", "conftest.py")
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
    unlisted = [rel for rel in assignment.reference_package() if rel not in roles]
    if unlisted:
        raise ConfigError(
            f"{assignment.folder / 'assignment.toml'}: reference files {', '.join(unlisted)} "
            "are in no [files] list; the hand-out's `import minitorch` would miss them"
        )


def _package_files(assignment: Assignment) -> Plan:
    _check_roles(assignment)
    ref = assignment.reference_file
    task_ids = {t.id for t in assignment.tasks}
    plan: Plan = {}
    for rel in assignment.editable:
        text = _read_text(ref(rel), "editable")
        regions = solution_regions(text, rel)
        if not regions:
            raise ConfigError(
                f"{ref(rel)} is editable but has no solution regions: students would have "
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
        plan[rel] = _text_file(make_skeleton(_read_text(ref(rel), "stubbed"), rel))
    for rel in assignment.solved:
        plan[rel] = _text_file(strip_markers(_read_text(ref(rel), "solved"), rel))
    for role in ("provided", "extra"):
        for rel in getattr(assignment, role):
            path = ref(rel)
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
            data = rewrite_grader_imports(p, data, exported)
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
        {rel: _file(data) for rel, data in tooling.items()},
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
