"""Build the Gradescope autograder bundle: one zip that grades offline on Gradescope and locally.

Gradescope unzips the bundle into ``/autograder/source``, runs ``setup.sh`` there once when it
builds its image, then runs ``/autograder/run_autograder`` (a copy of the one in the zip) for
every submission. So the zip root holds the project itself (``grader/``, ``pyproject.toml``,
``reference/``, ``assignments/<name>/``, ``tests/``) next to ``setup.sh``, ``run_autograder``
and ``wheels/``; with ``GRADER_ROOT=/autograder/source`` the grader finds its course files
exactly as in a checkout. ``grader image`` builds a local image the same way, so the very zip
uploaded to Gradescope is what a TA runs locally.

Every Python package comes from ``wheels/`` (``pip install --no-index``): setup never needs
PyPI, and the pinned versions (hypothesis derandomizes by hashing, so versions change draws)
are the ones graded with. The wheelhouse is built on the host for CPython 3.10 (Gradescope's
Ubuntu 22.04), 3.11 (Debian bookworm, python:3.11-slim) and 3.12 (Ubuntu 24.04), cached under
``build/wheelhouse/<key>`` keyed by the pinned requirement list, so rebuilds stay offline.

The zip is deterministic (sorted entries, fixed timestamps): its hash names the local image,
so an unchanged bundle never rebuilds an image.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from grader.course.assignment import Assignment, load_assignment, repo_root
from grader.course.secret import ensure_course_secret
from grader.errors import ConfigError, GraderError
from grader.isolation import WORKER_UID  # the uid the in-container sandbox drops to

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "TARGET_PYTHONS",
    "build_bundle",
    "bundle_digest",
    "build_wheelhouse",
    "project_requirements",
    "add_commands",
]

#: CPython versions the wheelhouse serves: Gradescope Ubuntu 22.04 (3.10), Debian bookworm
#: and python:3.11-slim (3.11), Ubuntu 24.04 (3.12).
TARGET_PYTHONS: tuple[str, ...] = ("3.10", "3.11", "3.12")
TARGET_PLATFORM = "manylinux2014_x86_64"

_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache", ".mypy_cache"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}


def _templates_dir(root: Path) -> Path:
    """Folder with the setup.sh and run_autograder templates (a checkout's docker/gradescope)."""
    return root / "docker" / "gradescope"


# --------------------------------------------------------------------------- wheelhouse


def project_requirements(root: Path | None = None) -> list[str]:
    """The pinned runtime requirements from ``pyproject.toml`` (markers kept)."""
    path = (root or repo_root()) / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the project requirements from {path}: {exc}") from exc
    return list(data.get("project", {}).get("dependencies", []))


def _marker_env(python: str) -> dict[str, str]:
    """PEP 508 marker environment of a Linux x86_64 CPython ``python`` (e.g. "3.10")."""
    return {
        "python_version": python,
        "python_full_version": f"{python}.0",
        "implementation_name": "cpython",
        "implementation_version": f"{python}.0",
        "platform_python_implementation": "CPython",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "sys_platform": "linux",
        "os_name": "posix",
        "extra": "",
    }


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise GraderError(f"pip failed ({' '.join(cmd[3:6])} ...):\n{tail}")


def _wheel_requirements(wheel: Path) -> list[str]:
    """``Requires-Dist`` lines of a wheel's METADATA."""
    with zipfile.ZipFile(wheel) as zf:
        meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        text = zf.read(meta).decode("utf-8", "replace")
    head = text.split("\n\n", 1)[0]
    return [
        ln.split(":", 1)[1].strip() for ln in head.splitlines() if ln.startswith("Requires-Dist:")
    ]


def _wheel_name(wheel: Path) -> str:
    from packaging.utils import canonicalize_name

    return canonicalize_name(wheel.name.split("-", 1)[0])


def _download_for(requirements: list[str], dest: Path, python: str) -> None:
    """``pip download`` binary wheels for one target CPython, closing over its markers.

    pip evaluates environment markers against the interpreter it runs on, not against
    ``--python-version``, so a host on 3.11 skips ``tomli; python_version < "3.11"`` and
    pytest's ``exceptiongroup``. Re-read every wheel's requirements with the target's marker
    environment and fetch what is still missing until nothing is.
    """
    from packaging.requirements import Requirement

    target = [
        "--only-binary=:all:",
        "--python-version",
        python,
        "--implementation",
        "cp",
        "--platform",
        TARGET_PLATFORM,
        "-d",
        str(dest),
        "--quiet",
    ]
    env = _marker_env(python)
    wanted = [
        r
        for r in requirements
        if Requirement(r).marker is None or Requirement(r).marker.evaluate(env)
    ]
    _pip("download", *target, *[_strip_marker(r) for r in wanted])
    for _ in range(10):
        missing = missing_requirements(dest, python)
        if not missing:
            return
        _pip("download", *target, *missing)
    raise GraderError(f"the wheelhouse for Python {python} does not close over its requirements")


def missing_requirements(wheels: Path, python: str) -> list[str]:
    """Requirements of the wheels in ``wheels`` that no wheel there provides, on ``python``.

    Empty when ``pip install --no-index --find-links wheels`` can succeed on that Python.
    """
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    env = _marker_env(python)
    usable = [w for w in wheels.glob("*.whl") if _compatible(w, python)]
    have = {_wheel_name(w) for w in usable}
    missing: dict[str, str] = {}
    for wheel in usable:
        for line in _wheel_requirements(wheel):
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            name = canonicalize_name(req.name)
            if name not in have:
                missing[name] = _strip_marker(line)
    return sorted(missing.values())


def _compatible(wheel: Path, python: str) -> bool:
    """Whether a wheel installs on Linux x86_64 CPython ``python`` (by its file-name tags)."""
    from packaging.utils import parse_wheel_filename

    major, minor = python.split(".")[:2]
    interpreters = {"py3", f"py{major}{minor}", f"cp{major}{minor}", f"cp{major}"}
    abis = {"none", "abi3", f"cp{major}{minor}"}
    try:
        _, _, _, tags = parse_wheel_filename(wheel.name)
    except ValueError:
        return False
    return any(
        t.interpreter in interpreters
        and t.abi in abis
        and (t.platform == "any" or (t.platform.startswith("manylinux") and "x86_64" in t.platform))
        for t in tags
    )


def _strip_marker(requirement: str) -> str:
    from packaging.requirements import Requirement

    req = Requirement(requirement)
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return f"{req.name}{extras}{req.specifier}"


def build_wheelhouse(
    requirements: Iterable[str] | None = None,
    cache: Path | None = None,
    pythons: Iterable[str] = TARGET_PYTHONS,
) -> Path:
    """A folder of wheels for ``requirements`` on every target Python, cached by content.

    The cache key hashes the requirement list and the targets, so editing a pin makes a new
    wheelhouse and an unchanged list never touches the network again.
    """
    reqs = sorted(requirements if requirements is not None else project_requirements())
    pythons = tuple(pythons)
    key_src = "\n".join([*reqs, "--", *pythons, TARGET_PLATFORM])
    key = hashlib.sha256(key_src.encode()).hexdigest()[:16]
    base = cache or (repo_root() / "build" / "wheelhouse")
    dest = base / key
    if (dest / ".complete").exists():
        return dest
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=base))
    try:
        for python in pythons:
            _download_for(reqs, work, python)
        (work / "requirements.txt").write_text("\n".join(reqs) + "\n", encoding="utf-8")
        (work / ".complete").write_text(key_src + "\n", encoding="utf-8")
        if dest.exists():  # a concurrent or half-finished build: replace it
            shutil.rmtree(dest)
        os.replace(work, dest)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return dest


