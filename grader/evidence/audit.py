"""``grader audit``: how many wrong solutions does the test suite catch?

Mutation testing of the reference, per task. Each mutant is the reference with one small
AST-level change inside one solution region (a swapped operator, a flipped sign, a changed
constant, a dropped term or call, swapped return values or arguments, an off-by-one range,
a removed accumulation or statement). Each is graded through the normal grading path
(stage -> sandboxed worker -> pytest + hypothesis at the grading budget) with the tests of
its own task, stopping at the first failure.

A survivor may be *equivalent*: a change that does not change behaviour (``a * b`` for
``b * a``). Survivors are therefore rerun with a much larger, differently seeded sample
while every call and answer is logged, and compared with the reference's log on the
same sample: identical answers set the mutant aside as equivalent; any difference means
the suite should have caught it, and the survivor is listed with its diff.
"""

from __future__ import annotations

import argparse
import ast
import copy
import difflib
import json
import math
import multiprocessing
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from grader.course.assignment import Assignment, load_assignment
from grader.course.skeleton import Region, solution_regions

__all__ = ["Mutant", "generate_mutants", "run_audit", "add_commands"]

#: Calls whose result a student computes with: replacing one by an argument is "a dropped
#: term" (``mul(b, d_output)`` -> ``b`` is a backward that forgets d_output).
_VALUE_CALLS = {
    "mul", "add", "neg", "lt", "eq", "max", "sigmoid", "relu", "log", "exp", "inv",
    "log_back", "inv_back", "relu_back", "apply", "fn", "f", "central_difference",
}  # fmt: skip
_BINOPS: dict[type, list[type]] = {
    ast.Add: [ast.Sub],
    ast.Sub: [ast.Add],
    ast.Mult: [ast.Div, ast.Add],
    ast.Div: [ast.Mult],
    ast.Pow: [ast.Mult],
}
_CMPOPS: dict[type, list[type]] = {
    ast.Lt: [ast.LtE, ast.Gt],
    ast.LtE: [ast.Lt],
    ast.Gt: [ast.GtE, ast.Lt],
    ast.GtE: [ast.Gt],
    ast.Eq: [ast.NotEq],
    ast.NotEq: [ast.Eq],
    ast.Is: [ast.IsNot],
    ast.IsNot: [ast.Is],
    ast.In: [ast.NotIn],
    ast.NotIn: [ast.In],
}


@dataclass(frozen=True)
class Mutant:
    id: str
    task: str
    file: str  # e.g. minitorch/scalar_functions.py
    function: str  # e.g. Mul.backward
    operator: str
    line: int
    diff: str
    source: str  # the whole mutated file


# --------------------------------------------------------------------------- generation
def _expr(node: ast.AST) -> str:
    return f"({ast.unparse(node)})"


def _mutations(node: ast.AST) -> Iterator[tuple[str, str]]:
    """(operator name, replacement source for the node's span) for one AST node."""
    if isinstance(node, ast.BinOp):
        for op in _BINOPS.get(type(node.op), []):
            yield "swap-operator", _expr(ast.BinOp(node.left, op(), node.right))
        yield "drop-term", _expr(node.left)
        yield "drop-term", _expr(node.right)
    elif isinstance(node, ast.Compare) and len(node.ops) == 1:
        for op in _CMPOPS.get(type(node.ops[0]), []):
            yield "swap-comparison", _expr(ast.Compare(node.left, [op()], node.comparators))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
        yield "drop-sign", _expr(node.operand)
    elif isinstance(node, ast.BoolOp):
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield "swap-boolean", _expr(ast.BoolOp(other, node.values))
    elif isinstance(node, ast.Constant) and type(node.value) is bool:
        yield "change-constant", repr(not node.value)
    elif isinstance(node, ast.JoinedStr):
        for part in node.values:
            if isinstance(part, ast.FormattedValue):
                yield "drop-term", _expr(part.value)
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        v = node.value
        if isinstance(v, int):
            yield "change-constant", repr(v + 1)
        else:
            yield "change-constant", repr(0.0 if v != 0.0 else 1.0)
            yield "change-constant", repr(v + 1.0)
    elif isinstance(node, ast.Call):
        name = (
            node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        )
        positional = [a for a in node.args if not isinstance(a, ast.Starred)]
        if len(positional) >= 2 and ast.dump(positional[0]) != ast.dump(positional[1]):
            swapped = copy.deepcopy(node)
            swapped.args[0], swapped.args[1] = node.args[1], node.args[0]
            yield "swap-arguments", _expr(swapped)
        if name in _VALUE_CALLS:
            for arg in positional[:3]:
                yield "drop-call", _expr(arg)
        if name == "range" and positional:
            bumped = copy.deepcopy(node)
            last = bumped.args[-1]
            bumped.args[-1] = ast.BinOp(last, ast.Sub(), ast.Constant(1))
            yield "off-by-one", _expr(bumped)
        if name == "reversed" and len(positional) == 1:
            yield "drop-call", _expr(positional[0])
    elif isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple):
        elts = node.value.elts
        if len(elts) >= 2 and len({ast.dump(e) for e in elts}) > 1:
            yield "swap-returns", "return " + ", ".join(ast.unparse(e) for e in reversed(elts))
    elif isinstance(node, ast.AugAssign):
        yield "drop-accumulation", f"{ast.unparse(node.target)} = {ast.unparse(node.value)}"
        if isinstance(node.op, ast.Add):
            yield "swap-operator", f"{ast.unparse(node.target)} -= {ast.unparse(node.value)}"
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        yield "drop-statement", "pass"
    elif isinstance(node, ast.If):
        yield "negate-condition", f"not {_expr(node.test)}"


