"""The grader's own error tree.

Everything the grader raises on purpose derives from ``GraderError`` so that the CLI can map
it to a clear message and an exit code. Faults of student code are *not* here: they live in
``protocol.py`` (``StudentFault``) because they cross the worker boundary as data.
"""

from __future__ import annotations

__all__ = ["GraderError", "ConfigError", "SubmissionError", "DockerError"]


class GraderError(Exception):
    """Base of every error the grader raises deliberately."""


class ConfigError(GraderError):
    """An assignment definition or a command-line option is wrong (instructor's side)."""


class SubmissionError(GraderError):
    """A submission cannot be read at all (not a folder or zip, unsafe zip, ...)."""


class DockerError(GraderError):
    """The Docker engine is missing, unreachable, or an image cannot be built."""
