"""The generic executor: the worker's half of handles.

A test on the trusted side holds handles to the student's objects; what it does to them
(attribute access, calls, operators, indexing) is recorded there and sent here as a list of
operations, in one message when a value is needed. This module applies them in order and
keeps each result under the number of the operation that made it. It knows nothing about
the course: no probe, no closed form, no stand-in, nothing a student's code could read
to learn what is being checked, beyond the operations themselves.

Standard library only: it is copied, alone with protocol.py, into each worker's folder.

An operation is a list ``[number, kind, ...]``:

- ``[n, "root"]``: the student's ``minitorch`` package;
- ``[n, "getattr", target, name]``, ``[n, "getitem", target, key]``;
- ``[n, "call", target, args, kwargs]``;
- ``[n, "binop", op, left, right]``, ``[n, "unop", op, operand]`` (``op`` from ``operator``);
- ``[n, "builtin", name]``: one of a few builtins (``len``, ``list``, ``id``, ...);
- ``[n, "code", source, name]``: trusted source text, run here with ``minitorch`` and
  ``math`` in scope: an expression (``name`` empty), or statements defining ``name``.

Arguments are plain data, where ``{"$h": n}`` stands for the object operation ``n`` made and
``{"$t": [...]}`` for a tuple. A number this executor holds nothing for is refused.

An operation that raises does not stop the others: its error is kept under its number, and
an operation that needs its result is skipped (the trusted side reports the first error in
what a value depends on, calls on the same objects included).
"""

from __future__ import annotations

import builtins
import importlib
import math
import operator
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["Executor", "UnknownHandle", "BINARY", "UNARY", "BUILTINS", "plain"]

#: The operators a handle supports, by the name ``operator`` gives them.
BINARY = frozenset(
    {"add", "sub", "mul", "truediv", "pow", "lt", "le", "gt", "ge", "eq", "ne", "matmul"}
)
UNARY = frozenset({"neg", "pos", "abs", "inv"})
#: Builtins a test may call on the student's objects (their results stay handles).
BUILTINS = frozenset(
    {"len", "list", "tuple", "dict", "id", "iter", "next", "sorted", "float", "int", "str",
     "repr", "isinstance", "getattr", "setattr", "hasattr", "callable", "type", "sum", "zip",
     "map"}
)  # fmt: skip
#: Objects one grade may hold at once; a reset (each test) empties the table.
MAX_OBJECTS = 2_000_000
_FAILED = object()  # held under the number of an operation that raised or was skipped


class UnknownHandle(LookupError):
    """An operation named an object this executor did not make (or no longer holds)."""


class _Skipped(Exception):
    """An input of the operation failed: it is not run."""


def _decode(value: Any, objects: dict[int, Any]) -> Any:
    kind = type(value)
    if kind is dict:
        if "$h" in value:
            number = value["$h"]
            if type(number) is not int or number not in objects:
                raise UnknownHandle(f"no object under handle {number!r}")
            found = objects[number]
            if found is _FAILED:
                raise _Skipped(number)
            return found
        if "$t" in value:
            return tuple(_decode(v, objects) for v in value["$t"])
        return {k: _decode(v, objects) for k, v in value.items()}
    if kind is list:
        return [_decode(v, objects) for v in value]
    return value


