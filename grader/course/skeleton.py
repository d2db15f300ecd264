"""Solution regions of the reference, and the student skeleton made from them.

The instructor's reference marks every solution body like this::

    def mul(x: float, y: float) -> float:
        "Multiply two numbers."
        # BEGIN SOLUTION task=0.1
        return x * y
        # END SOLUTION

A hand-out must never contain those bodies, so the skeleton replaces each region with one
``raise NotImplementedError("Task 0.1: implement operators.mul")`` at the region's
indentation. The message names the task (so ``make test TASK=0.1`` is the obvious next
step) and the function (so a traceback deep inside a test still says what to write).

Markers are parsed strictly: a line that looks like a marker but is not exactly one is an
error, because a typo in a marker would otherwise ship a solution to every student.
"""

from __future__ import annotations

import ast
import io
import re
from collections.abc import Callable
from dataclasses import dataclass

from grader.errors import ConfigError

__all__ = [
    "Region",
    "make_skeleton",
    "replace_regions",
    "solution_regions",
    "strip_grader_only",
    "strip_markers",
]

_BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION task=(?P<task>\d+(?:\.\d+)*)[ \t]*$")
_END = re.compile(r"^(?P<indent>[ \t]*)# END SOLUTION[ \t]*$")
# Anything a human might have meant as a marker; checked against the strict forms above.
_LOOKS_LIKE_MARKER = re.compile(r"^[ \t]*#.*\b(BEGIN|END)[ _-]*SOLUTION\b", re.IGNORECASE)

_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Region:
    """One solution region of a reference file.

    ``start`` and ``end`` are the 1-based line numbers of the BEGIN and END marker lines;
    ``lines`` are the lines strictly between them, without line endings. ``function`` is
    the qualified name of the function the student writes, relative to its module
    (``"mul"``, ``"Mul.backward"``); a region inside a nested helper belongs to the
    outermost enclosing function, because that is the one the student is asked for.
    """

    task: str
    start: int
    end: int
    indent: str
    lines: tuple[str, ...]
    function: str

    def code_lines(self) -> list[str]:
        """The region's lines that carry code: not blank, not a comment."""
        return [ln for ln in self.lines if ln.strip() and not ln.strip().startswith("#")]

    def hint(self, path: str) -> str:
        """The text a student sees, e.g. ``Task 1.4: implement Mul.backward``."""
        return f"Task {self.task}: implement {display_name(self.function, path)}"


def display_name(function: str, path: str) -> str:
    """``Mul.backward`` for methods, ``operators.mul`` for module-level functions.

    Module-level functions carry their module because several of them shadow builtins
    (``map``, ``sum``, ``max``, ``id``): "implement map" would be ambiguous.
    """
    if "." in function:
        return function
    stem = path.replace("\\", "/").rsplit("/", 1)[-1]
    stem = stem[:-3] if stem.endswith(".py") else stem
    return f"{stem}.{function}"


def _where(path: str, line: int) -> str:
    return f"{path}:{line}"


def _lines(text: str) -> list[str]:
    """Lines with their endings, split exactly where Python's parser counts lines.

    (``str.splitlines`` also splits on form feeds and other separators, which would shift
    line numbers against the ones ``ast`` reports.)
    """
    return io.StringIO(text, newline="").readlines()


def _split_regions(text: str, path: str) -> list[tuple[str, int, int, str, tuple[str, ...]]]:
    """Find the marker pairs: (task, start, end, indent, lines). No nesting, no strays."""
    found = []
    open_at: tuple[int, str, str] | None = None  # (line, task, indent) of the open BEGIN
    body: list[str] = []
    for number, line in enumerate(_lines(text), start=1):
        raw = line.rstrip("\r\n")
        begin, end = _BEGIN.match(raw), _END.match(raw)
        if begin is None and end is None and _LOOKS_LIKE_MARKER.match(raw):
            raise ConfigError(
                f"{_where(path, number)}: malformed solution marker {raw.strip()!r}; "
                "write exactly '# BEGIN SOLUTION task=<id>' or '# END SOLUTION'"
            )
        if begin is not None:
            if open_at is not None:
                raise ConfigError(
                    f"{_where(path, number)}: BEGIN SOLUTION inside the region opened at "
                    f"line {open_at[0]}; regions cannot nest (close it with '# END SOLUTION')"
                )
            open_at, body = (number, begin["task"], begin["indent"]), []
        elif end is not None:
            if open_at is None:
                raise ConfigError(
                    f"{_where(path, number)}: END SOLUTION without a matching BEGIN SOLUTION"
                )
            found.append((open_at[1], open_at[0], number, open_at[2], tuple(body)))
            open_at = None
        elif open_at is not None:
            body.append(raw)
    if open_at is not None:
        raise ConfigError(
            f"{_where(path, open_at[0])}: BEGIN SOLUTION task={open_at[1]} is never closed "
            "(add '# END SOLUTION' after the solution body)"
        )
    return found


def _function_spans(tree: ast.AST) -> list[tuple[int, int, str]]:
    """(first line, last line, student-facing qualified name) of every function."""
    spans: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: list[str], in_function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, _FunctionNode):
                name = in_function or ".".join([*prefix, child.name])
                spans.append((child.lineno, child.end_lineno or child.lineno, name))
                visit(child, prefix, name)
            elif isinstance(child, ast.ClassDef):
                visit(child, [*prefix, child.name] if in_function is None else prefix, in_function)
            else:
                visit(child, prefix, in_function)

    visit(tree, [], None)
    return spans


