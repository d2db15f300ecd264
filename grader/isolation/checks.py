"""Checks over handles: the judging half of the handle API, for every module's tests.

A test reads plain values through handles (handles.py) and compares them with what it
computes itself. When a comparison fails, or student code kept a value from coming (it
raised, hung, or gave something that is not plain data), the test fails with a message
written for the student, in one shape everywhere:

    <what> returned the wrong value.        (or: <what> raised ZeroDivisionError: ...)
      called:   minitorch.operators.inv(0.0)
      returned: ...
      expected: 1.5 (within 1e-12 + 1e-07 * |expected|)
      hint:     ...
    Reproduce it in a Python shell:
      >>> import minitorch
      >>> minitorch.operators.inv(0.0)

The reproducer comes from the recorded operations (``reproducer``), made only when a check
fails. Replies are student-controlled, so a reply is checked against the shape it should
have before anything of it is read (``expect``): a test never passes on nothing.

Nothing here knows the course: tolerances, closed forms and strategies stay with the tests
(tests/support.py, tests/tensors.py). Standard library, pytest and hypothesis only, like the plugin:
the hand-out's plugin ships it beside handles.py, and the public tests import it there.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import pytest
from hypothesis import settings

from .handles import Handle, culprit, outcomes, reproducer
from .protocol import BudgetExhausted, ProbeTimeout, StudentError, StudentFault, WorkerCrashed

__all__ = [
    "ANY",
    "CASES",
    "NUMBER",
    "answers",
    "at_most",
    "batched",
    "brief",
    "callee",
    "check_cases",
    "check_close",
    "check_number",
    "check_numbers",
    "expect",
    "faulted",
    "fmt",
    "is_number",
    "pasteable",
    "pointing",
    "report",
    "reproduced",
    "shell",
    "shell_lines",
    "tolerance_text",
    "type_name",
    "unusable",
    "within",
]


# --------------------------------------------------------------------------- messages
def fmt(value: Any) -> str:
    """A value as the student would type it (repr of floats, lists, None)."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        inner = ", ".join(fmt(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {fmt(v)}" for k, v in value.items()) + "}"
    return repr(value)


def report(
    headline: str,
    *,
    called: str,
    returned: Any,
    expected: str,
    snippet: Sequence[str] = (),
    hint: str = "",
) -> NoReturn:
    """Fail the current test with a message written for the student."""
    __tracebackhide__ = True
    lines = [
        headline,
        f"  called:   {called}",
        f"  returned: {returned if isinstance(returned, str) else fmt(returned)}",
        f"  expected: {expected}",
    ]
    if hint:
        lines.append(f"  hint:     {hint}")
    lines += shell_lines(snippet)
    pytest.fail("\n".join(lines), pytrace=False)


def shell_lines(snippet: Sequence[str]) -> list[str]:
    """The reproducer as a Python shell shows it: ``>>>`` prompts, ``...`` inside a block
    (lines that start with a space), and the empty line that ends a block."""
    if not snippet:
        return []
    lines = ["Reproduce it in a Python shell:"]
    for k, line in enumerate(snippet):
        inside = line.startswith(" ")
        lines.append(f"  ... {line}" if inside else f"  >>> {line}")
        ends_block = k + 1 == len(snippet) or not snippet[k + 1].startswith(" ")
        if inside and ends_block:
            lines.append("  ...")
    return lines


def brief(names: Sequence[str], head: int = 6, tail: int = 3) -> str:
    """A list for a message: whole when short; else its first and last items and a count."""
    if len(names) <= head + tail + 2:
        return "[" + ", ".join(names) + "]"
    shown = [*names[:head], "...", *names[-tail:]]
    return "[" + ", ".join(shown) + f"] ({len(names)} items)"


def tolerance_text(rtol: float, atol: float) -> str:
    if rtol and atol:
        return f"within {atol:.2g} + {rtol:.2g} * |expected|"
    if rtol:
        return f"within {rtol:.2g} * |expected|"
    if atol:
        return f"within {atol:.2g}"
    return "exactly"


def is_number(value: Any) -> bool:
    """A plain int or float (a bool is not a number here)."""
    return type(value) in (int, float)


def type_name(value: Any) -> str:
    return type(value).__name__