def _span_target(node: ast.AST) -> ast.AST:
    """The part of the source a mutation replaces (an if's condition, not the whole if)."""
    return node.test if isinstance(node, ast.If) else node


def _replace_span(lines: list[bytes], node: ast.AST, text: str) -> str:
    """Source with ``node``'s exact span (AST offsets are UTF-8 byte columns) replaced."""
    start, end = node.lineno - 1, node.end_lineno - 1  # type: ignore[attr-defined]
    head = lines[start][: node.col_offset]  # type: ignore[attr-defined]
    tail = lines[end][node.end_col_offset :]  # type: ignore[attr-defined]
    new = [*lines[:start], head + text.encode("utf-8") + tail, *lines[end + 1 :]]
    return b"".join(new).decode("utf-8")


def generate_mutants(assignment: Assignment, tasks: list[str] | None = None) -> list[Mutant]:
    """Every mutant of the solution regions of the assignment's editable files."""
    mutants: list[Mutant] = []
    for rel in assignment.editable:
        text = assignment.reference_file(rel).read_text(encoding="utf-8")
        regions: list[Region] = [
            r for r in solution_regions(text, rel) if tasks is None or r.task in tasks
        ]
        tree = ast.parse(text)
        raw = text.encode("utf-8").splitlines(keepends=True)
        seen: set[str] = {text}
        for node in ast.walk(tree):
            if not hasattr(node, "lineno"):
                continue
            span = _span_target(node)
            region = next(
                (r for r in regions if r.start < span.lineno and span.end_lineno < r.end), None
            )
            if region is None:
                continue
            for operator, replacement in _mutations(node):
                source = _replace_span(raw, span, replacement)
                if source in seen:
                    continue
                try:
                    compile(source, rel, "exec")
                except SyntaxError:
                    continue
                seen.add(source)
                diff = "".join(
                    difflib.unified_diff(
                        text.splitlines(keepends=True),
                        source.splitlines(keepends=True),
                        f"reference/{rel}",
                        f"mutant/{rel}",
                        n=1,
                    )
                )
                mutants.append(
                    Mutant(
                        id=f"{Path(rel).stem}:{span.lineno}:{operator}:{len(mutants)}",
                        task=region.task,
                        file=rel,
                        function=region.function,
                        operator=operator,
                        line=span.lineno,
                        diff=diff,
                        source=source,
                    )
                )
    return sorted(mutants, key=lambda m: (m.task, m.file, m.line, m.id))


# --------------------------------------------------------------------------- running
@dataclass(frozen=True)
class _Job:
    assignment: str
    root: str
    task: str | None  # None: the whole suite
    file: str | None
    source: str | None
    args: tuple[str, ...]
    log: bool = False


def _forget_test_modules() -> None:
    """Drop modules imported from test folders by an earlier run in this process.

    pytest imports test files and their helpers (``support``, ``test_scalar``) by plain
    name; a second run with another suite (a weakened copy, or the canonical one for the
    equivalence check) would otherwise get the first suite's cached modules.
    """
    import sys

    keep = [sys.prefix, sys.base_prefix, str(Path(__file__).resolve().parents[1])]
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and not any(str(Path(file).resolve()).startswith(k) for k in keep):
            del sys.modules[name]


