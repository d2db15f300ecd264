"""The wire between the trusted grader and the worker that runs student code.

Frames are length-prefixed JSON (4-byte big-endian length, then UTF-8 JSON). Only plain data
crosses: ``check_plain`` accepts exactly int, float, bool, str, None and lists, tuples and
str-keyed dicts of them, by *exact* type, so a float subclass with a rigged ``__eq__`` or an
object pretending to be a number is refused before it can reach a comparison.

This module is imported by the worker inside the sandbox, so it uses the standard library only
and must not import anything else from ``grader``.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PROTOCOL_VERSION",
    "MAX_FRAME",
    "Call",
    "Reply",
    "StudentFault",
    "StudentError",
    "ProbeTimeout",
    "WorkerCrashed",
    "BadValue",
    "BudgetExhausted",
    "check_plain",
    "clip",
    "encode_frame",
    "FrameReader",
    "OversizedFrame",
    "write_frame",
]

PROTOCOL_VERSION = 1
#: An answer is a few kilobytes; the cap only has to be far above that.
MAX_FRAME = 4 * 1024 * 1024
_HEADER = struct.Struct(">I")
_PLAIN_SCALARS = (int, float, bool, str, type(None))
_MAX_DEPTH = 32
_MAX_ITEMS = 200_000
#: Decoding is where a hostile frame costs the trusted side memory: a few megabytes of
#: ``[],[],...`` become millions of Python lists. Frames with more containers or items than
#: this are refused from their bytes alone, before ``json.loads`` builds anything.
MAX_WIRE_ITEMS = 2 * _MAX_ITEMS
#: The largest integer a check can compare with a float: anything beyond float's range
#: (a 400-digit int) would raise OverflowError inside the trusted comparison instead of
#: failing the one test that received it.
MAX_INT = 2**1024


# --------------------------------------------------------------------------- faults
class StudentFault(Exception):
    """Student code did not produce a usable value. Fails the test that asked for it."""

    kind = "fault"

    def __init__(self, message: str, *, label: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.label = label

    def headline(self) -> str:
        return self.message

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "label": self.label}


class StudentError(StudentFault):
    """Student code raised an exception (at import time or while running an operation)."""

    kind = "error"

    def __init__(
        self,
        type_name: str,
        message: str,
        traceback: str = "",
        *,
        label: str | None = None,
    ) -> None:
        super().__init__(message, label=label)
        self.type_name = type_name
        self.traceback = traceback

    def __str__(self) -> str:
        return self.headline()

    def headline(self) -> str:
        where = f"{self.label} raised " if self.label else ""
        if self.type_name == "ImportError" and self.message.startswith("minitorch/"):
            return self.message
        return f"{where}{self.type_name}: {self.message}".rstrip(": ")

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "type": self.type_name,
            "message": self.message,
            "traceback": self.traceback,
            "label": self.label,
        }


class ProbeTimeout(StudentFault):
    """A call ran past its deadline; the worker was killed."""

    kind = "timeout"


class WorkerCrashed(StudentFault):
    """The worker process died (os._exit, a signal, out of memory)."""

    kind = "crash"


class BadValue(StudentFault):
    """Student code returned something that is not plain data (e.g. a float subclass)."""

    kind = "bad_value"


class BudgetExhausted(StudentFault):
    """The submission used up its wall-clock budget; remaining calls fail at once."""

    kind = "budget"


_FAULTS: dict[str, type[StudentFault]] = {
    c.kind: c for c in (StudentFault, ProbeTimeout, WorkerCrashed, BadValue, BudgetExhausted)
}


def fault_from_json(data: dict[str, Any]) -> StudentFault:
    """Rebuild a fault from its JSON form; unknown shapes become a plain StudentFault."""
    kind = data.get("kind")
    label = data.get("label") if isinstance(data.get("label"), str) else None
    message = str(data.get("message", ""))
    if kind == "error":
        return StudentError(
            str(data.get("type", "Exception")),
            message,
            str(data.get("traceback", "")),
            label=label,
        )
    return _FAULTS.get(str(kind), StudentFault)(message, label=label)


# --------------------------------------------------------------------------- student text
#: How much of each text field of a failed reply reaches a report (characters).
_TEXT_LIMITS = {"message": 2000, "traceback": 4000}


def clip(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters, keeping its start and its end."""
    if len(text) <= limit:
        return text
    tail = min(150, limit // 4)
    return f"{text[: limit - tail]} ... [{len(text) - limit} characters cut] ... {text[-tail:]}"


# --------------------------------------------------------------------------- plain values
def _type_name(value: object) -> str:
    t = type(value)
    mod = t.__module__
    return t.__qualname__ if mod in ("builtins", None) else f"{mod}.{t.__qualname__}"


def check_plain(value: object, what: str = "the value") -> None:
    """Raise ``BadValue`` unless ``value`` is plain data, compared by exact type.

    ``type(x) is float`` rather than ``isinstance``: a subclass can override ``__eq__``,
    ``__float__``, ``__abs__`` or ``__sub__`` and make any comparison succeed.
    """
    count = 0

    def at(path: tuple[Any, ...] | None) -> str:
        """`` at [0]['x']`` for a path kept as (parent, key) pairs (made only for a message:
        formatting every item's path cost more than the check itself)."""
        keys: list[str] = []
        while path is not None:
            path, key = path
            keys.append(f"[{key}]" if type(key) is int else f"[{key!r}]")
        return f" at {''.join(reversed(keys))}" if keys else ""

    def visit(v: object, path: tuple[Any, ...] | None, depth: int) -> None:
        nonlocal count
        count += 1
        if count > _MAX_ITEMS:
            raise BadValue(f"{what} is too large (more than {_MAX_ITEMS} items)")
        if depth > _MAX_DEPTH:
            raise BadValue(f"{what} is nested too deeply ({at(path).strip()})")
        t = type(v)
        if t is int and not -MAX_INT < v < MAX_INT:  # type: ignore[operator]
            raise BadValue(
                f"{what} is an integer of about {int(v.bit_length() * 0.30103) + 1} digits"  # type: ignore[union-attr]
                f"{at(path)}, too large to compare with any number the check expects"
            )
        if t in _PLAIN_SCALARS:
            return
        if t is list or t is tuple:
            for i, item in enumerate(v):  # type: ignore[arg-type]
                visit(item, (path, i), depth + 1)
            return
        if t is dict:
            for k, item in v.items():  # type: ignore[union-attr]
                if type(k) is not str:
                    raise BadValue(f"{what} has a non-string key{at(path)}")
                visit(item, (path, k), depth + 1)
            return
        hint = ""
        for base in (float, int, str, bool, list, tuple, dict):
            if isinstance(v, base):
                hint = (
                    f" (a subclass of {base.__name__}; the grader only accepts a plain "
                    f"Python {base.__name__})"
                )
                break
        raise BadValue(f"{what} is a {_type_name(v)}{at(path)}{hint}")

    visit(value, None, 0)


# --------------------------------------------------------------------------- messages
@dataclass(frozen=True)
class Call:
    """Ask the worker to import one student module (``op="import"``, ``name`` the module),
    to block names (``"init"``) or to run a batch of handle operations (``"run"``)."""

    id: int
    name: str
    args: list[Any] = field(default_factory=list)
    op: str = "run"  # "import" | "init" | "run"

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "call",
            "v": PROTOCOL_VERSION,
            "id": self.id,
            "op": self.op,
            "name": self.name,
            "args": self.args,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Call:
        if data.get("type") != "call" or data.get("v") != PROTOCOL_VERSION:
            raise ValueError(f"not a version-{PROTOCOL_VERSION} call: {data!r:.200}")
        args = data.get("args", [])
        if not isinstance(args, list):
            raise ValueError("call args must be a list")
        return cls(int(data["id"]), str(data["name"]), args, str(data.get("op", "run")))


@dataclass(frozen=True)
class Reply:
    """The worker's answer: a plain value, or a fault description."""

    id: int
    ok: bool
    result: Any = None
    error: dict[str, Any] | None = None

    @property
    def value(self) -> Any:
        """The answer's value; raises the student fault when the call failed."""
        if not self.ok:
            raise fault_from_json(self.error or {})
        return self.result

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "reply", "v": PROTOCOL_VERSION, "id": self.id}
        data["ok"] = self.ok
        if self.ok:
            data["value"] = self.result
        else:
            data["error"] = self.error
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Reply:
        if data.get("type") != "reply" or data.get("v") != PROTOCOL_VERSION:
            raise ValueError(f"not a version-{PROTOCOL_VERSION} reply: {data!r:.200}")
        ok = data.get("ok")
        if type(ok) is not bool or type(data.get("id")) is not int:
            raise ValueError("reply needs a bool 'ok' and an int 'id'")
        if ok:
            return cls(data["id"], True, data.get("value"))
        error = data.get("error")
        if not isinstance(error, dict):
            raise ValueError("failed reply needs an 'error' object")
        # Everything in it is student-controlled text: bounded here, where it is received.
        bounded = {
            k: clip(v, _TEXT_LIMITS.get(k, 200)) if isinstance(v, str) else v
            for k, v in error.items()
        }
        return cls(data["id"], False, None, bounded)