def _source_files(root: Path, assignment: Assignment) -> list[tuple[str, Path]]:
    """(archive name, file) for every course file the grader needs at grading time."""
    picks: list[tuple[str, Path]] = []

    def walk(rel: str) -> None:
        top = root / rel
        if top.is_file():
            picks.append((rel, top))
            return
        if not top.is_dir():
            raise ConfigError(f"the bundle needs {top}, which does not exist")
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            if Path(dirpath) == root / "grader" and "tests" in dirnames:
                dirnames.remove("tests")  # the project's own tests are not course files
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if path.suffix in _SKIP_SUFFIXES or path.is_symlink():
                    continue
                picks.append((path.relative_to(root).as_posix(), path))

    walk("grader")
    walk("pyproject.toml")
    if (root / "README.md").is_file():
        walk("README.md")
    walk("reference")
    walk(f"assignments/{assignment.folder.name}")
    walk("tests")  # public and hidden tests and support: all of it is needed
    return picks


def build_grader_wheel(root: Path, cache: Path) -> Path:
    """A wheel of the grader package itself, cached by the hash of its sources."""
    digest = hashlib.sha256()
    files = [root / "pyproject.toml", *sorted((root / "grader").rglob("*"))]
    for path in files:
        if path.is_file() and path.suffix not in _SKIP_SUFFIXES and "tests" not in path.parts:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    dest = cache / "grader" / digest.hexdigest()[:16]
    found = sorted(dest.glob("*.whl"))
    if found:
        return found[0]
    with tempfile.TemporaryDirectory(prefix="grader-wheel.") as tmp:
        # Build from a copy so setuptools' build/ and egg-info never land in the checkout.
        src = Path(tmp) / "src"
        src.mkdir()
        shutil.copy2(root / "pyproject.toml", src)
        if (root / "README.md").exists():
            shutil.copy2(root / "README.md", src)
        shutil.copytree(
            root / "grader",
            src / "grader",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests"),
        )
        out = Path(tmp) / "out"
        env_epoch = os.environ.get("SOURCE_DATE_EPOCH")
        os.environ["SOURCE_DATE_EPOCH"] = "315532800"  # reproducible wheel timestamps
        try:
            _pip("wheel", "--quiet", "--no-deps", "-w", str(out), str(src))
        finally:
            if env_epoch is None:
                os.environ.pop("SOURCE_DATE_EPOCH", None)
            else:
                os.environ["SOURCE_DATE_EPOCH"] = env_epoch
        wheels = sorted(out.glob("*.whl"))
        if not wheels:
            raise GraderError("building the grader's own wheel produced no .whl file")
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(wheels[0], dest / wheels[0].name)
    return dest / wheels[0].name