def _parse(text: str, path: str, what: str) -> ast.Module:
    try:
        return ast.parse(text, filename=path)
    except SyntaxError as exc:
        raise ConfigError(
            f"{_where(path, exc.lineno or 0)}: {what} is not valid Python: {exc.msg}"
        ) from exc


def solution_regions(text: str, path: str = "<text>") -> list[Region]:
    """Every solution region of ``text`` (a reference source file), in file order.

    Raises ``ConfigError`` naming ``path`` and the line for unbalanced, nested or malformed
    markers, for an empty region, and for a region outside a function (its skeleton would
    raise while the module is imported, so ``import minitorch`` would fail).
    """
    raw_regions = _split_regions(text, path)
    if not raw_regions:
        return []
    spans = _function_spans(_parse(text, path, "the reference file"))
    regions = []
    for task, start, end, indent, lines in raw_regions:
        code = [(start + 1 + i, ln) for i, ln in enumerate(lines) if ln.strip()]
        code = [(n, ln) for n, ln in code if not ln.strip().startswith("#")]
        if not code:
            raise ConfigError(f"{_where(path, start)}: solution region task={task} holds no code")
        first, last = code[0][0], code[-1][0]
        first_indent = code[0][1][: len(code[0][1]) - len(code[0][1].lstrip())]
        if first_indent != indent:
            raise ConfigError(
                f"{_where(path, start)}: the BEGIN SOLUTION marker is indented differently "
                f"from the code below it (line {first}); indent it like the body"
            )
        enclosing = [s for s in spans if s[0] < first <= s[1]]
        if not enclosing:
            raise ConfigError(
                f"{_where(path, start)}: solution region task={task} is not inside a function; "
                "its skeleton would raise when the module is imported"
            )
        low, high, name = max(enclosing, key=lambda s: s[0])  # innermost
        if last > high:
            raise ConfigError(
                f"{_where(path, start)}: solution region task={task} runs past the end of "
                f"{name} (line {high}); close it inside the function"
            )
        regions.append(Region(task, start, end, indent, lines, name))
    return regions


def replace_regions(text: str, path: str, replacement: Callable[[Region], list[str]]) -> str:
    """``text`` with each region, markers included, replaced by ``replacement(region)``.

    The replacement lines carry no line endings; each gets the newline of the BEGIN marker
    line, so CRLF files stay CRLF. This is the seam for the skeleton and for mutation tools.
    """
    regions = solution_regions(text, path)
    lines = _lines(text)
    out: list[str] = []
    cursor = 0  # 0-based index of the next line to copy
    for region in regions:
        out.extend(lines[cursor : region.start - 1])
        marker = lines[region.start - 1]
        newline = marker[len(marker.rstrip("\r\n")) :] or "\n"
        out.extend(line + newline for line in replacement(region))
        cursor = region.end
    out.extend(lines[cursor:])
    return "".join(out)


def make_skeleton(text: str, path: str) -> str:
    """The student's version of a reference file: each region becomes one ``raise``.

    A region that is a whole function body leaves the docstring (outside the region) and the
    ``raise`` as the body, so the result always parses; this is checked anyway, because a
    hand-out that does not import is worse than no hand-out.
    """

    def raise_line(region: Region) -> list[str]:
        return [f'{region.indent}raise NotImplementedError("{region.hint(path)}")']

    skeleton = replace_regions(text, path, raise_line)
    _parse(skeleton, path, "the generated skeleton")
    return skeleton


def strip_markers(text: str, path: str = "<text>") -> str:
    """``text`` without its marker lines, for files shipped solved (the solutions stay)."""
    return replace_regions(text, path, lambda region: [*region.lines])


GRADER_ONLY_BEGIN = "# BEGIN GRADER-ONLY"
GRADER_ONLY_END = "# END GRADER-ONLY"


def strip_grader_only(text: str, path: object = "<text>") -> str:
    """``text`` (a test or support file) without its ``# BEGIN GRADER-ONLY`` ... ``# END
    GRADER-ONLY`` blocks: closed forms and solutions of tasks the student writes stay with
    the grader. Used for the hand-out, so students never see them. Each block becomes one
    comment line, so line numbers of the rest shift but the file stays valid Python
    (checked)."""
    out: list[str] = []
    inside = False
    for n, line in enumerate(text.splitlines(keepends=True), start=1):
        stripped = line.strip()
        if stripped == GRADER_ONLY_BEGIN:
            if inside:
                raise ConfigError(f"{path}:{n}: {GRADER_ONLY_BEGIN} inside a grader-only block")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}# (grader-only code: not in the hand-out)\n")
        elif stripped == GRADER_ONLY_END:
            if not inside:
                raise ConfigError(f"{path}:{n}: {GRADER_ONLY_END} without a BEGIN")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ConfigError(f"{path}: {GRADER_ONLY_BEGIN} is never closed")
    stripped_text = "".join(out)
    try:
        ast.parse(stripped_text, filename=str(path))
    except SyntaxError as exc:
        raise ConfigError(
            f"{path}: without its grader-only blocks the file is not valid Python "
            f"(line {exc.lineno}: {exc.msg})"
        ) from exc
    return stripped_text
