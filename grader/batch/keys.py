"""The key of a result: what made it, so a rerun regrades exactly what changed.

A key holds the content of the files the grader takes from the submission, the
assignment, tests and reference, the grader's version and the runner, and the grading
options. ``regrade_reason`` compares a stored result's key with today's and says why it no
longer stands.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from grader.course.assignment import Assignment
from grader.errors import SubmissionError

# --------------------------------------------------------------------------- keys

#: Folders never part of a content hash (caches that tools write beside the sources).
_CACHE_DIRS = frozenset({"__pycache__", ".hypothesis", ".pytest_cache", ".git", ".ruff_cache"})
#: Why a submission is regraded, by the first part of its key that changed (in this order).
PART_REASONS = {
    "submission": "new submission content",
    "tests": "tests changed",
    "reference": "reference changed",
    "assignment": "assignment changed",
    "grader": "grader changed",
    "runner": "runner changed",
    "options": "grading options changed",
}
NEW = "not graded before"
FORCED = "--force"
NO_KEY = "no key (graded by an older grader)"


def _file_digest(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.digest()


def tree_digest(folder: Path, *, skip_dirs: frozenset[str] = frozenset(), docs: bool = True) -> str:
    """sha256 of every regular file under ``folder`` (relative path and content), in order.

    Caches (``__pycache__``, ``.hypothesis``, ...) and ``*.pyc`` are left out; so are
    ``*.md`` files when ``docs`` is false (an assignment's README does not grade).
    """
    h = hashlib.sha256()
    if not folder.is_dir():
        return hashlib.sha256(b"missing").hexdigest()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in _CACHE_DIRS | skip_dirs)
        for name in sorted(filenames):
            if name.endswith(".pyc") or (not docs and name.endswith(".md")):
                continue
            path = Path(dirpath, name)
            h.update(path.relative_to(folder).as_posix().encode("utf-8", "surrogateescape"))
            h.update(b"\0")
            try:
                h.update(_file_digest(path))
            except OSError as exc:
                h.update(f"unreadable {exc.errno}".encode())
    return h.hexdigest()


#: Parts of the package that take no part in grading one submission (batch plumbing,
#: exports, hand-outs, audits), by their path in the package: editing them does not make a
#: result stale. A new module counts until it is listed here.
_NOT_GRADING = frozenset(
    {
        "batch",
        "evidence",
        "course/handout.py",
        "course/handout_root.py",
        "course/handout_tooling.py",
        "course/student_plugin.py",
        "platforms/bundle.py",
        "platforms/canvas.py",
        "platforms/exports.py",
    }
)


def grader_version() -> str:
    """The package version plus a hash of the sources that grade (a fix without a bump counts)."""
    from grader import __version__

    package = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        rel = path.relative_to(package)
        skipped = rel.parts[0] in ("tests", "__pycache__") or rel.as_posix() in _NOT_GRADING
        if skipped or rel.parts[0] in _NOT_GRADING or "__pycache__" in rel.parts:
            continue
        if path.is_file() and path.suffix in (".py", ".json"):
            h.update(rel.as_posix().encode() + b"\0" + _file_digest(path))
    return f"{__version__}+{h.hexdigest()[:16]}"


def course_parts(assignment: Assignment) -> dict[str, str]:
    """Hashes of what the course contributes to a grade: assignment, tests, reference."""
    return {
        "assignment": tree_digest(assignment.folder, docs=False),
        "tests": tree_digest(assignment.tests_dir),
        "reference": tree_digest(assignment.reference_dir),
    }


def submission_digest(path: Path, assignment: Assignment) -> str:
    """sha256 of what the grader takes from a submission: its located files and notes.

    Only the editable (and fallback) files ``grader.grading.submission.locate`` picks count, with
    where they were found and the notes about them (a file ignored as too large, a symlink),
    so a re-zipped copy of the same files keeps its result and a changed file does not. An
    unreadable submission is keyed on its bytes and the reason it cannot be read.
    """
    from grader.grading.submission import locate

    h = hashlib.sha256()
    try:
        located = locate(Path(path), assignment)
    except (SubmissionError, OSError) as exc:
        h.update(f"unreadable\0{exc}\0".encode("utf-8", "surrogateescape"))
        try:
            if Path(path).is_file():
                h.update(_file_digest(Path(path)))
        except OSError:
            pass
        return h.hexdigest()
    for rel in sorted(located.files):
        h.update(f"{rel}\0{located.origins.get(rel, '')}\0".encode("utf-8", "surrogateescape"))
        h.update(hashlib.sha256(located.files[rel]).digest())
    for note in located.notes:
        h.update(f"note\0{note}\0".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def key_parts(
    submission: Path,
    assignment: Assignment,
    runner: str,
    options: dict[str, Any] | None = None,
    *,
    course: dict[str, str] | None = None,
    grader: str | None = None,
) -> dict[str, str]:
    """Everything a result depends on, each part hashed or named (see ``PART_REASONS``)."""
    return {
        "submission": submission_digest(submission, assignment),
        **(course if course is not None else course_parts(assignment)),
        "grader": grader if grader is not None else grader_version(),
        "runner": runner,
        "options": json.dumps(options or {}, sort_keys=True),
    }


def result_key(parts: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def regrade_reason(stored: dict[str, Any] | None, parts: dict[str, str], force: bool) -> str | None:
    """Why a submission must be graded again, or None when its stored result still holds."""
    if stored is None:
        return NEW
    if force:
        return FORCED
    extra = stored.get("extra_data") if isinstance(stored.get("extra_data"), dict) else {}
    batch = extra.get("batch") if isinstance(extra.get("batch"), dict) else {}
    old = batch.get("parts") if isinstance(batch.get("parts"), dict) else None
    if old is None or batch.get("key") != result_key(old):
        return NO_KEY
    for part, reason in PART_REASONS.items():
        if old.get(part) != parts.get(part):
            return reason
    return None


def describe_reasons(reasons: Counter, kept: int) -> str:
    """ "12 graded: 1 new submission content, 11 tests changed; 0 unchanged (kept)" """
    graded = sum(reasons.values())
    why = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
    return f"{graded} graded" + (f": {why}" if why else "") + f"; {kept} unchanged (kept)"


def load_valid_result(path: Path) -> dict[str, Any] | None:
    """A previously written result if it is valid JSON matching the schema, else None."""
    from grader.grading.results import validate_results

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        validate_results(doc)
    except (OSError, ValueError):
        return None
    return doc