# --------------------------------------------------------------------------- framing
def encode_frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":"), allow_nan=True).encode("utf-8")
    if len(body) > MAX_FRAME:
        raise ValueError(f"frame of {len(body)} bytes is over the {MAX_FRAME} byte limit")
    return _HEADER.pack(len(body)) + body


def write_frame(fd: int, message: dict[str, Any]) -> None:
    data = memoryview(encode_frame(message))
    while data:
        n = os.write(fd, data)
        data = data[n:]


class OversizedFrame(ValueError):
    """A frame over the byte or item limits: refused without being decoded."""


def _check_wire_items(body: bytes) -> None:
    # Every container opens with a bracket and every further item follows a comma, so these
    # counts bound what decoding can build (string contents can only make them larger).
    items = body.count(b"[") + body.count(b"{") + body.count(b",")
    if items > MAX_WIRE_ITEMS:
        raise OversizedFrame(f"frame holds more than {MAX_WIRE_ITEMS} items")


class FrameReader:
    """Accumulates bytes from a pipe and yields whole decoded frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buf.extend(data)
        frames = []
        while len(self._buf) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buf)
            if size > MAX_FRAME:
                raise OversizedFrame(f"incoming frame of {size} bytes is over the limit")
            if len(self._buf) < _HEADER.size + size:
                break
            body = bytes(self._buf[_HEADER.size : _HEADER.size + size])
            del self._buf[: _HEADER.size + size]
            _check_wire_items(body)
            decoded = json.loads(body.decode("utf-8"))
            if not isinstance(decoded, dict):
                raise ValueError("frame is not a JSON object")
            frames.append(decoded)
        return frames


def read_frame_blocking(fd: int) -> dict[str, Any] | None:
    """Read exactly one frame from ``fd``; None at end of file (used by the worker)."""

    def read_exact(n: int) -> bytes | None:
        chunks = bytearray()
        while len(chunks) < n:
            chunk = os.read(fd, n - len(chunks))
            if not chunk:
                return None
            chunks.extend(chunk)
        return bytes(chunks)

    header = read_exact(_HEADER.size)
    if header is None:
        return None
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ValueError(f"incoming frame of {size} bytes is over the limit")
    body = read_exact(size)
    if body is None:
        return None
    decoded = json.loads(body.decode("utf-8"))
    if not isinstance(decoded, dict):
        raise ValueError("frame is not a JSON object")
    return decoded
