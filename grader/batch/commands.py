"""``grader batch`` and ``grader batch-diff``: the command line of a class regrade."""

from __future__ import annotations

from pathlib import Path

from grader.batch.local import MODES
from grader.batch.run import format_changes, run_batch
from grader.course.assignment import load_assignment

# --------------------------------------------------------------------------- CLI


def _cmd_batch(args) -> int:
    assignment = load_assignment(args.assignment)
    summary = run_batch(
        Path(args.submissions),
        assignment,
        Path(args.out),
        jobs=args.jobs,
        force=args.force,
        mode=args.mode,
        image=args.image,
        timeout=args.timeout,
        max_examples=args.max_examples,
        diff=Path(args.diff) if args.diff else None,
        scheduler=args.scheduler,
        progress=not args.no_progress,
    )
    return 1 if summary.failed else 0


def _cmd_batch_diff(args) -> int:
    from grader.platforms.exports import read_scores_csv, score_changes

    def rows(path: str):
        csv_path = Path(path) / "scores.csv" if Path(path).is_dir() else Path(path)
        return {r.id: r for r in read_scores_csv(csv_path)}

    old, new = rows(args.old), rows(args.new)
    changes = score_changes(old, new)
    names = {**{k: r.name for k, r in old.items()}, **{k: r.name for k, r in new.items()}}
    for line in format_changes(changes, names):
        print(line)
    print(f"{len(changes)} of {len(set(old) | set(new))} submissions changed")
    return 0


def add_commands(subparsers) -> None:
    """Register ``batch`` and ``batch-diff``."""
    p = subparsers.add_parser(
        "batch",
        help="grade a folder of submissions (containers or sandboxes; resumable), scores.csv",
        description=(
            "Grade every submission in SUBMISSIONS (a folder of submission folders or zips, "
            "or Gradescope's 'Export Submissions' folder), each in its own container or "
            "sandbox. Results go to OUT/results/<id>.json as they finish, keyed on what made "
            "them; a rerun regrades exactly the submissions whose submission, course files, "
            "grader, runner or options changed, and says why. Exit status 1 if some "
            "submission got no result at all (see the summary)."
        ),
    )
    p.add_argument("submissions", help="folder of submissions")
    p.add_argument("--assignment", "-a", required=True, help="assignment name, e.g. module1")
    p.add_argument("--out", "-o", required=True, help="output folder (results/, scores.csv)")
    p.add_argument(
        "--mode",
        choices=MODES,
        default="auto",
        help="docker: one container per submission (the Gradescope image); sandbox: one "
        "'grader grade --mode sandbox' process per submission, no Docker needed; auto "
        "(default): docker if an engine answers, else sandbox",
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=1,
        help="submissions at a time (default 1; sandbox mode: at most one per CPU core)",
    )
    p.add_argument("--force", action="store_true", help="regrade every submission")
    p.add_argument("--image", help="grading image (docker; default: build it as 'grader image')")
    p.add_argument(
        "--timeout", type=float, help="wall-clock seconds per submission (default: budget + 120)"
    )
    p.add_argument(
        "--max-examples",
        type=int,
        help="hypothesis examples per test instead of the assignment's budget (smoke runs; "
        "part of the results' key)",
    )
    p.add_argument(
        "--diff",
        metavar="OLD_OUT",
        help="at the end, list every student whose score changed against OLD_OUT/scores.csv",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="grade on the workers of this Dask scheduler (tcp://HOST:8786) instead of this "
        "machine; each worker grades in sandbox or docker mode (--mode) and must have the "
        "same grader and course files (docs/cluster.md; needs minitorch-grader[cluster])",
    )
    p.add_argument("--no-progress", action="store_true", help="no per-submission progress lines")
    p.set_defaults(func=_cmd_batch)

    d = subparsers.add_parser(
        "batch-diff",
        help="list every student whose score differs between two batch outputs, per task",
    )
    d.add_argument("old", help="earlier batch output folder (or its scores.csv)")
    d.add_argument("new", help="later batch output folder (or its scores.csv)")
    d.set_defaults(func=_cmd_batch_diff)