class Executor:
    """Applies operations to the student's objects, keeping each result under its number.

    ``package`` gives the student's ``minitorch`` (the worker's resilient loader);
    ``missing`` says, for a name the package lacks, which student file failed to provide
    it (or None), so ``mt.Scalar`` fails with that file's import error, not an AttributeError.
    """

    def __init__(
        self, package: Callable[[], Any], missing: Callable[[str], BaseException | None]
    ) -> None:
        self._package = package
        self._missing = missing
        self.objects: dict[int, Any] = {}
        self._compiled: dict[tuple[str, str], Any] = {}
        #: The operation being applied (None between batches), and a count of operations
        #: begun: a watcher that sees both unchanged for a while knows which one hangs.
        self.running: int | None = None
        self.begun = 0

    def reset(self) -> None:
        self.objects.clear()

    def run(
        self, ops: list[Any], error: Callable[[BaseException], dict[str, Any]]
    ) -> dict[str, Any]:
        """Apply ``ops`` in order; answer ``{number: error}`` for those that raised (``error``
        describes an exception) and ``{number: None}`` for those skipped."""
        failed: dict[str, Any] = {}
        for op in ops:
            number = op[0]
            if type(number) is not int or number in self.objects:
                raise UnknownHandle(f"operation number {number!r} is not new")
            if len(self.objects) >= MAX_OBJECTS:
                raise UnknownHandle("too many objects held at once")
            self.running, self.begun = number, self.begun + 1
            try:
                self.objects[number] = self._apply(op[1], op[2:])
            except _Skipped:
                self.objects[number] = _FAILED
                failed[str(number)] = None
            except UnknownHandle:
                raise
            except BaseException as exc:  # noqa: BLE001 - student code may raise anything
                self.objects[number] = _FAILED
                failed[str(number)] = error(exc)
        self.running = None
        return failed

    def answer(
        self,
        message: dict[str, Any],
        error: Callable[[BaseException], dict[str, Any]],
        plain: Callable[[Any], Any],
        refused: type[Exception],
        passing: tuple[type[BaseException], ...] = (),
    ) -> dict[str, Any]:
        """One batch: ``{"reset": bool, "ops": [...], "want": [numbers]}`` gives
        ``{"values": [...], "bad": {index: why}, "failed": {number: error or None}}``.

        ``plain(obj)`` is an object's plain form, or raises ``refused`` (whose ``message``
        says why); anything else raised while reading (a rigged ``__iter__``) is told as
        "could not be read", except ``passing`` (the deadline), which propagates."""
        if message.get("reset"):
            self.reset()
        failed = self.run(list(message.get("ops", [])), error)
        values: list[Any] = []
        bad: dict[str, str] = {}
        for i, number in enumerate(message.get("want", [])):
            value: Any = None
            if str(number) not in failed:
                try:
                    value = plain(self.held(number))
                except refused as exc:
                    bad[str(i)] = str(getattr(exc, "message", exc))
                except (UnknownHandle, *passing):
                    raise
                except BaseException as exc:  # noqa: BLE001 - student code may raise anything
                    bad[str(i)] = f"the value could not be read: {type(exc).__name__}"
            values.append(value)
        return {"values": values, "bad": bad, "failed": failed}

    def held(self, number: Any) -> Any:
        """The object under ``number``; refuses one it did not make or that failed."""
        if type(number) is not int or self.objects.get(number, _FAILED) is _FAILED:
            raise UnknownHandle(f"no object under handle {number!r}")
        return self.objects[number]

    def _apply(self, kind: str, args: list[Any]) -> Any:
        objects = self.objects
        if kind == "root":
            return self._package()
        if kind == "getattr":
            target = _decode(args[0], objects)
            return self._getattr(target, str(args[1]))
        if kind == "getitem":
            return _decode(args[0], objects)[_decode(args[1], objects)]
        if kind == "call":
            fn = _decode(args[0], objects)
            return fn(*_decode(args[1], objects), **_decode(args[2], objects))
        if kind == "binop" and args[0] in BINARY:
            return getattr(operator, args[0])(_decode(args[1], objects), _decode(args[2], objects))
        if kind == "unop" and args[0] in UNARY:
            return getattr(operator, args[0])(_decode(args[1], objects))
        if kind == "builtin" and args[0] in BUILTINS:
            return getattr(builtins, args[0])
        if kind == "code":
            return self._code(str(args[0]), str(args[1]))
        raise UnknownHandle(f"unknown operation {kind!r}")

    def _getattr(self, target: Any, name: str) -> Any:
        package = sys.modules.get("minitorch")
        if target is not package or package is None:
            return getattr(target, name)
        try:
            return getattr(target, name)
        except AttributeError:
            pass
        try:  # a submodule: minitorch.operators
            return importlib.import_module(f"minitorch.{name}")
        except ModuleNotFoundError:
            pass
        cause = self._missing(name)
        if cause is not None:
            raise cause
        raise AttributeError(f"module 'minitorch' has no attribute '{name}'")

    def _code(self, source: str, name: str) -> Any:
        scope: dict[str, Any] = {"minitorch": self._package(), "math": math}
        # Tests send the same few texts for every example: compile each once per worker.
        key = (source, "exec" if name else "eval")
        compiled = self._compiled.get(key)
        if compiled is None:
            if len(self._compiled) >= 256:
                self._compiled.clear()
            compiled = self._compiled[key] = compile(source, "<test>", key[1])
        if not name:
            return eval(compiled, scope)  # noqa: S307 - trusted text
        exec(compiled, scope)  # noqa: S102 - trusted text
        return scope[name]


def plain(value: Any, depth: int = 0) -> Any:
    """``value`` with numpy scalars (at any depth of lists, tuples, dicts) made plain.

    Graded code may return numpy scalars (numpy is a runtime package and the template
    imports it): ``np.exp(x)`` is a ``numpy.float64``, a float subclass the protocol refuses,
    and ``np.longdouble`` is no float at all. Every numpy real floating type becomes its
    ``float``, every integer type its ``int``, ``numpy.bool_`` its ``bool``. Only what crosses
    the wire changes: the trusted side still checks every value's type after decoding, so
    an impostor class can only make a number cross as a number.
    """
    kind = type(value)
    if kind.__module__ == "numpy":
        numpy = sys.modules.get("numpy")
        try:
            if numpy is not None and isinstance(value, numpy.bool_):
                return bool(value)
            if numpy is not None and isinstance(value, numpy.integer):
                return int(value)
            if numpy is not None and isinstance(value, numpy.floating):
                return float(value)
        except Exception:  # noqa: BLE001 - left as is: check_plain refuses it with a message
            return value
        return value
    if depth < 32 and kind in (list, tuple):
        return kind(plain(v, depth + 1) for v in value)
    if depth < 32 and kind is dict:
        return {k: plain(v, depth + 1) for k, v in value.items()}
    return value