def within(got: float, expected: float, rtol: float, atol: float) -> bool:
    if math.isnan(expected):
        return math.isnan(got)
    if math.isinf(expected):
        return got == expected
    return abs(got - expected) <= atol + rtol * abs(expected)


def check_number(
    got: Any,
    expected: float,
    *,
    what: str,
    called: str,
    rtol: float,
    atol: float,
    snippet: Sequence[str] = (),
    hint: str = "",
    allow_bool: bool = False,
) -> None:
    """``got`` must be a plain int or float within the tolerance of ``expected``.

    With ``allow_bool`` a bool is read as 1.0 / 0.0 (operators.lt and eq may return one).
    """
    __tracebackhide__ = True
    if allow_bool and isinstance(got, bool):
        got = 1.0 if got else 0.0
    if not is_number(got):
        report(
            f"{what} returned a {type_name(got)}, not a number.",
            called=called,
            returned=got,
            expected=f"a float close to {fmt(expected)}",
            snippet=snippet,
            hint="return a Python float (comparisons should give 1.0 / 0.0, not True / False)"
            if isinstance(got, bool)
            else hint,
        )
    if not within(got, expected, rtol, atol):
        report(
            f"{what} returned the wrong value.",
            called=called,
            returned=got,
            expected=f"{fmt(expected)} ({tolerance_text(rtol, atol)})",
            snippet=snippet,
            hint=hint,
        )


def check_numbers(
    got: Any,
    expected: Sequence[float],
    *,
    what: str,
    called: str,
    rtol: float | Sequence[float],
    atol: float | Sequence[float],
    snippet: Sequence[str] = (),
    hint: str = "",
) -> None:
    """``got`` must be a list of plain numbers, each within tolerance of ``expected``."""
    __tracebackhide__ = True
    n = len(expected)
    rtols = [rtol] * n if isinstance(rtol, (int, float)) else list(rtol)
    atols = [atol] * n if isinstance(atol, (int, float)) else list(atol)
    shown = f"[{', '.join(fmt(e) for e in expected)}]"
    if not isinstance(got, (list, tuple)) or len(got) != n:
        report(
            f"{what} returned the wrong number of values.",
            called=called,
            returned=got,
            expected=f"{n} value(s): {shown}",
            snippet=snippet,
            hint=hint,
        )
    for g, e, r, a in zip(got, expected, rtols, atols, strict=False):
        if not is_number(g) or not within(g, e, r, a):
            bad = "a non-number" if not is_number(g) else "a wrong value"
            report(
                f"{what} returned {bad} ({fmt(g)} where {fmt(e)} was expected).",
                called=called,
                returned=got,
                expected=f"{shown} (each {tolerance_text(r, a)})",
                snippet=snippet,
                hint=hint,
            )


# --------------------------------------------------------------------------- pointers
def _with_line(message: str, line: str) -> str:
    """``message`` with ``line`` added before its reproducer or traceback (else at the end)."""
    lines = message.splitlines()
    for k, text in enumerate(lines):
        if text.startswith(("Reproduce it in a Python shell", "Traceback (your code")):
            return "\n".join([*lines[:k], line, *lines[k:]])
    return "\n".join([*lines, line])


class pointing:  # noqa: N801 - used as a context manager, like pytest.raises
    """On a failure inside the block, add the cross-task pointer that ``explain`` finds.

    ``explain`` runs only when the block fails; it may ask student code and returns "" when it
    has nothing to say. Timeouts and crashes pass through untouched: the plugin words them.
    """

    def __init__(self, explain: Callable[[], str]) -> None:
        self.explain = explain

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        if kind is None or not issubclass(kind, pytest.fail.Exception):
            return False
        try:
            extra = self.explain()
        except Exception:  # noqa: BLE001 - a pointer is a courtesy, never a second failure
            extra = ""
        if not extra:
            return False
        __tracebackhide__ = True
        pytest.fail(_with_line(str(exc.msg), f"  see also: {extra}"), pytrace=False)


