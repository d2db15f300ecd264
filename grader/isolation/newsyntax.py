"""Whether a file that does not compile here uses syntax of a newer Python, and which.

A student on Python 3.12 may write ``def map[T, U](fn: ...)`` or ``type Alias = ...``
(PEP 695), or an f-string that reuses its own quotes inside ``{...}`` (PEP 701); the
grading Python calls that a bare SyntaxError. No newer Python runs here, so the known
constructs are recognised by their tokens on the failing line, and each finding is then
checked: the construct is rewritten the way the older grammar accepts (type parameters
dropped, ``type`` dropped, the f-string replaced by an empty string), the file compiled
again, and only when the error leaves that line is the finding stated as fact.

Runs in the worker: standard library only (copied next to worker.py).
"""

from __future__ import annotations

import io
import sys
import tokenize
from dataclasses import dataclass

__all__ = ["Finding", "newer_syntax", "syntax_message"]

#: How many failing lines one file may have rewritten and recompiled.
_MAX_ROUNDS = 20
_PREFIXES = {"", "r", "u", "f", "b", "br", "rb", "fr", "rf"}


@dataclass(frozen=True)
class Finding:
    line: int
    version: tuple[int, int]  # the first Python whose grammar has the construct
    what: str  # "a generic function `def map[...]`"
    fix: str  # "write it without type parameters, as `def map(...)`"
    confirmed: bool  # the file compiled past this line once the construct was rewritten


def _version_text(version: tuple[int, int]) -> str:
    return f"{version[0]}.{version[1]}"


# --------------------------------------------------------------------------- tokens
def _logical_tokens(lines: list[str], lineno: int) -> list[tokenize.TokenInfo]:
    """The significant tokens from the start of line ``lineno`` to the end of its statement,
    with positions in the whole file (as far as the tokenizer gets)."""
    rest = iter(lines[lineno - 1 :])
    found: list[tokenize.TokenInfo] = []
    skip = {tokenize.INDENT, tokenize.DEDENT, tokenize.NL, tokenize.COMMENT}
    try:
        for tok in tokenize.generate_tokens(lambda: next(rest, "")):
            if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
                break
            if tok.type in skip:
                continue
            start = (tok.start[0] + lineno - 1, tok.start[1])
            end = (tok.end[0] + lineno - 1, tok.end[1])
            found.append(tok._replace(start=start, end=end))
            if len(found) > 2000:
                break
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass
    return found


def _matching_bracket(tokens: list[tokenize.TokenInfo], at: int) -> int | None:
    depth = 0
    for i in range(at, len(tokens)):
        if tokens[i].type == tokenize.OP and tokens[i].string in "([{":
            depth += 1
        elif tokens[i].type == tokenize.OP and tokens[i].string in ")]}":
            depth -= 1
            if depth == 0:
                return i if tokens[i].string == "]" else None
    return None


def _has_default(tokens: list[tokenize.TokenInfo]) -> bool:
    """Whether a type parameter list (its tokens, brackets included) gives a default."""
    depth = 0
    for tok in tokens:
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        elif depth == 1 and tok.type == tokenize.OP and tok.string == "=":
            return True
    return False


# --------------------------------------------------------------------------- f-strings
def _scan_plain(s: str, i: int, quote: str, raw: bool) -> int | None:
    """The index after a plain string's closing ``quote`` (``i`` is after the opening one)."""
    while i < len(s):
        if s.startswith(quote, i):
            return i + len(quote)
        if s[i] == "\\" and not raw:
            i += 2
            continue
        if s[i] == "\n" and len(quote) == 1:
            return None
        i += 1
    return None


def _scan_string(s: str, i: int, flags: set[str]) -> int | None:
    """The index after the string literal starting at ``i`` (prefix included), read with
    Python 3.12's rules for f-strings; ``flags`` gets what Python 3.11 refuses in them."""
    j = i
    while j < len(s) and s[j].isalpha():
        j += 1
    prefix = s[i:j].lower()
    if prefix not in _PREFIXES or j >= len(s) or s[j] not in "'\"":
        return None
    quote = s[j] * 3 if s.startswith(s[j] * 3, j) else s[j]
    if "f" not in prefix:
        return _scan_plain(s, j + len(quote), quote, "r" in prefix)
    return _scan_fstring(s, j + len(quote), quote, "r" in prefix, flags)


def _scan_fstring(s: str, i: int, quote: str, raw: bool, flags: set[str]) -> int | None:
    while i < len(s):
        if s.startswith(quote, i):
            return i + len(quote)
        c = s[i]
        if c == "\\" and not raw:
            i += 2
        elif c == "\n" and len(quote) == 1:
            return None
        elif s.startswith("{{", i) or s.startswith("}}", i):
            i += 2
        elif c == "{":
            start = i + 1
            end = _scan_field(s, start, quote, flags)
            if end is None:
                return None
            if quote in s[start : end - 1]:
                flags.add("quotes")
            if "\\" in s[start : end - 1]:  # even in a string literal there
                flags.add("backslash")
            if len(quote) == 1 and "\n" in s[start : end - 1]:
                flags.add("newline")
            i = end
        else:
            i += 1
    return None


