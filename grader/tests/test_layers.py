"""The package's layers, read from its own imports: data flows one way, and nothing loops.

The layers, lowest first (docs/architecture.md draws them):

    foundation  grader/errors.py, grader/files.py: the error tree and the atomic writer
    course      what the instructor ships: assignment.toml, solution regions, hand-outs, secret
    isolation   the worker that runs student code and everything that contains it
    grading     one grade: locate and stage, the pytest plugin, scoring, results.json
    platforms   where grades go and come from: Gradescope bundle, containers, exports, Canvas
    batch       a class at a time, here or on a Dask cluster   | side by side: neither
    evidence    mutation audit, demo submissions, corpora      | imports the other
    cli         the ``grader`` command, on top of everything

A module may import its own package and any lower layer, never a higher one or a sibling
layer. Every import counts, the ones inside functions too: a lazy import is still a
dependency, only a later one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1]

#: Rank of each layer; equal ranks are siblings that must not import each other.
LAYERS = {
    "foundation": 0,
    "course": 1,
    "isolation": 2,
    "grading": 3,
    "platforms": 4,
    "batch": 5,
    "evidence": 5,
    "cli": 6,
}
FOUNDATION = {"grader", "grader.errors", "grader.files"}
TOP = {"grader.cli", "grader.__main__"}
#: Longer than this, a module states why it is one module at the top of its docstring.
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        if "tests" in rel.parts:
            continue
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def layer(module: str) -> str:
    if module in FOUNDATION:
        return "foundation"
    if module in TOP:
        return "cli"
    return module.split(".")[1]


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute name of what ``node`` imports from, inside ``module``."""
    if not node.level:
        return node.module or ""
    is_package = MODULES[module].name == "__init__.py"
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports(module: str) -> list[tuple[str, int, list[str]]]:
    """(imported grader module, line, names taken from it) for every import in ``module``."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno, []) for a in node.names if a.name in MODULES]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(module, node)
            if target.split(".")[0] != "grader":
                continue
            if target not in MODULES:  # a module that is not there: the test below says so
                found.append((target, node.lineno, []))
                continue
            names = [a.name for a in node.names]
            # `from grader.isolation import protocol` imports a module, not a name
            submodules = [n for n in names if f"{target}.{n}" in MODULES]
            found += [(f"{target}.{n}", node.lineno, []) for n in submodules]
            rest = [n for n in names if n not in submodules]
            if rest:
                found.append((target, node.lineno, rest))
    return found


GRAPH = {m: imports(m) for m in MODULES}


def test_every_import_of_the_grader_names_a_module_that_exists() -> None:
    """A lazy import of a moved module fails only when its line runs: find it here first."""
    missing = [
        f"{module}:{line} imports {target}"
        for module, edges in GRAPH.items()
        for target, line, _ in edges
        if target not in MODULES
    ]
    assert not missing, "\n".join(missing)


def test_the_layers_are_the_packages() -> None:
    """Every module sits in a known layer: a new package is a decision, made here."""
    assert {layer(m) for m in MODULES} == set(LAYERS)


def test_no_module_imports_a_higher_or_sibling_layer() -> None:
    wrong = []
    for module, edges in GRAPH.items():
        mine = layer(module)
        for target, line, _ in edges:
            if target not in MODULES:
                continue  # reported by the test above
            theirs = layer(target)
            if theirs != mine and LAYERS[theirs] >= LAYERS[mine]:
                wrong.append(f"{module}:{line} ({mine}) imports {target} ({theirs})")
    assert not wrong, "\n".join(wrong)


def test_the_import_graph_has_no_cycle() -> None:
    """A package's ``__init__`` that re-exports its modules counts as importing them."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = "open"
        path.append(module)
        for target, _, _ in GRAPH[module]:
            if target not in MODULES:
                continue
            if state.get(target) == "open":
                cycle = path[path.index(target) :] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = "done"

    for module in MODULES:
        if module not in state:
            visit(module)


def _private_attributes(module: str) -> list[str]:
    """``mod._name`` where ``mod`` is a grader module this one imported."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    bound = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _resolve(module, node) in MODULES:
            target = _resolve(module, node)
            for a in node.names:
                if f"{target}.{a.name}" in MODULES:
                    bound[a.asname or a.name] = f"{target}.{a.name}"
        elif isinstance(node, ast.Import):
            bound.update({a.asname: a.name for a in node.names if a.asname and a.name in MODULES})
    return [
        f"{module}:{node.lineno} uses {bound[node.value.id]}.{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in bound
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
    ]


def test_no_module_uses_another_modules_private_names() -> None:
    private = [
        f"{module}:{line} takes {name} from {target}"
        for module, edges in GRAPH.items()
        for target, line, names in edges
        for name in names
        if name.startswith("_") and name != "__version__" and target != module
    ]
    private += [found for module in MODULES for found in _private_attributes(module)]
    assert not private, "\n".join(private)


def test_long_modules_say_why_they_are_one_module() -> None:
    """Over ``MAX_LINES`` lines, the docstring's first paragraph ends with a line that starts
    "One module:" and gives the reason."""
    unexplained = []
    for module, path in MODULES.items():
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        doc = ast.get_docstring(ast.parse(text)) or ""
        if lines > MAX_LINES and "\nOne module: " not in f"\n{doc}":
            unexplained.append(f"{module}: {lines} lines")
    assert not unexplained, "\n".join(unexplained)


def test_the_checks_above_can_fail() -> None:
    """The graph is read right: lazy imports, package imports and module imports are edges."""
    assert "grader.batch.cluster" in {t for t, _, _ in GRAPH["grader.batch.run"]}  # lazy
    assert "grader.isolation" in {t for t, _, _ in GRAPH["grader.grading.runner"]}  # a package
    assert "grader.isolation.protocol" in {t for t, _, _ in GRAPH["grader.isolation.worker"]}
    assert layer("grader.batch.cluster") == "batch" and layer("grader.cli") == "cli"