# --------------------------------------------------------------------------- reply shapes
# Everything read back from the worker is student-controlled (student code runs in the same
# process as the executor and can walk the stack into what it holds), so a reply is checked
# against the shape it should have before any value is read. A shape is:
#   ANY                     anything (values are judged later, one by one)
#   NUMBER                  an int or float (never a bool)
#   list / dict / str / bool / int   that exact container or type
#   ("list", item, n)       a list of exactly n items (n None: any length), each of shape item
#   {"key": shape, ...}     a dict holding at least these keys, each of its shape
# A reply of the wrong shape fails the test: it never passes by having nothing to compare.
# Everything read back from the worker is student-controlled (student code runs in the same
# process as the executor and can walk the stack into what it holds), so a reply is checked
# against the shape it should have before any value is read. A shape is:
#   ANY                     anything (values are judged later, one by one)
#   NUMBER                  an int or float (never a bool)
#   list / dict / str / bool / int   that exact container or type
#   ("list", item, n)       a list of exactly n items (n None: any length), each of shape item
#   {"key": shape, ...}     a dict holding at least these keys, each of its shape
# A reply of the wrong shape fails the test: it never passes by having nothing to compare.
ANY = object()
NUMBER = object()


def _shape_problem(value: Any, shape: Any, where: str) -> str | None:
    if shape is ANY:
        return None
    if shape is NUMBER:
        return None if is_number(value) else f"{where} is a {type_name(value)}, not a number"
    if isinstance(shape, type):
        ok = type(value) is shape or (shape is int and type(value) is int)
        return None if ok else f"{where} is a {type_name(value)}, not a {shape.__name__}"
    if isinstance(shape, tuple) and shape[0] == "list":
        _, item, length = shape
        if type(value) is not list:
            return f"{where} is a {type_name(value)}, not a list"
        if length is not None and len(value) != length:
            return f"{where} holds {len(value)} items where {length} were expected"
        for i, v in enumerate(value):
            problem = _shape_problem(v, item, f"{where}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(shape, dict):
        if type(value) is not dict:
            return f"{where} is a {type_name(value)}, not a dict"
        for key, sub in shape.items():
            if key not in value:
                return f"{where} has no {key!r}"
            problem = _shape_problem(value[key], sub, f"{where}[{key!r}]")
            if problem:
                return problem
        return None
    raise TypeError(f"unknown shape {shape!r}")


def expect(reply: Any, shape: Any, *, source: str, what: str) -> Any:
    """``reply`` if it has ``shape``; otherwise fail: ``what`` could not be checked
    (``source``: what gave the reply).

    Used on a reply before any value of it is read, so a reply emptied or cut
    short by student code fails (the test cannot judge) instead of passing on nothing."""
    __tracebackhide__ = True
    problem = _shape_problem(reply, shape, "the reply")
    if problem:
        unusable(problem, source=source, what=what)
    return reply


def unusable(problem: str, *, source: str, what: str) -> NoReturn:
    """Fail: ``what`` could not be checked, because the reply of ``source`` has ``problem``."""
    __tracebackhide__ = True
    pytest.fail(
        f"{what} could not be checked: {source} returned a reply where "
        f"{problem}. Student code must not change what the test collects.",
        pytrace=False,
    )


# --------------------------------------------------------------------------- faults and values
def callee(lines: Sequence[str]) -> str:
    return lines[-1].split("(")[0].removeprefix("minitorch.")


def shell(*handles: Handle, names: dict[Handle, str] | None = None) -> list[str]:
    """``reproducer(...)`` as a student pastes it: the imports first."""
    body = [line for line in reproducer(*handles, names=names) if line != "import minitorch"]
    uses_math = any("math." in line for line in body)
    return ["import minitorch", *(["import math"] if uses_math else []), *body]


def pasteable(lines: list[str]) -> list[str]:
    """``lines`` when short enough to paste (a 200-variable graph is not shown)."""
    return lines if len(lines) <= 60 else []


class reproduced:  # noqa: N801 - used as a context manager, like pointing
    """On a failure inside the block, add the shell lines that reproduce ``handles`` (made
    only then: a passing example pays nothing for them)."""

    def __init__(self, *handles: Handle, names: Any = None) -> None:
        self.handles, self.names = handles, names

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        if kind is None or not issubclass(kind, pytest.fail.Exception):
            return False
        __tracebackhide__ = True
        lines = pasteable(shell(*self.handles, names=self.names))
        pytest.fail("\n".join([str(exc.msg), *shell_lines(lines)]), pytrace=False)


def faulted(
    fault: Any, h: Handle | None, what: str = "", hint: str = "", lines: Sequence[str] = (),
    *, called: str = "", names: dict[Handle, str] | None = None,
) -> NoReturn:  # fmt: skip
    """Fail: computing ``h`` ran into ``fault`` (it raised, hung, or gave what is not plain
    data), with the call (``called``, else the reproducer's last line), the student's
    traceback and the lines reproducing it (``lines``, else ``h``'s recorded operations
    named by ``names``; left out when too long to paste). A crash, the spent budget and a
    file that does not import pass through: the plugin words them, once."""
    __tracebackhide__ = True
    importing = isinstance(fault, StudentError) and " could not be imported: " in fault.message
    if isinstance(fault, (WorkerCrashed, BudgetExhausted)) or importing:
        raise fault
    shown = list(lines) or shell(culprit(fault, h), names=names)
    who = what or callee(shown)
    if isinstance(fault, ProbeTimeout):
        head = fault.message
    elif isinstance(fault, StudentError):
        head = f"{who} raised {fault.type_name}: {fault.message}".rstrip(": ")
    else:
        why = fault.message.rsplit(" is not plain data: ", 1)[-1]
        head = f"{who} gave something that is not plain data: {why}"
    text = [head, f"  called:   {called or shown[-1]}"]
    text += [f"  hint:     {hint}"] if hint else []
    if isinstance(fault, StudentError) and fault.traceback:
        text += ["Traceback (your code, most recent call last):", fault.traceback]
    text += shell_lines(pasteable(shown))
    raise pytest.fail.Exception("\n".join(text), pytrace=False) from fault


def answers(*handles: Handle, what: str, called: str = "", names: Any = None) -> list[Any]:
    """The plain values of ``handles`` in one round trip; the first one student code kept
    from coming fails the test (``faulted``: on which call, ``called`` else the call's own
    line, with the lines that reproduce it)."""
    __tracebackhide__ = True
    got = outcomes(*handles)
    for handle, fault in zip(handles, got, strict=True):
        if isinstance(fault, StudentFault):
            faulted(fault, handle, what, called=called, names=names)
    return got


def check_close(
    h: Handle, got: Any, expected: float, rtol: float, atol: float, *, what: str = "",
    names: dict[Handle, str] | None = None, hint: str = "", allow_bool: bool = False,
) -> None:  # fmt: skip
    """``got``, the value of ``h``, is a number within tolerance of ``expected`` (a failure
    names ``what`` was called, else the callee, and reproduces ``h`` with ``names``; with
    ``allow_bool`` True / False read as 1.0 / 0.0)."""
    __tracebackhide__ = True
    if isinstance(got, StudentFault):
        faulted(got, h, what, hint, names=names)
    number = float(got) if allow_bool and type(got) is bool else got
    if not (is_number(number) and within(number, expected, rtol, atol)):
        lines = shell(h, names=names)  # only on failure: it walks the example's operations
        check_number(
            got, expected, what=what or callee(lines), called=lines[-1], rtol=rtol, atol=atol,
            snippet=lines, hint=hint, allow_bool=allow_bool,
        )  # fmt: skip


def check_cases(fn: Handle, cases: Sequence[Any], exact: Any, tolerance: Any, **kw: Any) -> None:
    """``fn(*args)`` for every case in one round trip, each within ``tolerance(args)`` of
    ``exact(*args)`` (``kw``: as ``check_close``)."""
    __tracebackhide__ = True
    calls = [fn(*args) for args in cases]
    for call, got, args in zip(calls, outcomes(*calls), cases, strict=True):
        check_close(call, got, exact(*args), *tolerance(args), **kw)


# --------------------------------------------------------------------------- budgets
def at_most(examples: int) -> settings:
    """Settings for a test that draws fewer examples than the run's budget, because each
    one is expensive or checks a batch of points: ``examples``, or the budget when that is
    lower (a quick run with ``--max-examples 2`` then stays quick in every test)."""
    return settings(max_examples=min(examples, settings().max_examples))


CASES = 10  # cases a batched example checks at most, in one round trip (CASES / 2 on average)


def batched() -> settings:
    """Settings for a test whose examples each check a list of up to ``CASES`` cases: a share
    of the run's budget, so that it checks about as many cases as one per example would."""
    return settings(max_examples=max(2, 2 * settings().max_examples // CASES))
