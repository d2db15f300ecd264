"""The ``grader`` command as a TA meets it: exit codes, readable output, shareable files."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from grader.cli import print_results
from grader.files import write_atomic


def _grader(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grader", *args], capture_output=True, text=True, cwd=cwd
    )


def test_a_path_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = _grader("grade", str(tmp_path / "no-such-folder"), "-a", "module1", "--out", str(out))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "does not exist" in proc.stderr
    assert not out.exists()


def test_an_unreadable_zip_is_graded_and_its_reason_printed(tmp_path: Path) -> None:
    fake = tmp_path / "submission.zip"
    fake.write_bytes(b"PK\x03\x04 not really a zip")
    out = tmp_path / "results.json"
    proc = _grader("grade", str(fake), "-a", "module1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    printed = " ".join(proc.stdout.split())  # rich wraps long lines
    assert "could not be read: submission.zip is neither a folder nor a zip file" in printed
    assert json.loads(out.read_text())["score"] == 0


def test_student_text_is_printed_escaped_never_as_markup(capsys) -> None:  # type: ignore[no-untyped-def]
    results = {
        "score": 1.0,
        "output": "Score: 1 / 100\nnote [bold]x[/] \ud800",
        "tests": [{"name": "t", "status": "failed", "output": "raised [red]boom[/] \udcff"}],
        "extra_data": {"max_score": 100, "tasks": []},
    }
    print_results(results, "sub [link]")
    out = capsys.readouterr().out
    assert "[bold]x[/]" in out and "[red]boom[/]" in out and "sub [link]" in out
    assert "\\ud800" in out and "\\udcff" in out


def test_written_files_follow_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        write_atomic(tmp_path / "scores.csv", "a,b\n")
        os.umask(0o077)
        write_atomic(tmp_path / "private.csv", "a,b\n")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "scores.csv").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "private.csv").stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_options_docker_mode_would_ignore_are_a_usage_error(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    for option in (["--max-examples", "5"], ["--no-shrink"], ["--seed", "3"]):
        proc = _grader(
            "grade", "reference", "-a", "module1", "--mode", "docker", "--out", str(out), *option
        )
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "docker mode grades exactly as the Gradescope bundle does" in proc.stderr
    assert not out.exists()


def test_no_shrink_shows_a_first_example_and_keeps_the_score(tmp_path: Path) -> None:
    """A sum that drops the last item: the shrunk example is the shortest list that shows it."""
    from grader.evidence.mutations import apply_mutations

    wrong = {"file": "operators.py", "find": "return reduce(add, 0.0)(ls)"}
    sub = apply_mutations(
        Path("reference"),
        [{**wrong, "replace": "return reduce(add, 0.0)(list(ls)[:-1])"}],
        tmp_path / "sub",
    )
    results = {}
    # An explicit seed: the same examples whatever this checkout's course secret.
    for name, extra in (("shrunk", ["--seed", "1"]), ("first", ["--seed", "1", "--no-shrink"])):
        out = tmp_path / f"{name}.json"
        proc = _grader(
            "grade", str(sub), "-a", "module0", "--mode", "inprocess", "--out", str(out), *extra
        )
        assert proc.returncode == 0, proc.stderr
        results[name] = json.loads(out.read_text())
    assert results["shrunk"]["score"] == results["first"]["score"] < 100

    def sum_test(r: dict) -> str:
        [test] = [
            t for t in r["tests"] if "fold the list" in t["name"] and t["name"].endswith("[sum]")
        ]
        return test["output"]

    assert "called:   minitorch.operators.sum([1.0])\n" in sum_test(results["shrunk"])
    assert "called:   minitorch.operators.sum([" in sum_test(results["first"])
    assert "called:   minitorch.operators.sum([1.0])\n" not in sum_test(results["first"])
