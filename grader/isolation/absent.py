"""Placeholders for packages that graded code imports but the grading runtime does not have.

Real student files often carry an import they never use (an editor added ``import pandas``
or ``from beartype import beartype``). Refusing the import loses the whole file; instead the
worker binds such an import, made directly by a student file, to a placeholder that fails,
with a message meant for the student, as soon as it is used. Fail-closed: a placeholder
holds nothing of any real module and every operation on it either raises or gives another
placeholder, so no value can come out of it; a decorator applied while the file loads is a
use, so that file still fails to import, with the same message.

Lazy, not a use (they give another placeholder): an attribute (``pandas.DataFrame``, also
what ``from pandas import DataFrame`` binds), a subscript and ``|`` (so annotations such as
``df: pd.DataFrame | None`` still evaluate). Everything else is a use: calling it, iterating,
``len``, ``bool``, numbers, arithmetic, ``isinstance``, subclassing, dunder attributes.

An import inside a ``try`` whose handler catches ImportError is left alone: the student's
own fallback runs, as it would without the package.

Runs in the worker: standard library only (copied next to worker.py).
"""

from __future__ import annotations

import ast
import os
import sys
import types
from collections.abc import Callable
from typing import Any

__all__ = [
    "AbsentFinder",
    "PackageNotAvailable",
    "describe_runtime",
    "Placeholder",
    "guarded_lines",
    "is_placeholder",
    "use_message",
]

#: The frozen import machinery: frames to look past for the frame that imports.
_MACHINERY = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")
#: Handlers that catch a failed import.
_CATCHES_IMPORT = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


class PackageNotAvailable(ModuleNotFoundError):
    """A placeholder was used: the package it stands for is not there when grading."""


def describe_runtime(runtime: tuple[str, ...]) -> str:
    """``("numpy", "typing_extensions")`` -> "the standard library, numpy and typing_extensions"."""
    names = ["the standard library", *runtime]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


def use_message(what: str, top: str, runtime: tuple[str, ...], importer: str) -> str:
    """What a student reads when their code uses the placeholder ``what`` (of package ``top``)."""
    where = f" from {importer}" if importer else ""
    return (
        f"your code used {what}, but {top} is not available when grading (graded code can "
        f"use {describe_runtime(runtime)}): remove the import of {top}{where}, or stop "
        "using it"
    )


class Placeholder(types.ModuleType):
    """What an unavailable import binds to. What it stands for sits under an underscored
    name of its ``__dict__``, which ``from x import *`` does not copy."""

    _absent: tuple[str, str, tuple[str, ...], str]

    @classmethod
    def make(cls, name: str, top: str, runtime: tuple[str, ...], importer: str) -> Placeholder:
        obj = cls(name)
        obj.__dict__["_absent"] = (name, top, runtime, importer)
        return obj

    def _fail(self, action: str = "") -> PackageNotAvailable:
        name, top, runtime, importer = self.__dict__["_absent"]
        return PackageNotAvailable(use_message(f"{name}{action}", top, runtime, importer), name=top)

    def _child(self, suffix: str) -> Placeholder:
        name, top, runtime, importer = self.__dict__["_absent"]
        return Placeholder.make(f"{name}{suffix}", top, runtime, importer)

    def __getattr__(self, attr: str) -> Any:
        # Reached only for what the module's own __dict__ lacks. Dunders are how Python and
        # libraries probe an object (``__file__``, ``__all__``, ``__array__``): they must get
        # an AttributeError, with the student's message in it should it reach them.
        if attr.startswith("__") and attr.endswith("__"):
            raise AttributeError(str(self._fail(f".{attr}")))
        child = self._child(f".{attr}")
        self.__dict__[attr] = child  # the same placeholder every time
        return child

    def __repr__(self) -> str:
        name = self.__dict__.get("_absent", ("?",))[0]
        return f"<{name}: not available when grading>"

    __str__ = __repr__

    def __getitem__(self, key: Any) -> Placeholder:
        return self._child("[...]")

    def __or__(self, other: Any) -> Placeholder:
        return self._child(" | ...")

    def __ror__(self, other: Any) -> Placeholder:
        return self._child(" | ...")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise self._fail("(...)")

    def __mro_entries__(self, bases: Any) -> Any:
        raise self._fail(" (as a base class)")

    def __instancecheck__(self, obj: Any) -> bool:
        raise self._fail(" (in isinstance)")

    def __subclasscheck__(self, cls: Any) -> bool:
        raise self._fail(" (in issubclass)")

    def __dir__(self) -> list[str]:
        return []


def is_placeholder(value: object) -> bool:
    return isinstance(value, Placeholder)


def _use(action: str) -> Callable[..., Any]:
    def method(self: Placeholder, *args: Any, **kwargs: Any) -> Any:
        raise self._fail(action)

    return method


