"""Load and validate an assignment definition (``assignments/<name>/assignment.toml``).

The toml file is the single place for task points, file roles, test visibility, the
hypothesis budget and resource limits. Everything else asks an ``Assignment`` for them.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from grader.errors import ConfigError

__all__ = ["Assignment", "Limits", "Task", "load_assignment", "repo_root", "list_assignments"]

#: What student code may import besides the standard library when assignment.toml is silent:
#: the course template itself imports both.
DEFAULT_RUNTIME = ("numpy", "typing_extensions")

VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")

#: The oldest Python the grader runs on (pyproject's requires-python): no course can grade
#: with an older one.
OLDEST_PYTHON = (3, 10)


def repo_root() -> Path:
    """The folder holding ``reference/``, ``assignments/`` and ``tests/``.

    A source checkout has them next to the ``grader`` package; the Gradescope bundle lays
    them out the same way under /autograder/source. ``GRADER_ROOT`` overrides both.
    """
    import os

    env = os.environ.get("GRADER_ROOT")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    points: float
    weights: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Limits:
    probe_timeout: float = 5.0
    import_timeout: float = 10.0
    budget: float = 300.0
    memory_mb: int = 1024
    cpu_seconds: int = 600
    processes: int = 64
    file_size_mb: int = 16
    open_files: int = 256


@dataclass(frozen=True)
class Assignment:
    name: str
    title: str
    folder: Path
    root: Path
    editable: tuple[str, ...]
    provided: tuple[str, ...]
    solved: tuple[str, ...]
    stubbed: tuple[str, ...]
    extra: tuple[str, ...]
    #: Files a student may bring (module 1: their module-0 operators.py and module.py). The
    #: student's copy is graded when present and importable; otherwise the course's solved
    #: copy takes its place and the report says so.
    fallback: tuple[str, ...]
    #: Third-party packages graded code may import besides the standard library.
    runtime: tuple[str, ...]
    #: The Python version the course grades with ("3.11"; [runtime] python), or "" when the
    #: toml does not say: messages about newer syntax name it, the hand-out warns students
    #: whose Python is newer.
    python: str
    public_tests: tuple[str, ...]
    hidden_tests: tuple[str, ...]
    public_visibility: str
    hidden_visibility: str
    visibility_overrides: dict[str, str]
    max_examples: int
    local_max_examples: int
    #: Test calls one failing test may spend shrinking its example, and seconds a whole
    #: run may spend shrinking (see grading/shrinking.py).
    shrink_calls: int
    shrink_seconds: float
    limits: Limits
    tasks: tuple[Task, ...]
    #: A folder under ``reference/`` ([files] reference, e.g. "module2") whose files replace
    #: or add to the shared ones for this assignment: module 2's ``__init__`` imports the
    #: tensor files, which modules 0 and 1 must not need, while operators.py, module.py and
    #: autodiff.py stay in one place for every module. Empty: the shared folder alone.
    reference_layer: str = ""

    @property
    def reference_dir(self) -> Path:
        """The course's reference folder (every module's layer lives inside it)."""
        return self.root / "reference"

    def reference_file(self, rel: str) -> Path:
        """The reference copy of ``rel`` for this assignment: its layer's, else the shared one."""
        if self.reference_layer:
            own = self.reference_dir / self.reference_layer / rel
            if own.is_file():
                return own
        return self.reference_dir / rel

    def reference_package(self) -> list[str]:
        """The modules of this assignment's own reference package (``minitorch/*.py``): its
        layer's when it has one, else the shared folder's. Each must have a role in [files]."""
        base = (
            self.reference_dir / self.reference_layer
            if self.reference_layer
            else self.reference_dir
        )
        return sorted(p.relative_to(base).as_posix() for p in (base / "minitorch").glob("*.py"))

    @property
    def tests_dir(self) -> Path:
        return self.root / "tests"

    @property
    def max_score(self) -> float:
        return sum(t.points for t in self.tasks)

    def task(self, task_id: str) -> Task:
        for t in self.tasks:
            if t.id == task_id:
                return t
        raise KeyError(task_id)

    @property
    def student_files(self) -> tuple[str, ...]:
        """Every file taken from a submission: the editable ones, then the fallback ones."""
        return self.editable + self.fallback

    def test_files(self, include_hidden: bool = True) -> list[Path]:
        names = list(self.public_tests) + (list(self.hidden_tests) if include_hidden else [])
        return [self.tests_dir / n for n in names]

    def visibility(self, test_function: str, hidden_file: bool) -> str:
        """Gradescope visibility of one test, by its function name and where it lives."""
        if test_function in self.visibility_overrides:
            return self.visibility_overrides[test_function]
        return self.hidden_visibility if hidden_file else self.public_visibility


def list_assignments(root: Path | None = None) -> list[str]:
    base = (root or repo_root()) / "assignments"
    return sorted(p.parent.name for p in base.glob("*/assignment.toml"))


