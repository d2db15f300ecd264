"""``make demo``: grade the bundled example submissions and print one table.

The examples are described in ``examples/submissions.toml``: the reference itself, the
hand-out skeleton, and buggy copies of the reference (one student-style mistake each, as
find/replace edits), so they never drift from the reference they are made of.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from grader.course.assignment import Assignment
from grader.errors import ConfigError

__all__ = ["Example", "load_examples", "materialize", "run_demo"]


@dataclass(frozen=True)
class Example:
    name: str
    assignment: str
    kind: str  # "reference" | "skeleton" | "mutation"
    why: str = ""
    edits: tuple[dict[str, str], ...] = ()


def load_examples(path: Path) -> list[Example]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    examples = []
    for entry in data.get("submission", []):
        try:
            examples.append(
                Example(
                    name=str(entry["name"]),
                    assignment=str(entry["assignment"]),
                    kind=str(entry["kind"]),
                    why=str(entry.get("why", "")),
                    edits=tuple(entry.get("edits", [])),
                )
            )
        except KeyError as exc:
            raise ConfigError(f"{path}: an example lacks {exc}") from exc
    return examples


def materialize(example: Example, assignment: Assignment, out: Path) -> Path:
    """Write the example's editable files under ``out/minitorch``.

    The reference and its buggy copies are solutions: ``out`` is private to this user (0700,
    files 0600) before anything is written in it. The grader, as root or as this user, still
    reads them; a worker never does (a grade stages its own copy for it).
    """
    from grader.course.skeleton import make_skeleton
    from grader.evidence.mutations import apply_mutations
    from grader.isolation import keep_private

    if example.kind not in ("reference", "mutation", "skeleton"):
        raise ConfigError(f"example {example.name}: unknown kind {example.kind!r}")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    out.chmod(0o700)
    ref = assignment.reference_dir
    if example.kind == "skeleton":
        for rel in assignment.editable:
            target = out / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            text = assignment.reference_file(rel).read_text(encoding="utf-8")
            target.write_text(make_skeleton(text, rel))
    else:
        apply_mutations(ref, list(example.edits), out, assignment.reference_layer)
        for path in (out / "minitorch").glob("*.py"):
            if f"minitorch/{path.name}" not in assignment.editable:
                path.unlink()
    keep_private(out)
    return out


def run_demo(assignments: list[Assignment], out: Path, *, mode: str = "sandbox") -> int:
    from rich.console import Console
    from rich.table import Table

    from grader.grading.results import write_results
    from grader.grading.runner import grade

    console = Console(highlight=False)
    root = assignments[0].root if assignments else Path.cwd()
    examples = load_examples(root / "examples" / "submissions.toml")
    for assignment in assignments:
        rows: list[tuple[Example, dict[str, Any]]] = []
        for example in [e for e in examples if e.assignment == assignment.name]:
            sub = materialize(
                example, assignment, out / "submissions" / assignment.name / example.name
            )
            with console.status(f"grading {assignment.name}/{example.name} ({mode})"):
                result = grade(sub, assignment, mode=mode)
            write_results(
                result.results, out / "results" / assignment.name / f"{example.name}.json"
            )
            rows.append((example, result.results))
        table = Table(title=f"{assignment.title} ({mode} mode)", title_justify="left")
        table.add_column("submission")
        for task in assignment.tasks:
            table.add_column(task.id, justify="right")
        table.add_column("total", justify="right")
        table.add_column("time", justify="right")
        for example, results in rows:
            cells = []
            for t in results["extra_data"]["tasks"]:
                full = t["score"] >= t["max_score"]
                style = "green" if full else ("red" if t["score"] == 0 else "yellow")
                cells.append(f"[{style}]{t['score']:g}/{t['max_score']:g}[/]")
            table.add_row(
                f"{example.name}\n[dim]{example.why}[/]" if example.why else example.name,
                *cells,
                f"[bold]{results['score']:g}[/]",
                f"{results['execution_time']:.1f}s",
            )
        console.print(table)
    console.print(f"results.json files are under {out / 'results'}")
    return 0
