"""The course secret: what makes grading examples unpredictable to students, yet repeatable.

Grading draws hypothesis examples deterministically, so a regrade gives the same score. If
the draw depended only on the public tests, anyone holding them could replay the exact
grading examples locally and answer them from a lookup table. So the grading seed mixes in
a per-course secret that lives only with the instructor's files: ``course-secret`` in the
assignment's folder, generated when the instructor first builds the assignment's bundle
(``grader gradescope``) or written by hand, never committed (.gitignore) and root-only in the
bundle and image. Regrades of one course stay identical in every mode (sandbox, docker, the
bundle: the same file); a student's local run draws other examples.

The seed also mixes in a digest of the submission's graded files (``submission_digest``):
with one seed per course, every submission would be graded on the same examples, and
whatever one submission learns of them (a hidden test's inputs, seen once) could be
replayed by the next. Regrading the same files gives the same draw; any edit of a graded
file, even a comment, draws new examples.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from grader.course.assignment import Assignment
from grader.errors import ConfigError

__all__ = [
    "SECRET_FILE",
    "course_secret",
    "ensure_course_secret",
    "grading_seed",
    "secret_path",
    "submission_digest",
]

SECRET_FILE = "course-secret"


def secret_path(assignment: Assignment) -> Path:
    return assignment.folder / SECRET_FILE


def course_secret(assignment: Assignment) -> bytes | None:
    """The assignment's course secret, or None when the course has none yet."""
    path = secret_path(assignment)
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the course secret {path}: {exc}") from exc
    if len(text) < 16:
        raise ConfigError(f"the course secret in {path} is too short (at least 16 characters)")
    return text.encode("utf-8")


def ensure_course_secret(assignment: Assignment) -> Path:
    """The secret's file, created (random, owner-only) when the course has none yet.

    Owner-only (0600) whatever the umask; one written by hand, or by an older grader, that
    others may read is made owner-only too.
    """
    path = secret_path(assignment)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    elif path.stat().st_mode & 0o077:
        path.chmod(0o600)
    course_secret(assignment)  # refuse a file that is there but unusable
    return path


def submission_digest(root: Path, files: list[str] | tuple[str, ...]) -> bytes:
    """SHA-256 over the graded files under ``root`` (each named, then its bytes, or a mark
    when it is absent), in a fixed order: the same files give the same digest everywhere."""
    digest = hashlib.sha256()
    for rel in sorted(set(files)):
        digest.update(rel.encode() + b"\0")
        try:
            data = (root / rel).read_bytes()
        except OSError:
            digest.update(b"absent\0")
            continue
        digest.update(len(data).to_bytes(8, "big") + data)
    return digest.digest()


def grading_seed(secret: bytes, assignment_name: str, files: bytes = b"") -> int:
    """The hypothesis seed of a grade of ``assignment_name`` in this course, for the graded
    files whose ``submission_digest`` is ``files``."""
    message = f"grading-seed:{assignment_name}:".encode() + files
    digest = hmac.new(secret, message, hashlib.sha256)
    return int.from_bytes(digest.digest()[:8], "big")