def _strings(table: dict, key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: '{key}' must be a list of strings, got {value!r}")
    return tuple(value)


def _python(runtime: dict, where: str) -> str:
    """``[runtime] python``: a CPython version as "3.MINOR", at least the grader's oldest."""
    value = runtime.get("python", "")
    if value == "":
        return ""
    match = re.fullmatch(r"3\.(\d{1,2})", value) if isinstance(value, str) else None
    if match is None or int(match[1]) < OLDEST_PYTHON[1]:
        raise ConfigError(
            f'{where}: [runtime] python must be a Python version such as "3.11" (3.10 or '
            f"newer, as a string), got {value!r}"
        )
    return value


def _layer(files: dict, where: str) -> str:
    """``[files] reference``: one folder name under ``reference/`` (not a path)."""
    value = files.get("reference", "")
    if not isinstance(value, str) or (value and not re.fullmatch(r"[A-Za-z0-9_-]+", value)):
        raise ConfigError(
            f"{where}: [files] reference must name one folder inside reference/ (such as "
            f'"module2"), got {value!r}'
        )
    return value


def load_assignment(name_or_path: str | Path, root: Path | None = None) -> Assignment:
    """Read an assignment by name (``module1``) or by the path of its folder or toml file."""
    root = (root or repo_root()).resolve()
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml":
        toml_path = candidate
    elif candidate.is_dir() and (candidate / "assignment.toml").exists():
        toml_path = candidate / "assignment.toml"
    else:
        toml_path = root / "assignments" / str(name_or_path) / "assignment.toml"
    if not toml_path.exists():
        known = ", ".join(list_assignments(root)) or "none"
        raise ConfigError(f"no assignment named '{name_or_path}' (known: {known})")
    where = str(toml_path)
    try:
        data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: invalid TOML: {exc}") from exc

    files = data.get("files", {})
    tests = data.get("tests", {})
    runtime = data.get("runtime", {})
    hyp = data.get("hypothesis", {})
    lim = data.get("limits", {})

    known_limits = set(Limits.__dataclass_fields__)
    unknown = set(lim) - known_limits
    if unknown:
        raise ConfigError(f"{where}: unknown [limits] keys: {', '.join(sorted(unknown))}")
    try:
        limits = Limits(**{k: type(getattr(Limits, k))(v) for k, v in lim.items()})
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: bad [limits] value: {exc}") from exc

    tasks = []
    for i, t in enumerate(data.get("tasks", [])):
        try:
            task = Task(
                id=str(t["id"]),
                title=str(t["title"]),
                points=float(t["points"]),
                weights={str(k): float(v) for k, v in t.get("weights", {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: task #{i + 1} needs id, title and points ({exc})") from exc
        tasks.append(task)
    if not tasks:
        raise ConfigError(f"{where}: no [[tasks]] defined")
    ids = [t.id for t in tasks]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"{where}: duplicate task ids in {ids}")

    overrides = {str(k): str(v) for k, v in tests.get("visibility", {}).items()}
    pub_vis = str(tests.get("public_visibility", "visible"))
    hid_vis = str(tests.get("hidden_visibility", "after_due_date"))
    for v in (pub_vis, hid_vis, *overrides.values()):
        if v not in VISIBILITIES:
            raise ConfigError(f"{where}: visibility '{v}' is not one of {VISIBILITIES}")

    assignment = Assignment(
        name=str(data.get("name", toml_path.parent.name)),
        title=str(data.get("title", toml_path.parent.name)),
        folder=toml_path.parent.resolve(),
        root=root,
        editable=_strings(files, "editable", where),
        provided=_strings(files, "provided", where),
        solved=_strings(files, "solved", where),
        stubbed=_strings(files, "stubbed", where),
        extra=_strings(files, "extra", where),
        fallback=_strings(files, "fallback", where),
        runtime=(
            _strings(runtime, "packages", where) if "packages" in runtime else DEFAULT_RUNTIME
        ),
        python=_python(runtime, where),
        public_tests=_strings(tests, "public", where),
        hidden_tests=_strings(tests, "hidden", where),
        public_visibility=pub_vis,
        hidden_visibility=hid_vis,
        visibility_overrides=overrides,
        max_examples=int(hyp.get("max_examples", 60)),
        local_max_examples=int(hyp.get("local_max_examples", 100)),
        shrink_calls=int(hyp.get("shrink_calls", 100)),
        shrink_seconds=float(hyp.get("shrink_seconds", 60.0)),
        limits=limits,
        tasks=tuple(tasks),
        reference_layer=_layer(files, where),
    )
    if not assignment.editable:
        raise ConfigError(f"{where}: [files] editable is empty")
    stray = set(assignment.fallback) - set(assignment.solved)
    if stray:
        raise ConfigError(
            f"{where}: [files] fallback needs a course copy: list {', '.join(sorted(stray))} "
            "in solved as well"
        )
    if set(assignment.fallback) & set(assignment.editable):
        raise ConfigError(f"{where}: a file cannot be both editable and fallback")
    return assignment
