"""The hand-out's test tooling: the ``pytest_minitorch`` package, and how shipped code
imports it.

The package sits at the top of the hand-out and setup.cfg loads it with ``-p``. Its
``__init__.py`` is grader/course/student_plugin.py, which runs the public tests in the
student's own process; beside it go the grader modules its ``mt`` fixture needs
(``COMPANIONS``, standard library only), each import of a grader/isolation sibling
rewritten to import from the package, protocol.py's being the plugin itself: the plugin's
fault classes are the hand-out's one set. The public tests' grader imports are pointed at
the package the same way (``rewrite_grader_imports``). Every shipped module is checked to
import nothing but the standard library, pytest, hypothesis and the package.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from grader.errors import ConfigError

__all__ = [
    "COMPANIONS",
    "PLUGIN_FILE",
    "PLUGIN_MODULE",
    "PLUGIN_SOURCE",
    "REWRITTEN_IMPORTS",
    "rewrite_grader_imports",
    "tooling_files",
]

#: The plugin's source (in grader/course/), and the package it ships as.
PLUGIN_SOURCE = "student_plugin.py"
PLUGIN_MODULE = "pytest_minitorch"
PLUGIN_FILE = f"{PLUGIN_MODULE}/__init__.py"
#: Files of grader/isolation/ shipped into the plugin's package under the same name.
COMPANIONS = ("handles.py", "checks.py", "executor.py")
#: The grader module whose faults the plugin defines (for the companions and the tests).
PROTOCOL = "grader.isolation.protocol"
# The grader modules a public test may import, and what the hand-out imports instead.
REWRITTEN_IMPORTS = {
    PROTOCOL: PLUGIN_MODULE,
    "grader.isolation.handles": f"{PLUGIN_MODULE}.handles",
    "grader.isolation.checks": f"{PLUGIN_MODULE}.checks",
}
#: What the shipped tooling may import besides the standard library and its own package.
TOOLING_IMPORTS = frozenset({"pytest", "_pytest", "hypothesis", "tomli"})


def _parse(path: Path, data: bytes) -> ast.Module:
    try:
        return ast.parse(data, filename=str(path))
    except SyntaxError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: not valid Python: {exc.msg}") from exc


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
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    for node in reversed(_parse(path, text.encode("utf-8")).body):
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


def tooling_files(grader_dir: Path) -> tuple[dict[str, bytes], dict[str, set[str]]]:
    """The hand-out's tooling package (each file's bytes by its path in the hand-out),
    checked to stand alone, and the names each grader module a shipped test may import
    gives there (by the grader module's name). ``grader_dir`` holds the plugin; its
    companions come from ``isolation/`` beside it."""
    path = grader_dir / PLUGIN_SOURCE
    if not path.is_file():
        raise ConfigError(
            f"the hand-out needs grader/course/{PLUGIN_SOURCE}, but {path} does not exist"
        )
    plugin = _parse(path, path.read_bytes())
    _check_standalone(f"grader/course/{PLUGIN_SOURCE}", plugin)
    files = {PLUGIN_FILE: path.read_bytes()}
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
        files[f"{PLUGIN_MODULE}/{name}"] = text.encode("utf-8")
        exported[f"grader.isolation.{source.stem}"] = _all_names(tree)
    return files, exported


def rewrite_grader_imports(path: Path, data: bytes, exported: dict[str, set[str]]) -> bytes:
    """``from grader.isolation.protocol import X`` becomes ``from pytest_minitorch import X``.

    The public tests are the grader's own files; the hand-out has no ``grader`` package, so
    each import of it is pointed at the tooling package, which gives the same names
    (``exported``, by grader module). Any other grader import is a configuration error (it
    would crash on a student's machine).
    """
    tree = _parse(path, data)
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
