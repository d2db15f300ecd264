"""``grader batch --mode sandbox``: real grades (one ``grader grade`` process each), keys, statuses.

Must show: a rerun after changing one test file regrades every submission; after replacing
one student's zip regrades only that one; with nothing changed regrades none. The malformed
corpus (test_malformed.CASES) graded by batch gets the right status and reason in
scores.csv. ``--mode sandbox`` and ``--mode docker`` write identical scores.csv files for the
same 12 submissions (marked docker).

Every grade is real (staging, the sandboxed worker, pytest, hypothesis) with a reduced
hypothesis budget (``max_examples``), which both modes are given alike. The key tests run
on a private copy of the course files (``GRADER_ROOT``), so editing a test file there
touches nothing of the repository's own.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from rich.console import Console

from grader.batch import FORCED, NEW, ProgressLine, regrade_reason, result_key, run_batch
from grader.course.assignment import Assignment, load_assignment, repo_root
from grader.grading.submission import copy_reference_submission
from grader.platforms.exports import read_scores_csv

BUDGET = 2  # hypothesis examples per test: every grade here is a smoke-sized real grade


def _console() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=200, highlight=False, soft_wrap=True), buf


def _zip_folder(folder: Path, archive: Path, *, date=(2026, 1, 1, 0, 0, 0)) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=date)
                zf.writestr(info, path.read_bytes())
    return archive


def _syntax_error(sub: Path) -> Path:
    path = sub / "minitorch" / "scalar.py"
    path.write_text(path.read_text(encoding="utf-8") + "\ndef broken(:\n", encoding="utf-8")
    return sub


@pytest.fixture
def course(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Assignment:
    """module1 from a private copy of the course files (assignments/, tests/, reference/)."""
    root = tmp_path / "course"
    src = repo_root()
    for name in ("assignments", "tests", "reference"):
        shutil.copytree(
            src / name, root / name, ignore=shutil.ignore_patterns("__pycache__", ".hypothesis")
        )
    monkeypatch.setenv("GRADER_ROOT", str(root))
    return load_assignment("module1", root=root)


def _mtimes(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}


def test_a_rerun_regrades_exactly_what_changed(course: Assignment, tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    alice = copy_reference_submission(course, subs / "alice")
    _syntax_error(copy_reference_submission(course, subs / "carol"))
    nothing = tmp_path / "nothing"
    (nothing / "notes").mkdir(parents=True)
    (nothing / "notes" / "README.md").write_text("I could not finish\n")
    _zip_folder(nothing, subs / "bob.zip")
    out = tmp_path / "out"

    def batch(**kw):
        console, buf = _console()
        summary = run_batch(
            subs, course, out, mode="sandbox", jobs=2, max_examples=BUDGET, console=console, **kw
        )
        return summary, buf.getvalue()

    # 1. first run: every submission is new
    first, _ = batch()
    assert (first.graded, first.skipped, dict(first.reasons)) == (3, 0, {NEW: 3})
    rows = {r.id: r for r in read_scores_csv(out / "scores.csv")}
    assert rows["alice"].total == course.max_score and rows["alice"].status == "ok"
    assert rows["bob"].total == 0 and rows["bob"].status == "empty"
    assert rows["carol"].status == "import-error" and "scalar.py" in rows["carol"].error
    assert 0 < rows["carol"].total < course.max_score  # the tasks scalar.py does not touch
    stamps = _mtimes(out)

    # 2. nothing changed (bob re-zipped the same files: other timestamps, same content)
    _zip_folder(nothing, subs / "bob.zip", date=(2026, 2, 2, 12, 0, 0))
    second, text = batch()
    assert (second.graded, second.skipped) == (0, 3), text
    assert "0 graded; 3 unchanged (kept)" in text
    assert _mtimes(out) == stamps  # not one result rewritten
    assert second.changes == []

    # 3. one test file changed: every submission is regraded, and the output says why
    test_file = course.tests_dir / "test_scalar.py"
    test_file.write_text(test_file.read_text(encoding="utf-8") + "\n# reworded\n")
    third, text = batch()
    assert (third.graded, third.skipped, dict(third.reasons)) == (3, 0, {"tests changed": 3})
    assert "3 graded: 3 tests changed; 0 unchanged (kept)" in text
    assert all(_mtimes(out)[name] != stamp for name, stamp in stamps.items())
    before = out / "before.csv"
    shutil.copyfile(out / "scores.csv", before)

    # 4. bob hands in a new zip under the same name: only bob is regraded
    stamps = _mtimes(out)
    (subs / "bob.zip").unlink()
    _zip_folder(alice, subs / "bob.zip")
    fourth, text = batch()
    assert (fourth.graded, fourth.skipped) == (1, 2), text
    assert dict(fourth.reasons) == {"new submission content": 1}
    assert "1 graded: 1 new submission content; 2 unchanged (kept)" in text
    now = _mtimes(out)
    assert now["alice.json"] == stamps["alice.json"] and now["carol.json"] == stamps["carol.json"]
    assert now["bob.json"] != stamps["bob.json"]
    # The summary lists the student whose score changed, per task.
    assert [ident for ident, _ in fourth.changes] == ["bob"]
    diffs = {what: (old, new) for what, old, new in fourth.changes[0][1]}
    assert diffs["total"] == (0, course.max_score)
    assert diffs["task 1.4"] == (0, course.task("1.4").points)
    assert "bob: total 0 -> 100" in text

    # batch-diff compares two runs' scores.csv the same way, from the command line
    proc = subprocess.run(
        [sys.executable, "-m", "grader", "batch-diff", str(before), str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("bob: total 0 -> 100; task 1.1 0 -> 10")
    assert "1 of 3 submissions changed" in proc.stdout


def test_stored_keys_decide_a_regrade() -> None:
    """The decision itself, part by part (no grading): the first changed part names the reason."""
    parts = {
        "submission": "s",
        "assignment": "a",
        "tests": "t",
        "reference": "r",
        "grader": "g",
        "runner": "sandbox python 3.11",
        "options": "{}",
    }
    doc = {"extra_data": {"batch": {"key": result_key(parts), "parts": parts}}}
    assert regrade_reason(doc, parts, force=False) is None
    assert regrade_reason(doc, parts, force=True) == FORCED
    assert regrade_reason(None, parts, force=False) == NEW
    assert regrade_reason({"extra_data": {}}, parts, force=False).startswith("no key")
    for part, reason in [
        ("runner", "runner changed"),
        ("reference", "reference changed"),
        ("grader", "grader changed"),
        ("options", "grading options changed"),
    ]:
        assert regrade_reason(doc, {**parts, part: "other"}, force=False) == reason
    both = {**parts, "submission": "x", "tests": "y"}
    assert regrade_reason(doc, both, force=False) == "new submission content"
    forged = {"extra_data": {"batch": {"key": "0" * 64, "parts": parts}}}
    assert regrade_reason(forged, parts, force=False).startswith("no key")


def test_progress_shows_names_rate_and_eta_once_a_few_are_done() -> None:
    """A non-TTY log gets one line per finished submission; the ETA starts after two."""
    now = [0.0]
    stream = io.StringIO()
    bar = ProgressLine(6, 2, stream, live=False, clock=lambda: now[0])
    bar.started("alice")
    bar.started("bob")
    assert "ETA after 2 done" in bar.status() and "grading alice (0:00), bob (0:00)" in bar.status()
    now[0] = 10.0
    bar.finished("alice", "alice: 100 ok")
    bar.started("carol")
    now[0] = 12.0
    bar.finished("bob", "bob: 0 empty")
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[1/6] alice: 100 ok (10.0 s) | 6.0/min | ETA after 2 done")
    assert "grading bob (0:10)" in lines[0]
    # mean 11 s; carol has run 2 s (9 s left), 3 queued (33 s); 2 at a time: 21 s
    assert lines[1].startswith("[2/6] bob: 0 empty (12.0 s) | 10.0/min | ETA 0:21")
    for t in (20.0, 30.0, 40.0, 50.0):
        now[0] = t
        assert "ETA " in bar.status() and "-:--" not in bar.status()
    bar.close()


def test_sandbox_jobs_are_capped_at_the_cores(course: Assignment, tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    (subs / "empty").mkdir(parents=True)
    console, buf = _console()
    cores = len(os.sched_getaffinity(0))
    summary = run_batch(
        subs,
        course,
        tmp_path / "out",
        mode="sandbox",
        jobs=cores + 3,
        max_examples=BUDGET,
        console=console,
        progress=False,
    )
    assert f"-j {cores + 3} capped at {cores}: one sandbox per CPU core" in buf.getvalue()
    assert summary.graded == 1 and summary.statuses == {"empty": 1}


# --------------------------------------------------------------------------- malformed

#: What scores.csv says of each malformed case: (status, text the error column must hold).
#: single_file and does_not_exist are not batch layouts (a lone .py would be graded with its
#: siblings, i.e. the other students' folders; a path that does not exist is no entry).
MALFORMED = {
    "wrong_level_flat": ("ok", ""),
    "too_deep": ("empty", "No editable file was found"),
    "nested_folder": ("ok", ""),
    "mixed_levels": ("ok", ""),
    "zip_flat": ("ok", ""),
    "zip_empty": ("empty", "No editable file was found"),
    "zip_hostile_members": ("import-error", "autodiff.py"),
    "zip_bomb": ("import-error", "scalar.py"),
    "zip_encrypted": ("bad-submission", "could not be unpacked"),
    "huge_file": ("import-error", "scalar.py"),
    "nul_bytes": ("import-error", "scalar_functions.py"),
    "utf8_bom_crlf": ("ok", ""),
    "missing_package": ("import-error", "numpy_does_not_exist"),
    "unused_missing_package": ("ok", ""),
    "symlink": ("import-error", "autodiff.py"),
    "tarball": ("bad-submission", "neither a folder nor a zip file"),
    "only_readme": ("empty", "No editable file was found"),
}


@pytest.mark.evidence
def test_malformed_corpus_statuses_in_scores_csv(tmp_path: Path) -> None:
    from test_malformed import CASES

    from grader.isolation import open_to_worker

    assert {c.name for c in CASES} - {"single_file"} == set(MALFORMED), (
        "test_malformed.CASES changed: say what batch must report for each case here"
    )
    subs = tmp_path / "subs"
    subs.mkdir()
    for case in CASES:
        if case.name not in MALFORMED:
            continue
        scratch = tmp_path / "scratch" / case.name
        scratch.mkdir(parents=True)
        path = case.make(scratch)
        suffix = "" if path.is_dir() else "".join(path.suffixes)
        os.rename(path, subs / f"{case.name}{suffix}")
    open_to_worker(subs)
    out = tmp_path / "out"
    console, buf = _console()
    summary = run_batch(
        subs,
        load_assignment("module1"),
        out,
        mode="sandbox",
        jobs=2,
        max_examples=BUDGET,
        console=console,
        progress=False,
    )
    assert summary.graded == len(MALFORMED) and not summary.failed, buf.getvalue()
    rows = {r.id: r for r in read_scores_csv(out / "scores.csv")}
    assert set(rows) == set(MALFORMED)
    wrong = {}
    for name, (status, needle) in MALFORMED.items():
        row = rows[name]
        ok = row.status == status and (needle in row.error if needle else row.error == "")
        if not ok:
            wrong[name] = (row.status, row.error[:200])
    assert not wrong, json.dumps(wrong, indent=1)


# --------------------------------------------------------------------------- docker vs sandbox


def _twelve(assignment: Assignment, dest: Path) -> Path:
    """12 submissions: reference (folder, zip, nested), skeletons, examples, broken ones."""
    from grader.course.skeleton import make_skeleton
    from grader.evidence.demo import load_examples, materialize

    subs = dest / "subs"
    ref = copy_reference_submission(assignment, dest / "ref")
    shutil.copytree(ref, subs / "reference")
    _zip_folder(ref, subs / "zipped.zip")
    shutil.copytree(ref, subs / "nested" / "Module-1-main")

    def skeleton(name: str, files: tuple[str, ...]) -> None:
        sub = shutil.copytree(ref, subs / name)
        for rel in files:
            text = (sub / rel).read_text(encoding="utf-8")
            (sub / rel).write_text(make_skeleton(text, rel), encoding="utf-8")

    skeleton("skeleton", assignment.editable)
    for rel in assignment.editable:
        skeleton(f"skeleton_{Path(rel).stem}", (rel,))
    examples = [
        e
        for e in load_examples(repo_root() / "examples" / "submissions.toml")
        if e.assignment == assignment.name and e.kind == "mutation"
    ][:2]
    assert len(examples) == 2, "examples/submissions.toml lost its module1 mutations"
    for example in examples:
        materialize(example, assignment, subs / example.name)
    _syntax_error(shutil.copytree(ref, subs / "syntax_error"))
    raises = shutil.copytree(ref, subs / "raises_at_import") / "minitorch" / "autodiff.py"
    raises.write_text('raise RuntimeError("half done")\n' + raises.read_text(encoding="utf-8"))
    (subs / "readme_only").mkdir()
    (subs / "readme_only" / "README.md").write_text("sorry\n")
    assert len(list(subs.iterdir())) == 12
    return subs


@pytest.mark.evidence
@pytest.mark.docker
def test_sandbox_and_docker_write_identical_scores_csv(tmp_path: Path) -> None:
    from docker_env import base_image, docker_client

    from grader.platforms.images import ensure_image

    client = docker_client()
    a = load_assignment("module1")
    image = ensure_image(a, base=base_image(client), client=client)
    subs = _twelve(a, tmp_path)
    csvs, keys = {}, {}
    for mode in ("docker", "sandbox"):
        out = tmp_path / mode
        console, buf = _console()
        summary = run_batch(
            subs,
            a,
            out,
            mode=mode,
            jobs=2,
            image=image if mode == "docker" else None,
            max_examples=BUDGET,
            console=console,
            progress=False,
        )
        assert summary.graded == 12 and not summary.failed, buf.getvalue()
        csvs[mode] = (out / "scores.csv").read_bytes()
        keys[mode] = {
            p.stem: {
                k: v
                for k, v in json.loads(p.read_text())["extra_data"]["batch"]["parts"].items()
                if k != "runner"
            }
            for p in (out / "results").glob("*.json")
        }
    assert keys["docker"] == keys["sandbox"], "the course files changed between the two runs"
    rows = {r.id: r for r in read_scores_csv(tmp_path / "sandbox" / "scores.csv")}
    assert rows["reference"].total == a.max_score > rows["skeleton"].total
    assert rows["syntax_error"].status == rows["raises_at_import"].status == "import-error"
    assert rows["readme_only"].status == "empty"
    assert csvs["docker"].decode() == csvs["sandbox"].decode()