def _scan_field(s: str, i: int, quote: str, flags: set[str]) -> int | None:
    """The index after the ``}`` that closes the replacement field whose expression starts
    at ``i`` (its format spec included)."""
    depth = 0
    while i < len(s):
        c = s[i]
        if c.isalpha() or c == "_":
            j = i
            while j < len(s) and (s[j].isalnum() or s[j] == "_"):
                j += 1
            if j < len(s) and s[j] in "'\"" and s[i:j].lower() in _PREFIXES:
                end = _scan_string(s, i, flags)
                if end is None:
                    return None
                i = end
            else:
                i = j
        elif c in "'\"":
            end = _scan_string(s, i, flags)
            if end is None:
                return None
            i = end
        elif c == "\\":
            flags.add("backslash")
            i += 1
        elif c == "#":
            flags.add("comment")
            while i < len(s) and s[i] != "\n":
                i += 1
        elif c in "([{":
            depth += 1
            i += 1
        elif c in ")]":
            depth -= 1
            i += 1
        elif c == "}":
            if depth == 0:
                return i + 1
            depth -= 1
            i += 1
        elif c == ":" and depth == 0:
            return _scan_spec(s, i + 1, quote, flags)
        elif c == "!" and depth == 0 and not s.startswith("!=", i):
            i += 1  # a conversion: !r, !s, !a
        else:
            i += 1
    return None


def _scan_spec(s: str, i: int, quote: str, flags: set[str]) -> int | None:
    while i < len(s):
        if s.startswith(quote, i):
            return None
        if s[i] == "{":
            end = _scan_field(s, i + 1, quote, flags)
            if end is None:
                return None
            i = end
        elif s[i] == "}":
            return i + 1
        else:
            i += 1
    return None


# --------------------------------------------------------------------------- findings
_FSTRING_WHAT = {
    "quotes": (
        "an f-string that reuses its own quotes inside `{...}`",
        "use the other kind of quotes inside the braces, as in f\"{d['key']}\"",
    ),
    "backslash": (
        "a backslash inside an f-string's `{...}`",
        "compute that part in a variable before the f-string",
    ),
    "comment": (
        "a comment inside an f-string's `{...}`",
        "move the comment out of the f-string",
    ),
    "newline": (
        "an f-string whose `{...}` spans lines",
        "keep each `{...}` of a one-line f-string on one line",
    ),
}


def _offset(lines: list[str], pos: tuple[int, int]) -> int:
    return sum(len(line) for line in lines[: pos[0] - 1]) + pos[1]


def _cut(text: str, start: int, end: int) -> str:
    """``text`` without ``text[start:end]``, its line breaks kept as line continuations so
    that every later line keeps its number."""
    breaks = text.count("\n", start, end)
    return text[:start] + "\\\n" * breaks + text[end:]