def _grade_job(job: _Job) -> dict[str, Any]:
    """In a pool process: stage the reference (or a mutant) and run one task's tests."""
    from grader.grading.runner import run_tests

    _forget_test_modules()
    from grader.grading.scoring import outcomes_from_json_report
    from grader.grading.submission import Located, stage

    assignment = load_assignment(job.assignment, Path(job.root))
    with tempfile.TemporaryDirectory(prefix="grader-audit-") as tmp:
        Path(tmp).chmod(0o755)
        files = {rel: assignment.reference_file(rel).read_bytes() for rel in assignment.editable}
        if job.file is not None and job.source is not None:
            files[job.file] = job.source.encode("utf-8")
        root = stage(assignment, Located(files=files), Path(tmp) / "stage")
        args = (["--task", job.task] if job.task else []) + list(job.args)
        log = Path(tmp) / "calls.jsonl"
        if job.log:
            args += ["--call-log", str(log)]
        report, _, code = run_tests(assignment, root, mode="sandbox", extra_args=args)
        outcomes = outcomes_from_json_report(report)
        failed = [o for o in outcomes if o.outcome != "passed"]
        calls = log.read_text(encoding="utf-8").splitlines() if job.log and log.exists() else []
    first = failed[0] if failed else None
    return {
        "killed": bool(failed) or code not in (0, 1),
        "tests": len(outcomes),
        "by": first.nodeid if first else None,
        "message": (first.message.strip().splitlines() or [""])[0][:200] if first else "",
        "calls": calls,
    }


def _same_calls(a: list[str], b: list[str], rel: float = 1e-12) -> bool:
    """Whether two call logs show the same behaviour (floats equal to ``rel``)."""
    if len(a) != len(b):
        return False

    def close(x: Any, y: Any) -> bool:
        if isinstance(x, float) and isinstance(y, float):
            if math.isnan(x) or math.isnan(y):
                return math.isnan(x) and math.isnan(y)
            return x == y or abs(x - y) <= rel * max(abs(x), abs(y))
        if isinstance(x, list) and isinstance(y, list):
            return len(x) == len(y) and all(close(p, q) for p, q in zip(x, y, strict=True))
        if isinstance(x, dict) and isinstance(y, dict):
            skip = ("message", "traceback") if "type" in x else ()  # a raise's free text
            return x.keys() == y.keys() and all(close(x[k], y[k]) for k in x if k not in skip)
        return x == y

    return all(close(json.loads(x), json.loads(y)) for x, y in zip(a, b, strict=True))


def suite_root(tests: Path, work: Path) -> Path:
    """A course root whose tests/ is ``tests`` (reference and assignments stay the real ones).

    Lets the audit measure another suite, e.g. a deliberately weakened copy.
    """
    from grader.course.assignment import repo_root

    real = repo_root()
    work.mkdir(parents=True, exist_ok=True)
    for name in ("reference", "assignments"):
        (work / name).symlink_to(real / name)
    (work / "tests").symlink_to(tests.resolve())
    return work


