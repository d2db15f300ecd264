"""A file that does not compile here because it uses a newer Python's syntax says so.

The worker (grader/isolation/newsyntax.py) recognises the constructs Python 3.12 added on
the failing line, rewrites them the older way and compiles again before stating a finding
as fact; these are the messages a student reads. Every newer source below compiles on
Python 3.12 (3.13 where said) and fails on 3.10 and 3.11. On a Python that has the syntax
the check is that the source compiles there (the worker imports it: nothing to report).
"""

from __future__ import annotations

import sys

import pytest

from grader.isolation import absent, newsyntax

RUNNING = (sys.version_info.major, sys.version_info.minor)
REL = "minitorch/operators.py"


def message(source: str, course: str = "3.11", added: tuple[int, int] = (3, 12)) -> str | None:
    """The worker's message for ``source``, which uses syntax Python ``added`` introduced;
    None where this Python is that new (then the source must compile here)."""
    if RUNNING >= added:
        compile(source, REL, "exec", dont_inherit=True)
        return None
    with pytest.raises(SyntaxError) as info:
        compile(source, REL, "exec", dont_inherit=True)
    findings = newsyntax.newer_syntax(source.encode(), info.value, RUNNING)
    return newsyntax.syntax_message(REL, info.value, findings, course)


def error_message(source: str, course: str = "3.11") -> str:
    """The worker's message for a source that fails on every Python."""
    with pytest.raises(SyntaxError) as info:
        compile(source, REL, "exec", dont_inherit=True)
    findings = newsyntax.newer_syntax(source.encode(), info.value, RUNNING)
    return newsyntax.syntax_message(REL, info.value, findings, course)


@pytest.mark.parametrize(
    ("source", "line", "what", "fix"),
    [
        pytest.param(
            "import math\n\n\ndef map[T, U](fn: Callable[[T], U]) -> Callable[[list[T]], list[U]]:"
            "\n    return lambda ls: [fn(x) for x in ls]\n",
            4,
            "a generic function `def map[...]`",
            "write it without type parameters, as `def map(...)`",
            id="generic-function",
        ),
        pytest.param(
            "def reduce[\n    T,\n](fn, start: T) -> T:\n    return start\n",
            1,
            "a generic function `def reduce[...]`",
            "write it without type parameters, as `def reduce(...)`",
            id="type-parameters-over-lines",
        ),
        pytest.param(
            "class Box[T](object):\n    def get[S](self, s: S) -> S:\n        return s\n",
            1,
            "a generic class `class Box[...]`",
            'write it without type parameters, as `class Box(Generic[T])` with `T = TypeVar("T")` '
            "from typing, or just `class Box`",
            id="generic-class",
        ),
        pytest.param(
            "class Module:\n    type Params = dict[str, float]\n",
            2,
            "a type alias statement `type Params = ...`",
            "write `Params = ...` (typing.TypeAlias marks it as an alias if you like)",
            id="type-alias-in-a-class",
        ),
        pytest.param(
            'd = {\'a\': 1}\nshown = f"{d["a"]} and {f"{1}"}"\n',
            2,
            "an f-string that reuses its own quotes inside `{...}`",
            "use the other kind of quotes inside the braces, as in f\"{d['key']}\"",
            id="fstring-same-quotes",
        ),
        pytest.param(
            "xs = ['a']\nshown = f\"{'\\n'.join(xs)}\"\n",
            2,
            "a backslash inside an f-string's `{...}`",
            "compute that part in a variable before the f-string",
            id="fstring-backslash",
        ),
    ],
)
def test_a_newer_construct_is_named_with_its_line_and_what_to_write(
    source: str, line: int, what: str, fix: str
) -> None:
    text = message(source)
    if text is None:
        return  # compiled on this Python: the file imports, as it should
    first = source.splitlines()[line - 1].strip()
    assert text.startswith(
        f"{REL} could not be imported: it uses Python 3.12 syntax (line {line}: {what}), and "
        f"this course grades with Python 3.11: {fix}"
    ), text
    assert text.endswith(f"\n    {first}")


def test_every_newer_line_of_a_file_is_listed() -> None:
    source = (
        "def map[T](fn):\n    return fn\n\n"
        "type Vector = list[float]\n\n"
        "class Box[T]:\n    pass\n\n"
        "x = f'{Box.__name__!r:>{10}}'\n"
    )
    assert message(source) in (
        None,
        (
            f"{REL} could not be imported: it uses Python 3.12 syntax (line 1: a generic function "
            "`def map[...]`), and this course grades with Python 3.11: write it without type "
            "parameters, as `def map(...)`. Newer syntax also at lines 4, 6\n"
            "    def map[T](fn):"
        ),
    )


def test_a_type_parameter_default_is_python_3_13() -> None:
    text = message("def first[T = float](xs: list[T]) -> T:\n    return xs[0]\n", added=(3, 13))
    assert text is None or text.startswith(
        f"{REL} could not be imported: it uses Python 3.13 syntax (line 1: a generic function"
    )


def test_an_unconfirmed_finding_is_not_stated_as_fact() -> None:
    """Type parameters and a real mistake on the same line: the line still fails without
    them, so the message stays the SyntaxError and only says what the line looks like."""
    text = error_message("def map[T](fn) oops:\n    return fn\n")
    if RUNNING >= (3, 12):  # the syntax exists here: only the real mistake is told
        assert "Python 3.1" not in text, text
        return
    assert text == (
        f"{REL} could not be imported: SyntaxError: expected '(' (line 1); line 1 looks like "
        "Python 3.12 syntax (a generic function `def map[...]`), and this course grades with "
        "Python 3.11\n"
        "    def map[T](fn) oops:"
    )


@pytest.mark.parametrize(
    "source",
    [
        "def broken(:\n    pass\n",
        "type = 3\ntype(x) = 4\n",  # `type` the builtin, wrongly used: no alias statement
        "x = f'{1 +}'\n",
        "def f(x):\nreturn x\n",
    ],
)
def test_an_ordinary_syntax_error_is_told_as_before(source: str) -> None:
    text = error_message(source)
    assert text.startswith(f"{REL} could not be imported: SyntaxError: ") or text.startswith(
        f"{REL} could not be imported: IndentationError: "
    ), text
    assert "Python 3.1" not in text


def test_the_message_names_the_courses_python() -> None:
    text = message("type X = int\n", course="3.10")
    assert text is None or "this course grades with Python 3.10" in text


def test_imports_guarded_by_except_importerror_are_found_by_line() -> None:
    source = (
        b"import os\n"
        b"try:\n    import numba\n    from scipy import (\n        special,\n    )\n"
        b"except (ImportError, OSError):\n    numba = None\n"
        b"try:\n    import pandas\nexcept KeyError:\n    pass\n"
        b"try:\n    import torch\nexcept:\n    pass\n"
    )
    assert absent.guarded_lines(source) == {3, 4, 5, 6, 14}
