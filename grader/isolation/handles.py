"""Handles: a test's view of the student's objects, on the trusted side.

A test holds handles (``mt.Scalar(2.0)``, ``x * y``, ``z.backward()``); nothing of student
code runs in this process. Each operation on a handle is recorded and queued; the queue
goes to the worker's executor (executor.py) in one message when a test asks for a value
(``value(h)``, ``values(a, b)``), so building and differentiating a 200-node graph is one
round trip. Only validated plain data comes back: float, int, bool, str, None, and lists
and dicts of them.

Every handle knows the operations that made it, so a failing check can show the Python
lines that reproduce its value in a shell (``reproducer(h)``): the operations the value
depends on, and the calls made on the objects it depends on (``y.backward()`` before
``x.derivative``).

Standard library only, like protocol.py: the hand-out's plugin uses it in the student's
own process, where the "worker" is an executor in that same process.
One module: it travels alone into each hand-out, and the handle, its session and the
reproducer share one operation log.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

try:
    from . import protocol
except ImportError:  # pragma: no cover - beside the hand-out's plugin
    import protocol  # type: ignore[no-redef]

__all__ = [
    "Handle",
    "Session",
    "builtin",
    "code",
    "culprit",
    "identity",
    "outcomes",
    "reproducer",
    "reset_each_example",
    "value",
    "values",
]

#: Operations queued before a flush is forced even without a value asked for.
MAX_PENDING = 20_000
_PLAIN = (int, float, bool, str, type(None))
_PRECEDENCE = {"atom": 4, "unop": 3, "mul": 2, "add": 1, "cmp": 0}
_BINARY = {
    "add": ("+", "add"), "sub": ("-", "add"), "mul": ("*", "mul"), "truediv": ("/", "mul"),
    "matmul": ("@", "mul"), "pow": ("**", "unop"), "lt": ("<", "cmp"), "le": ("<=", "cmp"),
    "gt": (">", "cmp"), "ge": (">=", "cmp"), "eq": ("==", "cmp"), "ne": ("!=", "cmp"),
}  # fmt: skip
_UNARY = {"neg": "-", "pos": "+", "inv": "~", "abs": "abs"}
#: Operations whose results are objects student code made (and may change): a statement run
#: on one of them belongs to the reproducer of every value that depends on it.
_STUDENT_MADE = frozenset({"call", "binop", "unop", "getitem"})
#: Attributes tools ask of any object (hypothesis, of a test's first argument): never recorded.
_HOOKS = frozenset(
    {"hypothesis_internal_is_this_a_mock_check", "execute_example", "setup_example",
     "teardown_example"}
)  # fmt: skip
#: ``run(message, label, label_of)``: ``label_of(number)`` names an operation of the batch.
Run = Callable[[dict[str, Any], str, Callable[[int], str]], dict[str, Any]]


@dataclass(eq=False)
class _Op:
    number: int
    kind: str
    wire: list[Any]
    inputs: tuple[int, ...]
    render: Callable[[Callable[[Any], str]], str]
    precedence: str = "atom"
    label: str = ""
    name: str = ""
    state: str = "pending"  # pending | done | failed
    fault: protocol.StudentFault | None = None
    generation: int = -1
    uses: list[int] = field(default_factory=list)


class Session:
    """One grade's handles: the operation log, the queue, and the link to the executor.

    ``run(message, label)`` sends a batch to the executor and returns its answer (the
    grader: ``StudentClient.run``; the hand-out: an executor in this process).
    ``generation()`` changes when the worker restarts: objects made before are gone then.
    """

    def __init__(self, run: Run, generation: Callable[[], int] = lambda: 0) -> None:
        self._run = run
        self._generation = generation
        self._ops: dict[int, _Op] = {}
        self._pending: list[_Op] = []
        self._next = 0
        self._reset = True
        self._root: Handle | None = None
        self._failures = 0
        #: The calls that hung lately, as (label, expression): named again when repeated.
        self._hung: dict[tuple[str, str], None] = {}
        #: The operations whose values this test (this example) asked for, in order: a
        #: failing plain ``assert`` is reproduced from them (``read_lines``).
        self.read: list[int] = []

    # -- scope
    def reset(self) -> None:
        """Forget every handle (each test starts afresh); the worker drops its objects."""
        self._ops.clear()
        self._pending.clear()
        self._reset = True
        self._root = None
        self._failures = 0
        self.read.clear()

    def package(self) -> Handle:
        """A handle to the student's ``minitorch`` package that outlives ``reset``: each use
        means the package handle of the test now running (a fixture holds it)."""
        return _Package(self)

    def root(self) -> Handle:
        """The handle to the student's ``minitorch`` package (this test's)."""
        if self._root is None:
            self._root = self._add("root", [], (), lambda name: "minitorch")
        return self._root

    # -- recording
    def _add(
        self,
        kind: str,
        wire: list[Any],
        inputs: tuple[int, ...],
        render: Callable[[Callable[[Any], str]], str],
        precedence: str = "atom",
        label: str = "",
    ) -> Handle:
        self._next += 1
        op = _Op(self._next, kind, [self._next, kind, *wire], inputs, render, precedence, label)
        for i in inputs:
            self._ops[i].uses.append(op.number)
        self._ops[op.number] = op
        self._pending.append(op)
        if len(self._pending) >= MAX_PENDING:
            self._flush([])
        return Handle(self, op.number)

    def encode(self, arg: Any, inputs: list[int]) -> Any:
        """``arg`` for the wire: handles become references, trusted values stay plain."""
        if isinstance(arg, Handle):
            if arg._h_session is not self or arg._h_number not in self._ops:
                raise ValueError("a handle from another test or session was used")
            inputs.append(arg._h_number)
            return {"$h": arg._h_number}
        kind = type(arg)
        if kind in _PLAIN:
            return arg
        if kind is tuple:
            return {"$t": [self.encode(a, inputs) for a in arg]}
        if kind is list:
            return [self.encode(a, inputs) for a in arg]
        if kind is dict and all(type(k) is str and not k.startswith("$") for k in arg):
            return {k: self.encode(v, inputs) for k, v in arg.items()}
        raise TypeError(f"only plain values and handles can be sent to student code, not {kind}")

    def text(self, arg: Any, name: Callable[[Any], str]) -> str:
        if isinstance(arg, Handle):
            return name(arg._h_number)
        if type(arg) is float and not math.isfinite(arg):
            return f"float('{arg}')"
        if type(arg) is tuple:
            inner = ", ".join(self.text(a, name) for a in arg)
            return f"({inner},)" if len(arg) == 1 else f"({inner})"
        if type(arg) is list:
            return "[" + ", ".join(self.text(a, name) for a in arg) + "]"
        if type(arg) is dict:
            return "{" + ", ".join(f"{k!r}: {self.text(v, name)}" for k, v in arg.items()) + "}"
        return repr(arg)

    # -- running
    def _live(self, op: _Op) -> bool:
        return op.state == "done" and op.generation == self._generation()

    def _flush(self, want: Sequence[int]) -> list[Any]:
        """Send what is queued and read ``want``; a value is the fault when it has one."""
        self.read.extend(n for n in dict.fromkeys(want) if n not in self.read[-64:])
        asked = [n for n in dict.fromkeys(want) if self._ops[n].state != "failed"]
        asked = [n for n in asked if self._ops[n].state == "pending" or self._live(self._ops[n])]
        if self._pending or asked:
            batch, self._pending = self._revive(self._pending), []
            message = {"reset": self._reset, "ops": [op.wire for op in batch], "want": asked}
            label = next((self._label(op) for op in reversed(batch) if op.label), "")
            self._reset = False
            got = self._send(message, label, batch, asked)
        else:
            got = {}
        out = []
        for number in want:
            fault = self._fault_of(number) if self._failures else None
            op = self._ops[number]
            if fault is None and number not in got and op.state == "done" and not self._live(op):
                fault = protocol.WorkerCrashed(
                    "this value was lost: the process running your code was restarted "
                    "after an earlier fault in this test"
                )
            out.append(fault if fault is not None else got.get(number))
        return out

    def _revive(self, batch: list[_Op]) -> list[_Op]:
        """``batch`` as it can be sent. An operation whose input failed fails here (its fault
        is that input's). After a restart of the worker, the package, its attributes and
        trusted code are made again first (they hold no student state); an operation that
        needs an object student code made in the lost worker fails, saying so."""
        stale: dict[int, bool] = {}  # number -> can be made again
        lost = protocol.WorkerCrashed(
            "this value was lost: the process running your code was restarted "
            "after an earlier fault in this test"
        )

        def usable(n: int) -> bool:
            op = self._ops[n]
            if op.state == "failed":
                return False
            if op.state == "pending" or self._live(op):
                return True
            if n not in stale:
                stale[n] = op.kind in ("root", "builtin", "code") or (
                    op.kind == "getattr" and all(usable(i) for i in op.inputs)
                )
            return stale[n]

        keep: list[_Op] = []
        for op in batch:
            if all(usable(i) for i in op.inputs):
                keep.append(op)
                continue
            inputs_failed = any(self._ops[i].state == "failed" for i in op.inputs)
            op.state, op.fault = "failed", None if inputs_failed else lost
            self._failures += 1
        remade = [self._ops[n] for n in sorted(stale) if stale[n]]
        return [*remade, *keep]

    def _send(
        self, message: dict[str, Any], label: str, batch: list[_Op], asked: list[int]
    ) -> dict[int, Any]:
        numbers = {op.number for op in batch}

        def label_of(number: int) -> str:  # of the operation a batch hung in
            return self._label(self._ops[number]) if number in numbers else ""

        try:
            reply = self._run(message, label or "your code", label_of)
        except protocol.StudentFault as fault:  # a hang, a crash, the budget: all of it failed
            fault.op = self._hung_in(fault, batch)  # type: ignore[attr-defined]
            for op in batch:
                op.state, op.fault = "failed", fault
            self._failures += len(batch)
            return {}
        generation = self._generation()
        failed = reply.get("failed") if type(reply) is dict else None
        got = reply.get("values") if type(reply) is dict else None
        bad = reply.get("bad") if type(reply) is dict else None
        if type(failed) is not dict or type(got) is not list or len(got) != len(asked):
            failed, got, bad = {str(op.number): {} for op in batch}, [None] * len(asked), {}
        for op in batch:
            if str(op.number) in failed:
                error = failed[str(op.number)]
                op.state = "failed"
                op.fault = protocol.fault_from_json(error) if type(error) is dict else None
                self._failures += 1
            else:
                op.state, op.generation = "done", generation
        out: dict[int, Any] = {}
        for i, number in enumerate(asked):
            why = bad.get(str(i)) if type(bad) is dict else None
            if why:
                out[number] = protocol.BadValue(
                    f"{self.expression(number)} is not plain data: {why}"
                )
            else:
                out[number] = got[i]
        return out

    def _hung_in(self, fault: protocol.StudentFault, batch: list[_Op]) -> int | None:
        """The operation of ``batch`` that ``fault`` (a timeout) stopped in. The worker tells
        it the first time; when the same call comes again (hypothesis replays a failing
        example), the timeout is repeated without running, and the call is found again by
        its label and expression."""
        if not isinstance(fault, protocol.ProbeTimeout):
            return None
        number = getattr(fault, "op", None)
        if any(op.number == number for op in batch):
            assert isinstance(number, int)
            op = self._ops[number]
            self._hung[self._label(op), self.expression(number)] = None
            while len(self._hung) > 16:
                del self._hung[next(iter(self._hung))]
            return number
        for op in batch:
            label = self._label(op) if op.label else ""
            if label and any(k[0] == label for k in self._hung):
                if (label, self.expression(op.number)) in self._hung:
                    return op.number
        return None

    def _label(self, op: _Op) -> str:
        """What ``op`` runs, for a message: ``the + operator``, ``minitorch.operators.mul``
        (a call is named by what it calls, worked out only when asked)."""
        if op.label.startswith("@"):
            return self.callee(int(op.label[1:]))
        return op.label

    def _fault_of(self, number: int) -> protocol.StudentFault | None:
        """The first fault among the operations ``number`` depends on, calls made on the
        same objects included (a ``backward()`` that raised fails ``x.derivative``)."""
        for n in self.closure([number]):
            op = self._ops[n]
            if op.state == "failed":
                if op.fault is not None:
                    return op.fault
        if self._ops[number].state == "failed":
            return protocol.StudentError("Exception", "an operation it needs failed")
        return None

    # -- reproducers
    def _texts(self, order: Sequence[int], named: dict[int, str], limit: int = 0) -> dict[int, str]:
        """The text of each operation of ``order`` (inputs first), inputs written inline
        unless ``named``; cut to ``limit`` characters when given (for one-line labels)."""
        texts: dict[int, str] = {}

        def shown(n: int, context: str) -> str:
            if n in named:
                return named[n]
            op = self._ops[n]
            text = texts[n]
            if _PRECEDENCE[op.precedence] < _PRECEDENCE.get(context, 4) or (
                op.precedence != "atom" and op.precedence == context
            ):
                return f"({text})"
            return text

        for n in order:
            op = self._ops[n]
            text = op.render(lambda m, p=op.precedence: shown(m, p))  # type: ignore[misc]
            texts[n] = text if not limit or len(text) <= limit else text[: limit - 3] + "..."
        return texts

    def expression(self, number: int, limit: int = 200) -> str:
        """The Python expression of one operation, its inputs written out inline."""
        return self._texts(sorted(self._deps(number)), {}, limit)[number]

    def callee(self, number: int) -> str:
        """What a call runs, without variables: ``minitorch.operators.mul``, ``.backward``."""
        names: list[str] = []
        op = self._ops[number]
        while op.kind == "getattr" and len(names) < 8:
            names.append(op.wire[3])
            op = self._ops[op.inputs[0]]
        if op.kind == "root":
            return ".".join(["minitorch", *reversed(names)])
        return "." + ".".join(reversed(names)) if names else "a function"

    def closure(self, targets: Sequence[int]) -> list[int]:
        """The operations ``targets`` depend on, and the calls made on the student's objects
        among them whose results no operation used (``y.backward()``, ``Fn.forward(ctx, x)``:
        run for their effect). Objects are what student code made: a trusted function
        (``code``) shared by many values ties none of them to another's calls."""
        needed: set[int] = set()
        stack = list(targets)
        while stack:
            n = stack.pop()
            if n not in needed:
                needed.add(n)
                stack.extend(self._ops[n].inputs)
        last = max(targets) if targets else 0
        objects = {n for n in needed if self._ops[n].kind in _STUDENT_MADE}
        changed = True
        while changed:
            changed = False
            for op in self._ops.values():
                if op.number in needed or op.number > last or op.kind != "call" or op.uses:
                    continue
                deps = self._deps(op.number)
                if deps & objects:
                    needed |= deps
                    objects |= {n for n in deps if self._ops[n].kind in _STUDENT_MADE}
                    changed = True
        return sorted(needed)

    def _deps(self, number: int) -> set[int]:
        seen: set[int] = set()
        stack = [number]
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(self._ops[n].inputs)
        return seen

    def lines(self, targets: Sequence[int], names: dict[int, str] | None = None) -> list[str]:
        """Python lines reproducing ``targets``: statements, then each target's expression.

        A result used more than once, made by a call, or too long to write inline gets a
        variable; a call whose result nothing uses is a statement (``y.backward()``)."""
        order = self.closure(targets)
        inside = set(order)
        named: dict[int, str] = {}
        given = dict(names or {})
        body: list[str] = []
        texts: dict[int, str] = {}
        counter = 0
        for n in order:
            op = self._ops[n]
            text = texts[n] = self._render_one(n, named, texts)
            if op.kind == "root":
                body.append("import minitorch")
                named[n] = "minitorch"
                continue
            if op.kind == "code" and op.name:  # a definition: its source, then its name
                body.extend(str(op.wire[2]).rstrip().splitlines())
                named[n] = op.name
                continue
            uses = [u for u in op.uses if u in inside]
            if n in targets and n not in given:
                continue
            if not uses and n not in targets:
                body.append(text)
                continue
            long = len(text) > 60 and op.kind != "getattr"
            if n in given or op.kind == "call" or len(uses) > 1 or long:
                counter += 1
                label = given.get(n) or f"v{counter}"
                body.append(f"{label} = {text}")
                named[n] = label
        tail = [given[n] if n in given else texts[n] for n in targets]
        return body + tail

    def _render_one(self, n: int, named: dict[int, str], texts: dict[int, str]) -> str:
        op = self._ops[n]

        def shown(m: int) -> str:
            if m in named:
                return named[m]
            inner = self._ops[m]
            if _PRECEDENCE[inner.precedence] < _PRECEDENCE.get(op.precedence, 4) or (
                inner.precedence != "atom" and inner.precedence == op.precedence
            ):
                return f"({texts[m]})"
            return texts[m]

        return op.render(shown)

    def read_lines(self, limit: int = 40) -> list[str]:
        """The reproducer of the values this test read last (at most ``limit`` lines)."""
        targets = [n for n in self.read[-8:] if n in self._ops]
        if not targets:
            return []
        lines = self.lines(targets)
        if len(lines) > limit:
            lines = [*lines[: limit // 2], "...", *lines[-limit // 2 :]]
        return lines


class Handle:
    """A reference to one of the student's objects, living in the worker.

    Attribute access, calls, operators and indexing record new operations and give new
    handles; nothing runs until a value is asked for. ``bool(h)`` is refused (it would need
    the student's ``__bool__`` to run here): ask ``value(h)`` instead.
    """

    __slots__ = ("_h_session", "_h_number")

    def __init__(self, session: Session, number: int) -> None:
        self._h_session = session
        self._h_number = number

    # -- recording helpers
    def _h_op(
        self, kind: str, wire: list[Any], inputs: list[int], render: Any, **kw: Any
    ) -> Handle:
        return self._h_session._add(kind, wire, tuple(inputs), render, **kw)

    def __getattr__(self, name: str) -> Handle:
        if (name.startswith("_") and name.endswith("_")) or name in _HOOKS:
            # Python's and tools' hooks (__len__, _repr_pretty_, hypothesis' executor and
            # mock checks on a test's first argument) asked of the handle itself.
            raise AttributeError(name)
        number = self._h_number
        return self._h_op(
            "getattr", [{"$h": number}, name], [number], lambda t: f"{t(number)}.{name}"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        """``h.name = value`` sets the attribute on the student's object (the worker's
        ``setattr``); a reproducer shows it as that assignment."""
        if name in Handle.__slots__ or (name.startswith("_") and name.endswith("_")):
            object.__setattr__(self, name, value)  # the handle's own (a hook: refused)
            return
        session, number = self._h_session, self._h_number
        setter = builtin(self, "setattr")
        inputs = [setter._h_number]
        wire = [{"$h": setter._h_number}, session.encode([self, name, value], inputs), {}]
        self._h_op(
            "call",
            wire,
            inputs,
            lambda t: f"{t(number)}.{name} = {session.text(value, t)}",
            label=f"the assignment .{name} =",
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Handle:
        session, number = self._h_session, self._h_number
        inputs = [number]
        wire = [{"$h": number}, session.encode(list(args), inputs), session.encode(kwargs, inputs)]

        def render(t: Callable[[int], str]) -> str:
            parts = [session.text(a, t) for a in args]
            parts += [f"{k}={session.text(v, t)}" for k, v in kwargs.items()]
            return f"{t(number)}({', '.join(parts)})"

        return self._h_op("call", wire, inputs, render, label=f"@{number}")

    def __getitem__(self, key: Any) -> Handle:
        session, number = self._h_session, self._h_number
        inputs = [number]
        wire = [{"$h": number}, session.encode(key, inputs)]
        return self._h_op("getitem", wire, inputs, lambda t: f"{t(number)}[{session.text(key, t)}]")

    def _h_binary(self, name: str, left: Any, right: Any) -> Handle:
        session = self._h_session
        inputs: list[int] = []
        wire = [name, session.encode(left, inputs), session.encode(right, inputs)]
        symbol, precedence = _BINARY[name]
        return self._h_op(
            "binop",
            wire,
            inputs,
            lambda t: f"{session.text(left, t)} {symbol} {session.text(right, t)}",
            precedence=precedence,
            label=f"the {symbol} operator",
        )

    def _h_unary(self, name: str) -> Handle:
        number = self._h_number
        symbol = _UNARY[name]
        if name == "abs":
            return self._h_op(
                "unop", [name, {"$h": number}], [number], lambda t: f"abs({t(number)})"
            )
        return self._h_op(
            "unop",
            [name, {"$h": number}],
            [number],
            lambda t: f"{symbol}{t(number)}",
            precedence="unop",
            label=f"unary {symbol}",
        )

    # Arithmetic and comparisons give handles, as the student's operators would.
    def __add__(self, o: Any) -> Handle:
        return self._h_binary("add", self, o)

    def __radd__(self, o: Any) -> Handle:
        return self._h_binary("add", o, self)

    def __sub__(self, o: Any) -> Handle:
        return self._h_binary("sub", self, o)

    def __rsub__(self, o: Any) -> Handle:
        return self._h_binary("sub", o, self)

    def __mul__(self, o: Any) -> Handle:
        return self._h_binary("mul", self, o)

    def __rmul__(self, o: Any) -> Handle:
        return self._h_binary("mul", o, self)

    def __truediv__(self, o: Any) -> Handle:
        return self._h_binary("truediv", self, o)

    def __rtruediv__(self, o: Any) -> Handle:
        return self._h_binary("truediv", o, self)

    def __matmul__(self, o: Any) -> Handle:
        return self._h_binary("matmul", self, o)

    def __pow__(self, o: Any) -> Handle:
        return self._h_binary("pow", self, o)

    def __lt__(self, o: Any) -> Handle:
        return self._h_binary("lt", self, o)

    def __le__(self, o: Any) -> Handle:
        return self._h_binary("le", self, o)

    def __gt__(self, o: Any) -> Handle:
        return self._h_binary("gt", self, o)

    def __ge__(self, o: Any) -> Handle:
        return self._h_binary("ge", self, o)

    def __eq__(self, o: Any) -> Handle:
        return self._h_binary("eq", self, o)  # type: ignore[override]

    def __ne__(self, o: Any) -> Handle:
        return self._h_binary("ne", self, o)  # type: ignore[override]

    def __neg__(self) -> Handle:
        return self._h_unary("neg")

    def __pos__(self) -> Handle:
        return self._h_unary("pos")

    def __abs__(self) -> Handle:
        return self._h_unary("abs")

    def __invert__(self) -> Handle:
        return self._h_unary("inv")

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise TypeError(
            "a handle has no truth value on the trusted side: ask value(h) for a plain value"
        )

    def __len__(self) -> int:
        n = value(builtin(self, "len")(self))
        if type(n) is not int or n < 0:
            raise protocol.BadValue(f"len({self._h_session.expression(self._h_number)}) gave {n!r}")
        return n

    def __iter__(self) -> Iterator[Handle]:
        """Iterate over a copy (``list(h)``) made once: its length is one value asked for."""
        items = builtin(self, "list")(self)
        for i in range(len(items)):
            yield items[i]

    def __repr__(self) -> str:
        text = self._h_session.expression(self._h_number)
        return f"<handle {text if len(text) <= 60 else text[:57] + '...'}>"


class _Package(Handle):
    """``Session.package()``: always the current test's root handle."""

    __slots__ = ()

    def __init__(self, session: Session) -> None:
        self._h_session = session

    @property  # type: ignore[override]
    def _h_number(self) -> int:
        return self._h_session.root()._h_number


def _session_of(handles: Sequence[Handle]) -> Session:
    if not handles or not all(isinstance(h, Handle) for h in handles):
        raise TypeError("value() and values() take handles")
    session = handles[0]._h_session
    if any(h._h_session is not session for h in handles):
        raise ValueError("handles of different sessions")
    return session


def builtin(like: Handle, name: str) -> Handle:
    """A handle to a builtin (``len``, ``list``, ``id``, ...) applied on the worker's side."""
    return like._h_session._add("builtin", [name], (), lambda t: name)


def code(like: Handle, source: str, name: str = "") -> Handle:
    """A handle to what trusted ``source`` makes in the worker, with ``minitorch`` and
    ``math`` in scope: an expression (``code(mt, "lambda x: x * x")``), or statements
    defining ``name`` (a class, a function)."""
    text = source.strip() if not name else source
    handle = like._h_session._add("code", [text, name], (), lambda t: text if not name else name)
    if name:
        like._h_session._ops[handle._h_number].name = name
    return handle


def reset_each_example(test: Any, session: Session) -> None:
    """Make every hypothesis example of ``test`` start with no objects: the worker's table
    stays small, and a failing example's reproducer holds that example's operations only.

    ``.hypothesis.inner_test`` is hypothesis' documented seam for wrapping each example."""
    given = getattr(test, "hypothesis", None)
    inner = getattr(given, "inner_test", None)
    if inner is None or getattr(inner, "_resets_handles", False):
        return

    @functools.wraps(inner)  # hypothesis names the test by it ("Falsifying example: ...")
    def each_example(*args: Any, **kwargs: Any) -> Any:
        session.reset()
        return inner(*args, **kwargs)

    each_example._resets_handles = True  # type: ignore[attr-defined]
    given.inner_test = each_example


def outcomes(*handles: Handle) -> list[Any]:
    """The plain value of each handle, or the ``StudentFault`` that prevented it (one trip)."""
    session = _session_of(handles)
    return session._flush([h._h_number for h in handles])


def values(*handles: Handle, names: dict[Handle, str] | None = None) -> tuple[Any, ...]:
    """The plain values of ``handles`` in one round trip; raises the first fault met.

    The fault carries ``reproduce``: the lines that rebuild the call it came from (``names``
    for some of its handles), which the report shows under it."""
    results = outcomes(*handles)
    for handle, result in zip(handles, results, strict=True):
        if isinstance(result, protocol.StudentFault):
            if not hasattr(result, "reproduce"):
                lines = reproducer(culprit(result, handle), names=names)
                result.reproduce = lines if len(lines) <= 40 else []  # type: ignore[attr-defined]
            raise result
    return tuple(results)


def value(handle: Handle) -> Any:
    """The plain value of one handle (float, int, bool, str, None, lists, dicts)."""
    return values(handle)[0]


def identity(handle: Handle) -> Handle:
    """A handle to ``id()`` of the object: tells objects apart without their ``==``."""
    return builtin(handle, "id")(handle)


def culprit(fault: protocol.StudentFault, like: Handle) -> Handle:
    """The handle to report ``fault`` on: a batch that hung fails as a whole, and the
    operation it was running when stopped is the one to show (else ``like``)."""
    number = getattr(fault, "op", None)
    session = like._h_session
    return Handle(session, number) if type(number) is int and number in session._ops else like


def reproducer(*handles: Handle, names: dict[Handle, str] | None = None) -> list[str]:
    """Python lines that rebuild ``handles`` in a shell, ending with their expressions."""
    session = _session_of(handles)
    given = {h._h_number: n for h, n in (names or {}).items()}
    return session.lines([h._h_number for h in handles], given)
