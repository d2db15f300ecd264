"""The ``grader`` command: parse, call the library, print, map errors to exit codes.

Exit status: 0 when a valid report was written (whatever the score), 2 for a mistake in the
command or the assignment definition, 1 for anything else the grader could not do.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from grader.course.assignment import Assignment, list_assignments, load_assignment
from grader.errors import ConfigError, GraderError

MODES = ("inprocess", "sandbox", "docker")


def _assignment_arg(parser: argparse.ArgumentParser, positional: bool = False) -> None:
    names = ", ".join(list_assignments()) or "none found"
    if positional:
        parser.add_argument("assignment", help=f"assignment name ({names}) or folder")
    else:
        parser.add_argument(
            "--assignment", "-a", required=True, help=f"assignment name ({names}) or folder"
        )


def printable(text: str) -> str:
    """``text`` with whatever the terminal cannot encode (a lone surrogate, ...) escaped.

    Messages carry whatever student code raised; printing them must never fail after the
    report is written.
    """
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    try:
        return text.encode(encoding, "backslashreplace").decode(encoding)
    except LookupError:
        return text.encode("ascii", "backslashreplace").decode("ascii")


def plain(text: str) -> str:
    """Student-written text for rich: printable, and shown as is, never read as markup."""
    from rich.markup import escape

    return escape(printable(text))


def print_results(results: dict[str, Any], title: str, *, failures: bool = True) -> None:
    """The per-task table and, below it, the first line of each failed test."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title=plain(title), title_justify="left")
    table.add_column("task")
    table.add_column("title")
    table.add_column("tests passed", justify="right")
    table.add_column("points", justify="right")
    for t in results.get("extra_data", {}).get("tasks", []):
        style = (
            "green" if t["score"] >= t["max_score"] else ("red" if t["score"] == 0 else "yellow")
        )
        table.add_row(
            plain(t["id"]),
            plain(t["title"]),
            f"{t['passed']}/{t['total']}",
            f"[{style}]{t['score']:g} / {t['max_score']:g}[/]",
        )
    max_score = results.get("extra_data", {}).get("max_score", 0)
    table.add_row("", "[bold]total[/]", "", f"[bold]{results['score']:g} / {max_score:g}[/]")
    console.print(table)
    output = results.get("output", "").splitlines()
    # The first line is the score; a report without tests has only its reason to show.
    for line in output[1:] if results.get("tests") else output:
        console.print(f"  [dim]{plain(line)}[/]")
    if failures:
        failed = [t for t in results.get("tests", []) if t["status"] != "passed"]
        for t in failed[:12]:
            first = (t["output"].strip().splitlines() or [""])[0]
            console.print(f"  [red]x[/] {plain(t['name'])}: {plain(first[:150])}")
        if len(failed) > 12:
            console.print(f"  ... and {len(failed) - 12} more failed tests (see the JSON)")


# --------------------------------------------------------------------------- grade
def _cmd_grade(args: argparse.Namespace) -> int:
    assignment = load_assignment(args.assignment)
    submission = Path(args.submission)
    if not submission.exists():
        # A typo in a TA's command line, not a student's fault: no report, a usage error.
        raise ConfigError(f"{submission} does not exist (expected a submission folder or zip)")
    out = Path(args.out)
    if args.mode == "docker" and (args.seed is not None or args.max_examples or args.no_shrink):
        raise ConfigError(
            "--seed, --max-examples and --no-shrink are for the sandbox and inprocess modes; "
            "docker mode grades exactly as the Gradescope bundle does"
        )
    if args.mode == "docker":
        from grader.platforms.containers import grade_in_container

        results = grade_in_container(submission, assignment, out)
    else:
        from grader.grading.results import write_results
        from grader.grading.runner import grade

        extra = ["--grading-seed", str(args.seed)] if args.seed is not None else []
        if args.max_examples is not None:
            extra += ["--max-examples", str(args.max_examples)]
        if args.no_shrink:
            extra.append("--no-shrink")
        result = grade(submission, assignment, mode=args.mode, extra_args=extra)
        results = result.results
        write_results(results, out)
        if args.verbose:
            print(printable(result.pytest_output))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_results(results, f"{assignment.title}: {submission.name}")
        print(f"results written to {out}")
    return 0


def _add_grade(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grade", help="grade one submission (a folder or a .zip)")
    p.add_argument("submission", help="submission folder or .zip")
    _assignment_arg(p)
    p.add_argument("--mode", choices=MODES, default="sandbox", help="where student code runs")
    p.add_argument("--out", default="results.json", help="where to write results.json")
    p.add_argument("--json", action="store_true", help="print the results.json document")
    p.add_argument("--verbose", "-v", action="store_true", help="also print pytest's output")
    p.add_argument(
        "--seed",
        type=int,
        help="explore with this hypothesis seed instead of the fixed grading one (flake hunts)",
    )
    p.add_argument(
        "--max-examples", type=int, help="override the assignment's hypothesis budget per test"
    )
    p.add_argument(
        "--no-shrink",
        action="store_true",
        help="show each failure's first example, not a minimal one (faster; same scores)",
    )
    p.set_defaults(func=_cmd_grade)


# --------------------------------------------------------------------------- demo
def _cmd_demo(args: argparse.Namespace) -> int:
    from grader.evidence.demo import run_demo

    names = args.assignment or list_assignments()
    assignments: list[Assignment] = [load_assignment(n) for n in names]
    return run_demo(assignments, Path(args.out), mode=args.mode)


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="grade the bundled example submissions and print a table")
    p.add_argument("--assignment", "-a", action="append", help="only this assignment (repeat)")
    p.add_argument("--out", default="out/demo", help="folder for submissions and results")
    p.add_argument("--mode", choices=MODES[:2], default="sandbox")
    p.set_defaults(func=_cmd_demo)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``grader`` parser; for ``command`` "grade" or "demo" only that one's subcommand
    (a grade is the command run once per submission, and the other commands' imports are a
    few percent of its CPU)."""
    parser = argparse.ArgumentParser(
        prog="grader", description="Autograder for the MiniTorch autodiff course."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_grade(sub)
    _add_demo(sub)
    if command in ("grade", "demo"):
        return parser
    # Each job's module registers its own subcommands; imports stay light (no docker SDK
    # or rich import until a command runs).
    from grader.batch import commands as batch
    from grader.course import handout
    from grader.evidence import audit
    from grader.platforms import bundle, canvas, images

    for module in (handout, bundle, images, batch, canvas, audit):
        module.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser(words[0] if words else None)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"grader: {printable(str(exc))}", file=sys.stderr)
        return 2
    except GraderError as exc:
        print(f"grader: {printable(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("grader: interrupted", file=sys.stderr)
        return 130