# --------------------------------------------------------------------------- the zip


def _zip_entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
    info.external_attr = (0o100000 | mode) << 16  # regular file + permission bits
    info.compress_type = zipfile.ZIP_DEFLATED
    info.create_system = 3  # unix, so unzip honours the mode bits
    return info


def _newest_first(versions: Iterable[str]) -> list[str]:
    return sorted(versions, key=lambda v: tuple(int(p) for p in v.split(".")), reverse=True)


def bundle_entries(
    root: Path, assignment: Assignment, wheelhouse: Path, grader_wheel: Path
) -> Iterator[tuple[str, bytes, int]]:
    templates = _templates_dir(root)
    for script in ("setup.sh", "run_autograder"):
        text = (templates / script).read_text(encoding="utf-8")
        text = (
            text.replace("@ASSIGNMENT@", assignment.name)
            .replace("@WORKER_UID@", str(WORKER_UID))
            .replace("@PYTHONS@", " ".join(f"python{v}" for v in _newest_first(TARGET_PYTHONS)))
            .replace("@COURSE_PYTHON@", assignment.python)
        )
        yield script, text.encode("utf-8"), 0o755
    for name, path in _source_files(root, assignment):
        yield name, path.read_bytes(), 0o644
    for wheel in sorted(wheelhouse.glob("*.whl")):
        yield f"wheels/{wheel.name}", wheel.read_bytes(), 0o644
    yield f"wheels/{grader_wheel.name}", grader_wheel.read_bytes(), 0o644


def build_bundle(
    assignment: Assignment | str,
    out: Path,
    *,
    wheelhouse: Path | None = None,
    cache: Path | None = None,
) -> Path:
    """Write the Gradescope autograder zip for ``assignment`` to ``out`` and return it.

    Written to a temporary name and renamed, so a half-written zip never looks finished. The
    zip holds the course secret, the hidden tests and the reference: it is readable by its
    owner only (0600, whatever the umask), from its first byte.
    """
    if isinstance(assignment, str):
        assignment = load_assignment(assignment)
    # The course's grading examples depend on it; the bundle carries it root-only.
    ensure_course_secret(assignment)
    root = assignment.root
    cache = cache or (root / "build")
    wheelhouse = wheelhouse or build_wheelhouse(
        project_requirements(root), cache=cache / "wheelhouse"
    )
    grader_wheel = build_grader_wheel(root, cache)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    seen: set[str] = set()
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # a file that was already there keeps its mode otherwise
        with os.fdopen(fd, "wb") as fh, zipfile.ZipFile(fh, "w") as zf:
            for name, data, mode in bundle_entries(root, assignment, wheelhouse, grader_wheel):
                if name in seen:
                    continue
                seen.add(name)
                zf.writestr(_zip_entry(name, mode), data)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def bundle_digest(path: Path) -> str:
    """sha256 of a bundle zip: the content address of the image built from it."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- CLI


def _cmd_gradescope(args) -> int:
    assignment = load_assignment(args.assignment)
    out = Path(args.out or f"dist/{assignment.name}-autograder.zip")
    path = build_bundle(assignment, out)
    size = path.stat().st_size / 1e6
    print(f"wrote {path} ({size:.1f} MB): upload it on Gradescope's 'Configure Autograder' page")
    return 0


def add_commands(subparsers) -> None:
    """Register ``gradescope`` (build the autograder zip)."""
    p = subparsers.add_parser(
        "gradescope",
        help="build the Gradescope autograder zip (setup.sh, run_autograder, source, wheels)",
        description=(
            "Build the autograder bundle uploaded to Gradescope. It installs offline from the "
            "wheels inside it, so setup does not depend on PyPI at Gradescope build time."
        ),
    )
    p.add_argument("assignment", help="assignment name, e.g. module1")
    p.add_argument("--out", help="zip to write (default dist/ASSIGNMENT-autograder.zip)")
    p.set_defaults(func=_cmd_gradescope)