def run_audit(
    assignment: Assignment,
    *,
    tasks: list[str] | None = None,
    functions: list[str] | None = None,
    jobs: int = 2,
    max_examples: int | None = None,
    equivalence_examples: int = 300,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate, grade and classify mutants. Returns the JSON-ready audit report."""
    from fnmatch import fnmatch

    from rich.progress import Progress

    from grader.course.assignment import repo_root

    started = time.monotonic()
    mutants = [
        m
        for m in generate_mutants(assignment, tasks)
        if not functions or any(fnmatch(m.function, f) for f in functions)
    ]
    # Equivalence is judged by the project's own full suite, never by the suite under
    # audit: a weak suite must not be able to call its own blind spots "equivalent".
    canonical = str(repo_root())
    budget = ["--max-examples", str(max_examples)] if max_examples else []
    fast = ["-x", "--no-shrink", *budget]

    def job(
        m: Mutant | None, task: str | None, args: list[str], log: bool = False, root: str = ""
    ) -> _Job:
        return _Job(
            assignment.name,
            root or str(assignment.root),
            task,
            m.file if m else None,
            m.source if m else None,
            tuple(args),
            log,
        )

    ctx = multiprocessing.get_context("spawn")
    results: dict[str, dict[str, Any]] = {}
    with ctx.Pool(jobs, maxtasksperchild=40) as pool, Progress(disable=not progress) as bar:
        tid = bar.add_task(f"grading {len(mutants)} mutants", total=len(mutants))
        work = [job(m, m.task, fast) for m in mutants]
        for m, res in zip(mutants, pool.imap(_grade_job, work), strict=True):
            results[m.id] = res
            bar.advance(tid)
        # A mutant its own task's tests miss may still be caught by another task's tests
        # (a forward that forgets save_for_backward breaks backward): the whole suite.
        missed = [m for m in mutants if not results[m.id]["killed"]]
        if missed:
            tid = bar.add_task("whole suite on survivors", total=len(missed))
            checks = pool.imap(_grade_job, [job(m, None, fast) for m in missed])
            for m, res in zip(missed, checks, strict=True):
                if res["killed"]:
                    results[m.id].update(killed=True, by=res["by"], message=res["message"])
                bar.advance(tid)
        survivors = [m for m in mutants if not results[m.id]["killed"]]
        # Equivalence: the same large, seeded sample for the reference and each survivor,
        # with limits generous enough that a slow machine cannot make two runs differ.
        wide = [
            "--no-shrink",
            "--max-examples",
            str(equivalence_examples),
            "--grading-seed",
            "7",
            "--grading-budget",
            "3600",
            "--probe-timeout",
            "60",
        ]
        survivor_tasks = sorted({m.task for m in survivors})
        if survivors:
            tid = bar.add_task("checking survivors", total=len(survivors) + len(survivor_tasks))
            ref_jobs = [job(None, t, wide, True, canonical) for t in survivor_tasks]
            refs = pool.map(_grade_job, ref_jobs)
            ref_calls = {t: r["calls"] for t, r in zip(survivor_tasks, refs, strict=True)}
            bar.advance(tid, len(survivor_tasks))
            checks = pool.imap(
                _grade_job, [job(m, m.task, wide, True, canonical) for m in survivors]
            )
            for m, res in zip(survivors, checks, strict=True):
                # Caught only by the larger sample: the suite missed it at its budget, so it
                # stays a survivor; identical answers throughout: equivalent.
                same = not res["killed"] and _same_calls(ref_calls[m.task], res["calls"])
                results[m.id]["equivalent"] = same
                bar.advance(tid)

    per_task = []
    for task in assignment.tasks:
        if tasks and task.id not in tasks:
            continue
        ms = [m for m in mutants if m.task == task.id]
        killed = [m for m in ms if results[m.id]["killed"]]
        equivalent = [m for m in ms if results[m.id].get("equivalent")]
        counted = len(ms) - len(equivalent)
        per_task.append(
            {
                "task": task.id,
                "title": task.title,
                "generated": len(ms),
                "killed": len(killed),
                "survived": len(ms) - len(killed) - len(equivalent),
                "equivalent": len(equivalent),
                "kill_rate": round(len(killed) / counted, 4) if counted else 1.0,
            }
        )
    return {
        "assignment": assignment.name,
        "seconds": round(time.monotonic() - started, 1),
        "tasks": per_task,
        "mutants": [
            {k: v for k, v in asdict(m).items() if k != "source"}
            | {k: v for k, v in results[m.id].items() if k != "calls"}
            for m in mutants
        ],
    }


# --------------------------------------------------------------------------- CLI
def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    table = Table(title=f"Mutation audit of {report['assignment']}", title_justify="left")
    for col in ("task", "title", "mutants", "killed", "survived", "equivalent", "kill rate"):
        table.add_column(col, justify="left" if col in ("task", "title") else "right")
    for t in report["tasks"]:
        rate = t["kill_rate"]
        style = "green" if rate >= 0.95 else "red"
        table.add_row(
            t["task"],
            t["title"],
            str(t["generated"]),
            str(t["killed"]),
            str(t["survived"]),
            str(t["equivalent"]),
            f"[{style}]{rate:.1%}[/]",
        )
    console.print(table)
    survivors = [m for m in report["mutants"] if not m["killed"] and not m.get("equivalent")]
    for m in survivors:
        console.print(f"\n[bold]survivor[/] task {m['task']} {m['function']} ({m['operator']})")
        console.print(m["diff"], markup=False, highlight=False)
    console.print(f"{len(report['mutants'])} mutants in {report['seconds']} s")


def _cmd_audit(args: argparse.Namespace) -> int:
    assignment = load_assignment(args.assignment)
    with tempfile.TemporaryDirectory(prefix="grader-audit-suite-") as tmp:
        if args.tests:
            assignment = load_assignment(args.assignment, suite_root(Path(args.tests), Path(tmp)))
        report = _audit_and_write(assignment, args)
    print_report(report)
    return 0


def _audit_and_write(assignment: Assignment, args: argparse.Namespace) -> dict[str, Any]:
    report = run_audit(
        assignment,
        tasks=args.task,
        functions=args.function,
        jobs=args.jobs,
        max_examples=args.budget,
        equivalence_examples=args.equivalence_budget,
    )
    out = Path(args.out or f"out/audit/{assignment.name}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"report written to {out}")
    return report


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("audit", help="mutation-test the suite: how many bugs it catches")
    p.add_argument("assignment", help="assignment name or folder")
    p.add_argument("--task", action="append", help="only mutants of this task (repeat)")
    p.add_argument(
        "--function", action="append", help="only mutants in functions matching this glob"
    )
    p.add_argument("--tests", help="audit this tests folder instead of the project's tests/")
    p.add_argument("--budget", type=int, help="hypothesis examples per test (default: grading)")
    p.add_argument(
        "--equivalence-budget",
        type=int,
        default=300,
        help="examples per test when checking survivors for equivalence",
    )
    p.add_argument("-j", "--jobs", type=int, default=2, help="parallel grading processes")
    p.add_argument("--out", help="JSON report path (default out/audit/ASSIGNMENT.json)")
    p.set_defaults(func=_cmd_audit)