def _detect(lines: list[str], lineno: int) -> tuple[Finding, str] | None:
    """The newer construct on line ``lineno``, and the file's text with it rewritten."""
    text = "".join(lines)
    tokens = _logical_tokens(lines, lineno)
    names = [t.string if t.type in (tokenize.NAME, tokenize.OP) else "" for t in tokens]
    # def f[...] / async def f[...] / class C[...]: type parameters (PEP 695)
    for k in range(len(tokens) - 2):
        if names[k] in ("def", "class") and tokens[k + 1].type == tokenize.NAME:
            if names[k + 2] != "[":
                continue
            close = _matching_bracket(tokens, k + 2)
            if close is None:
                return None
            name = tokens[k + 1].string
            default = _has_default(tokens[k + 2 : close + 1])
            version = (3, 13) if default else (3, 12)
            if names[k] == "def":
                what = f"a generic function `def {name}[...]`"
                fix = f"write it without type parameters, as `def {name}(...)`"
            else:
                what = f"a generic class `class {name}[...]`"
                fix = (
                    f"write it without type parameters, as `class {name}(Generic[T])` with "
                    '`T = TypeVar("T")` from typing, or just `class {name}`'
                ).replace("{name}", name)
            start = _offset(lines, tokens[k + 2].start)
            end = _offset(lines, tokens[close].end)
            return Finding(tokens[k].start[0], version, what, fix, False), _cut(text, start, end)
    # type Alias = ... / type Alias[T] = ... (PEP 695), as a statement of its own
    if (
        len(tokens) > 2
        and tokens[0].string == "type"
        and tokens[0].start[0] == lineno
        and tokens[1].type == tokenize.NAME
        and names[2] in ("=", "[")
    ):
        name = tokens[1].string
        what = f"a type alias statement `type {name} = ...`"
        fix = f"write `{name} = ...` (typing.TypeAlias marks it as an alias if you like)"
        start = _offset(lines, tokens[0].start)
        end = _offset(lines, tokens[1].start)
        if names[2] == "[":
            close = _matching_bracket(tokens, 2)
            if close is None:
                return None
            cut = _cut(text, _offset(lines, tokens[2].start), _offset(lines, tokens[close].end))
            rewritten = _cut(cut, start, end)
        else:
            rewritten = _cut(text, start, end)
        return Finding(lineno, (3, 12), what, fix, False), rewritten
    # except* (PEP 654, Python 3.11)
    for k in range(len(tokens) - 1):
        if names[k] == "except" and names[k + 1] == "*":
            what = "`except*` (exception groups)"
            fix = "catch the ExceptionGroup with a plain `except`"
            star = _offset(lines, tokens[k + 1].start)
            return Finding(tokens[k].start[0], (3, 11), what, fix, False), _cut(
                text, star, star + 1
            )
    # f-strings with what Python 3.12 allows inside `{...}` (PEP 701)
    for tok in tokens:
        if tok.type != tokenize.STRING or tok.start[0] != lineno:
            continue
        head = tok.string[: len(tok.string) - len(tok.string.lstrip("rRbBfFuU"))]
        if "f" not in head.lower():
            continue
        flags: set[str] = set()
        start = _offset(lines, tok.start)
        end = _scan_string(text, start, flags)
        if end is None or not flags:
            continue
        kind = next(k for k in ("quotes", "backslash", "comment", "newline") if k in flags)
        what, fix = _FSTRING_WHAT[kind]
        breaks = text.count("\n", start, end)
        empty = "'''" + "\n" * breaks + "'''" if breaks else '""'
        return Finding(lineno, (3, 12), what, fix, False), text[:start] + empty + text[end:]
    return None


def _error_line(text: str, filename: str) -> int | None:
    """The line of the first syntax error in ``text``, 0 when it compiles."""
    try:
        compile(text, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return exc.lineno or None
    except (ValueError, RecursionError, MemoryError):
        return None
    return 0


def newer_syntax(
    source: bytes | str, exc: SyntaxError, running: tuple[int, int] | None = None
) -> list[Finding]:
    """The constructs of Python versions newer than ``running`` (this one by default) that
    make ``source`` fail with ``exc``: the one on the failing line first, then each further
    one met as the rewritten file compiles on. Empty when none is recognised."""
    running = running or (sys.version_info.major, sys.version_info.minor)
    if isinstance(source, bytes):
        try:
            encoding = tokenize.detect_encoding(io.BytesIO(source).readline)[0]
            text = source.decode(encoding)
        except (SyntaxError, LookupError, UnicodeDecodeError):
            return []
        if text.startswith("\ufeff"):
            text = text[1:]
    else:
        text = source
    filename = exc.filename or "<student>"
    findings: list[Finding] = []
    lineno = exc.lineno
    for _ in range(_MAX_ROUNDS):
        lines = text.splitlines(keepends=True)
        if not lineno or lineno > len(lines):
            break
        detected = _detect(lines, lineno)
        if detected is None:
            break
        finding, rewritten = detected
        if finding.version <= running:
            break
        after = _error_line(rewritten, filename)
        confirmed = after == 0 or (after is not None and after > lineno)
        findings.append(
            Finding(finding.line, finding.version, finding.what, finding.fix, confirmed)
        )
        if not confirmed or not after:
            break
        text, lineno = rewritten, after
    return findings


def syntax_message(rel: str, exc: SyntaxError, findings: list[Finding], grading: str) -> str:
    """What a student reads about ``rel``, which does not compile on Python ``grading``."""
    where = f"line {exc.lineno}" if exc.lineno else "unknown line"
    text = (exc.text or "").strip()
    shown = f"\n    {text}" if text else ""
    first = findings[0] if findings else None
    if first is None or not first.confirmed:
        message = f"{rel} could not be imported: {type(exc).__name__}: {exc.msg} ({where})"
        if first is not None:
            message += (
                f"; line {first.line} looks like Python {_version_text(first.version)} syntax "
                f"({first.what}), and this course grades with Python {grading}"
            )
        return message + shown
    message = (
        f"{rel} could not be imported: it uses Python {_version_text(first.version)} syntax "
        f"(line {first.line}: {first.what}), and this course grades with Python {grading}: "
        f"{first.fix}"
    )
    others = sorted({f.line for f in findings[1:] if f.confirmed})
    if others:
        listed = ", ".join(str(n) for n in others)
        message += f". Newer syntax also at line{'s' if len(others) > 1 else ''} {listed}"
    return message + shown
