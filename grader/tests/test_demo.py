"""make demo's copies of the reference (and its buggy copies) are private to their owner."""

from __future__ import annotations

import os
from pathlib import Path

from grader.course.assignment import load_assignment, repo_root
from grader.evidence.demo import load_examples, materialize


def test_demo_copies_of_the_reference_are_private(tmp_path: Path) -> None:
    assignment = load_assignment("module1")
    examples = load_examples(repo_root() / "examples" / "submissions.toml")
    previous = os.umask(0)
    try:
        for example in [e for e in examples if e.assignment == "module1"][:3]:
            out = materialize(example, assignment, tmp_path / "out" / example.name)
            files = [p for p in out.rglob("*") if p.is_file()]
            assert files, example.name
            for path in [out, *out.rglob("*")]:
                want = 0o700 if path.is_dir() else 0o600
                assert path.stat().st_mode & 0o777 == want, (path, oct(path.stat().st_mode))
    finally:
        os.umask(previous)