_USES = {
    " (as an iterable)": "__iter__ __aiter__ __next__ __contains__",
    " (in len)": "__len__",
    " (as a truth value)": "__bool__",
    " (as a number)": "__int__ __float__ __complex__ __index__ __round__",
    " (in arithmetic)": "__neg__ __pos__ __abs__ __invert__",
    " (in a comparison)": "__lt__ __le__ __gt__ __ge__",
    " (in a with statement)": "__enter__ __exit__ __aenter__ __aexit__",
    " (awaited)": "__await__",
    "[...] (assigned or deleted)": "__setitem__ __delitem__",
}
for _action, _names in _USES.items():
    for _name in _names.split():
        setattr(Placeholder, _name, _use(_action))
for _op in "add sub mul matmul truediv floordiv mod divmod pow lshift rshift and xor".split():
    for _form in ("__{}__", "__r{}__", "__i{}__"):
        setattr(Placeholder, _form.format(_op), _use(" (in arithmetic)"))
del _action, _names, _name, _op, _form


def guarded_lines(source: bytes) -> frozenset[int]:
    """The lines of the imports in ``source`` that sit in a ``try`` catching ImportError."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return frozenset()
    lines: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try) and type(node).__name__ != "TryStar":
            continue
        if not any(_catches_import(h.type) for h in node.handlers):  # type: ignore[attr-defined]
            continue
        for stmt in node.body:  # type: ignore[attr-defined]
            for inner in ast.walk(stmt):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    end = getattr(inner, "end_lineno", None) or inner.lineno
                    lines.update(range(inner.lineno, end + 1))
    return frozenset(lines)


def _catches_import(kind: ast.expr | None) -> bool:
    if kind is None:
        return True
    if isinstance(kind, ast.Tuple):
        return any(_catches_import(k) for k in kind.elts)
    name = kind.attr if isinstance(kind, ast.Attribute) else getattr(kind, "id", "")
    return name in _CATCHES_IMPORT


class _PlaceholderLoader:
    def __init__(self, finder: AbsentFinder, importer: str) -> None:
        self.finder = finder
        self.importer = importer

    def create_module(self, spec: Any) -> Placeholder:
        top = spec.name.split(".")[0]
        module = Placeholder.make(spec.name, top, self.finder.runtime, self.importer)
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        module.__path__ = []  # a package: ``import x.y`` and ``from x.y import z`` resolve here


class AbsentFinder:
    """The last finder on ``sys.meta_path``: it is asked only about modules no other finder
    found, and answers only for imports written in a student file (``student_dir``), with a
    placeholder. ``notify(file stem, top-level name)`` tells the first import of each."""

    def __init__(
        self,
        student_dir: str,
        runtime: tuple[str, ...],
        notify: Callable[[str, str], None],
        package: str = "minitorch",
    ) -> None:
        self.student_dir = student_dir.rstrip("/") + "/"
        self.runtime = runtime
        self.notify = notify
        self.package = package
        self._guarded: dict[str, frozenset[int]] = {}

    def _importer(self) -> tuple[str, int] | None:
        """The student file (and line) whose import statement asked, or None."""
        frame = sys._getframe(2)
        while frame is not None and frame.f_code.co_filename in _MACHINERY:
            frame = frame.f_back  # type: ignore[assignment]
        if frame is None:
            return None
        filename = frame.f_code.co_filename
        if not filename.startswith(self.student_dir) or not filename.endswith(".py"):
            return None
        return filename, frame.f_lineno

    def _is_guarded(self, filename: str, line: int) -> bool:
        if filename not in self._guarded:
            try:
                with open(filename, "rb") as fh:
                    self._guarded[filename] = guarded_lines(fh.read())
            except OSError:
                self._guarded[filename] = frozenset()
        return line in self._guarded[filename]

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        import importlib.util

        top = fullname.split(".")[0]
        if top == self.package or top in self.runtime:
            return None
        if "." in fullname:
            # A submodule of a placeholder (``import matplotlib.pyplot``): its parent is one.
            parent = sys.modules.get(fullname.rsplit(".", 1)[0])
            if not isinstance(parent, Placeholder):
                return None
            importer = parent.__dict__.get("_absent", ("", "", (), ""))[3]
            return importlib.util.spec_from_loader(fullname, _PlaceholderLoader(self, importer))
        if os.path.exists(os.path.join(self.student_dir, f"{top}.py")):
            return None  # `import operators` meant the student's own file: told as before
        asked = self._importer()
        if asked is None or self._is_guarded(*asked):
            return None
        stem = asked[0][len(self.student_dir) : -len(".py")]
        if "/" in stem:
            return None
        rel = f"{self.package}/{stem}.py"
        self.notify(stem, top)
        return importlib.util.spec_from_loader(fullname, _PlaceholderLoader(self, rel))

    def install(self) -> None:
        if self not in sys.meta_path:
            sys.meta_path.append(self)

    def uninstall(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)
