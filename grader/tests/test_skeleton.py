"""Solution regions, skeletons and marker stripping (grader/skeleton.py).

Small inline sources pin the behaviour; the last tests run the same checks over every file
of reference/minitorch, so a marker typo there fails here before it reaches a hand-out.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from grader.course.skeleton import make_skeleton, solution_regions, strip_markers
from grader.errors import ConfigError, GraderError

REFERENCE = Path(__file__).resolve().parents[2] / "reference" / "minitorch"


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


OPERATORS = src(
    '''
    import math


    def mul(x: float, y: float) -> float:
        """Return x * y."""
        # BEGIN SOLUTION task=0.1
        return x * y
        # END SOLUTION


    def sigmoid(x: float) -> float:
        # BEGIN SOLUTION task=0.1
        if x >= 0.0:
            return 1.0 / (1.0 + math.exp(-x))
        e = math.exp(x)
        return e / (1.0 + e)
        # END SOLUTION


    def map(fn):
        """Curried map."""
        # BEGIN SOLUTION task=0.3
        def apply(ls):
            return [fn(x) for x in ls]

        return apply
        # END SOLUTION
    '''
)

FUNCTIONS = src(
    '''
    class Mul:
        @staticmethod
        def backward(ctx, d_output):
            """Local derivatives times d_output."""
            a, b = ctx.saved_values
            # BEGIN SOLUTION task=1.4
            return b * d_output, a * d_output
            # END SOLUTION


    def reduce(fn, start):
        def apply(ls):
            # BEGIN SOLUTION task=0.3
            acc = start
            for x in ls:
                acc = fn(acc, x)
            return acc
            # END SOLUTION

        return apply
    '''
)


def run(source: str, path: str) -> dict:
    namespace: dict = {}
    exec(compile(source, path, "exec"), namespace)
    return namespace


# --- solution_regions ----------------------------------------------------------------------


def test_regions_carry_task_lines_and_function() -> None:
    regions = solution_regions(OPERATORS, "minitorch/operators.py")
    assert [(r.task, r.function) for r in regions] == [
        ("0.1", "mul"),
        ("0.1", "sigmoid"),
        ("0.3", "map"),
    ]
    first = regions[0]
    assert (first.start, first.end) == (6, 8)
    assert first.lines == ("    return x * y",)
    assert first.indent == "    "
    assert OPERATORS.splitlines()[first.start - 1].strip() == "# BEGIN SOLUTION task=0.1"
    assert regions[2].code_lines() == [
        "    def apply(ls):",
        "        return [fn(x) for x in ls]",
        "    return apply",
    ]


def test_methods_are_qualified_and_nested_helpers_belong_to_the_outer_function() -> None:
    regions = solution_regions(FUNCTIONS, "minitorch/scalar_functions.py")
    assert [r.function for r in regions] == ["Mul.backward", "reduce"]
    assert regions[0].hint("minitorch/scalar_functions.py") == "Task 1.4: implement Mul.backward"
    assert regions[1].hint("minitorch/operators.py") == "Task 0.3: implement operators.reduce"


def test_a_file_without_markers_has_no_regions() -> None:
    assert solution_regions("def f():\n    return 1\n") == []


# --- make_skeleton -------------------------------------------------------------------------


def test_whole_body_becomes_docstring_and_raise() -> None:
    skeleton = make_skeleton(OPERATORS, "minitorch/operators.py")
    assert skeleton == src(
        '''
        import math


        def mul(x: float, y: float) -> float:
            """Return x * y."""
            raise NotImplementedError("Task 0.1: implement operators.mul")


        def sigmoid(x: float) -> float:
            raise NotImplementedError("Task 0.1: implement operators.sigmoid")


        def map(fn):
            """Curried map."""
            raise NotImplementedError("Task 0.3: implement operators.map")
        '''
    )
    namespace = run(skeleton, "operators.py")
    with pytest.raises(NotImplementedError, match=r"^Task 0\.1: implement operators\.mul$"):
        namespace["mul"](1.0, 2.0)
    assert namespace["mul"].__doc__ == "Return x * y."


def test_partial_region_keeps_the_code_around_it_at_its_indentation() -> None:
    skeleton = make_skeleton(FUNCTIONS, "minitorch/operators.py")
    assert "        a, b = ctx.saved_values\n" in skeleton
    assert '        raise NotImplementedError("Task 1.4: implement Mul.backward")\n' in skeleton
    assert '        raise NotImplementedError("Task 0.3: implement operators.reduce")\n' in skeleton
    assert "    return apply\n" in skeleton  # after the region: kept
    namespace = run(skeleton, "operators.py")
    apply = namespace["reduce"](lambda a, b: a + b, 0.0)  # the outer part still runs
    with pytest.raises(NotImplementedError, match="Task 0.3: implement operators.reduce"):
        apply([1.0])


def test_no_solution_line_survives() -> None:
    for text, path in ((OPERATORS, "operators.py"), (FUNCTIONS, "scalar_functions.py")):
        skeleton = make_skeleton(text, path)
        assert "SOLUTION" not in skeleton
        for region in solution_regions(text, path):
            for line in region.code_lines():
                assert line not in skeleton.splitlines(), line


def test_crlf_files_stay_crlf() -> None:
    text = OPERATORS.replace("\n", "\r\n")
    skeleton = make_skeleton(text, "operators.py")
    assert skeleton == make_skeleton(OPERATORS, "operators.py").replace("\n", "\r\n")
    assert strip_markers(text) == strip_markers(OPERATORS).replace("\n", "\r\n")


def test_skeleton_is_deterministic_and_idempotent() -> None:
    skeleton = make_skeleton(OPERATORS, "operators.py")
    assert make_skeleton(OPERATORS, "operators.py") == skeleton
    assert make_skeleton(skeleton, "operators.py") == skeleton  # no regions left


# --- strip_markers -------------------------------------------------------------------------


def test_strip_markers_removes_exactly_the_marker_lines() -> None:
    stripped = strip_markers(OPERATORS)
    kept = [
        line
        for line in OPERATORS.splitlines(keepends=True)
        if line.strip() not in ("# BEGIN SOLUTION task=0.1", "# BEGIN SOLUTION task=0.3")
        and line.strip() != "# END SOLUTION"
    ]
    assert stripped == "".join(kept)
    assert run(stripped, "operators.py")["mul"](3.0, 4.0) == 12.0


def test_strip_markers_keeps_a_file_without_markers_byte_for_byte() -> None:
    text = "x = 1  # BEGIN of nothing\n\n\ndef f():\n    return x\n"
    assert strip_markers(text) == text


# --- malformed markers ---------------------------------------------------------------------


def error_of(text: str, path: str = "minitorch/bad.py", *, strip_too: bool = True) -> str:
    """The ConfigError message of making a skeleton (and, if bad markers, of stripping)."""
    with pytest.raises(ConfigError) as info:
        make_skeleton(text, path)
    if strip_too:
        with pytest.raises(ConfigError):
            strip_markers(text, path)
    assert isinstance(info.value, GraderError)
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        pytest.param(
            """
            def f():
                # BEGIN SOLUTION task=0.1
                x = 1
                # BEGIN SOLUTION task=0.1
                return x
                # END SOLUTION
            """,
            4,
            "cannot nest",
            id="nested",
        ),
        pytest.param(
            """
            def f():
                return 1
                # END SOLUTION
            """,
            3,
            "without a matching BEGIN",
            id="stray-end",
        ),
        pytest.param(
            """
            def f():
                # BEGIN SOLUTION task=1.4
                return 1
            """,
            2,
            "never closed",
            id="unclosed",
        ),
        pytest.param(
            """
            def f():
                # BEGIN SOLUTION
                return 1
                # END SOLUTION
            """,
            2,
            "malformed solution marker",
            id="no-task",
        ),
        pytest.param(
            """
            def f():
                #BEGIN SOLUTION task=1.4
                return 1
                # END SOLUTION
            """,
            2,
            "malformed solution marker",
            id="no-space",
        ),
        pytest.param(
            """
            def f():
                # BEGIN SOLUTION task=1.4
                return 1
                # end solution
            """,
            4,
            "malformed solution marker",
            id="lowercase-end",
        ),
        pytest.param(
            """
            # BEGIN SOLUTION task=0.1
            x = 1
            # END SOLUTION
            """,
            1,
            "not inside a function",
            id="module-level",
        ),
        pytest.param(
            """
            class A:
                # BEGIN SOLUTION task=0.4
                def f(self):
                    return 1
                # END SOLUTION
            """,
            2,
            "not inside a function",
            id="class-level",
        ),
        pytest.param(
            """
            def f():
                # BEGIN SOLUTION task=0.1
                # just a comment

                # END SOLUTION
                return 1
            """,
            2,
            "holds no code",
            id="empty",
        ),
        pytest.param(
            """
            def f():
            # BEGIN SOLUTION task=0.1
                return 1
            # END SOLUTION
            """,
            2,
            "indented differently",
            id="misindented",
        ),
        pytest.param(
            """
            def f():
                # BEGIN SOLUTION task=0.1
                return 1


            def g():
                return 2
                # END SOLUTION
            """,
            2,
            "runs past the end of f",
            id="spans-two-functions",
        ),
    ],
)
def test_malformed_markers_name_file_and_line(text: str, line: int, words: str) -> None:
    message = error_of(src(text))
    assert f"minitorch/bad.py:{line}:" in message
    assert words in message


def test_a_skeleton_that_would_not_parse_is_refused() -> None:
    text = src(
        """
        def f():
            # BEGIN SOLUTION task=1.1
            try:
                pass
            # END SOLUTION
            except ValueError:
                pass
        """
    )
    message = error_of(text, strip_too=False)  # the solved file itself is fine
    assert "generated skeleton is not valid Python" in message
    assert "minitorch/bad.py:" in message


def test_a_reference_that_does_not_parse_is_reported() -> None:
    text = "def f(:\n    # BEGIN SOLUTION task=1.1\n    x\n    # END SOLUTION\n"
    message = error_of(text)
    assert "minitorch/bad.py:1: the reference file is not valid Python" in message


# --- the real reference --------------------------------------------------------------------


def reference_files() -> list[Path]:
    return sorted(REFERENCE.glob("*.py")) if REFERENCE.is_dir() else []


@pytest.mark.skipif(not reference_files(), reason="reference/minitorch is not written yet")
@pytest.mark.parametrize("path", reference_files(), ids=lambda p: p.name)
def test_every_reference_file_makes_a_valid_skeleton(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    rel = f"minitorch/{path.name}"
    skeleton = make_skeleton(text, rel)  # parses, or raises ConfigError
    stripped = strip_markers(text, rel)
    compile(stripped, rel, "exec")
    for region in solution_regions(text, rel):
        assert f'raise NotImplementedError("{region.hint(rel)}")' in skeleton
    for output in (skeleton, stripped):
        assert "# BEGIN SOLUTION" not in output
        assert "# END SOLUTION" not in output
