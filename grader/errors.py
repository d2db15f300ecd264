"""The grader's own error tree.

Everything the grader raises on purpose derives from ``GraderError`` so that the CLI can map
it to a clear message and an exit code. Faults of student code are *not* here: they live in
``protocol.py`` (``StudentFault``) because they cross the worker boundary as data.
"""

from __future__ import annotations

__all__ = [
    "ClusterError",
    "ConfigError",
    "DockerError",
    "GraderError",
    "MachineError",
    "SandboxError",
    "SubmissionError",
]


class GraderError(Exception):
    """Base of every error the grader raises deliberately."""


class ConfigError(GraderError):
    """An assignment definition or a command-line option is wrong (instructor's side)."""


class SubmissionError(GraderError):
    """A submission cannot be read at all (not a folder or zip, unsafe zip, ...)."""


class DockerError(GraderError):
    """The Docker engine is missing, unreachable, or an image cannot be built."""


class SandboxError(GraderError):
    """``grader grade --mode sandbox`` cannot run here at all (the same for every submission)."""


class ClusterError(GraderError):
    """The Dask cluster cannot grade (no scheduler, no worker fit to grade, scheduler lost)."""


#: Faults of the machine, not of a submission: a batch stops on these (after recording which
#: submissions are left), and goes on after anything else.
MachineError = (DockerError, SandboxError, ClusterError)
