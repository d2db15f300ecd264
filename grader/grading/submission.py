"""Find a student's editable files and stage them over the course's own files.

A submission is a folder or a .zip. Students put files in many places; accepted, in order
of preference, for each editable file ``minitorch/x.py``:
``minitorch/x.py``, ``x.py``, ``<one folder>/minitorch/x.py``, ``<one folder>/x.py``.
Nothing else of the submission is used: provided files always come from the reference, and
zip members other than the editable files are never extracted (a zip bomb elsewhere in the
archive costs nothing).
"""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from grader.course.assignment import Assignment
from grader.errors import SubmissionError
from grader.isolation import keep_private
from grader.isolation.worker import MISSING_LIST

__all__ = ["Located", "locate", "stage"]

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_ZIP_MEMBERS = 20_000
_IGNORED_DIRS = {"__MACOSX", ".git", ".venv", "venv", "node_modules", "__pycache__", ".hypothesis"}


@dataclass
class Located:
    """What was found: file contents by their place in the package, plus notes for the report."""

    files: dict[str, bytes] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _candidates(rel: str) -> list[str]:
    """Patterns in order of preference; ``*`` is exactly one folder."""
    name = PurePosixPath(rel).name
    return [rel, name, f"*/{rel}", f"*/{name}"]


def _match(pattern: str, path: PurePosixPath) -> bool:
    parts, want = path.parts, PurePosixPath(pattern).parts
    if len(parts) != len(want):
        return False
    return all(w == "*" or w == p for w, p in zip(want, parts, strict=True))


def _pick(assignment: Assignment, paths: list[PurePosixPath]) -> dict[str, PurePosixPath]:
    usable = [
        p
        for p in paths
        if not any(part in _IGNORED_DIRS or part.startswith("._") for part in p.parts)
    ]
    chosen: dict[str, PurePosixPath] = {}
    for rel in assignment.student_files:
        for pattern in _candidates(rel):
            hits = sorted(p for p in usable if _match(pattern, p))
            if hits:
                chosen[rel] = hits[0]
                break
    return chosen


def _from_dir(folder: Path, assignment: Assignment, found: Located) -> None:
    paths = []
    for dirpath, dirnames, filenames in os.walk(folder):
        depth = len(Path(dirpath).relative_to(folder).parts)
        dirnames[:] = sorted(d for d in dirnames if d not in _IGNORED_DIRS) if depth < 2 else []
        for f in filenames:
            if f.endswith(".py"):
                paths.append(PurePosixPath(Path(dirpath, f).relative_to(folder).as_posix()))
    for rel, path in _pick(assignment, paths).items():
        source = folder / path
        mode = source.lstat().st_mode
        if stat.S_ISLNK(mode):
            found.notes.append(f"{path} is a symbolic link; it was ignored")
            continue
        if not stat.S_ISREG(mode):
            # A named pipe would block the reader forever; a device or socket is no code.
            found.notes.append(f"{path} is not a regular file (a pipe, socket or device?); ignored")
            continue
        size = source.stat().st_size
        if size > MAX_FILE_BYTES:
            found.notes.append(f"{path} is {size} bytes, over the {MAX_FILE_BYTES} limit; ignored")
            continue
        found.files[rel] = source.read_bytes()
        found.origins[rel] = str(path)


def zip_entry_count(archive: Path) -> int | None:
    """The number of entries a zip declares in its end record, read before anything else.

    ``zipfile.ZipFile`` parses the whole central directory when it opens an archive: for a
    small file listing millions of entries that alone is gigabytes and many seconds. The end
    record (and its ZIP64 twin) states the count in a few bytes at the end of the file.
    None when there is no end record (not a zip).
    """
    with open(archive, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        tail_size = min(size, 22 + 65535)  # end record + the longest archive comment
        fh.seek(size - tail_size)
        tail = fh.read(tail_size)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return None
    count = int.from_bytes(tail[at + 10 : at + 12], "little")
    locator = at - 20  # a ZIP64 end-record locator sits just before the end record
    if locator >= 0 and tail[locator : locator + 4] == b"PK\x06\x07":
        offset = int.from_bytes(tail[locator + 8 : locator + 16], "little")
        with open(archive, "rb") as fh:
            fh.seek(offset)
            record = fh.read(56)
        if record[:4] == b"PK\x06\x06" and len(record) >= 40:
            count = max(count, int.from_bytes(record[32:40], "little"))
    return count


def refuse_crowded_zip(archive: Path) -> None:
    """Refuse a zip whose end record lists more than MAX_ZIP_MEMBERS entries, before
    anything parses its central directory (a million entries cost seconds and 500 MB)."""
    declared = zip_entry_count(archive)
    if declared is not None and declared > MAX_ZIP_MEMBERS:
        raise SubmissionError(
            f"{archive.name} lists {declared} entries; a submission zip may hold at most "
            f"{MAX_ZIP_MEMBERS} (zip only your minitorch/ folder)"
        )


def _from_zip(archive: Path, assignment: Assignment, found: Located) -> None:
    refuse_crowded_zip(archive)
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ZIP_MEMBERS:
                raise SubmissionError(f"the zip has {len(infos)} entries (limit {MAX_ZIP_MEMBERS})")
            by_path: dict[PurePosixPath, zipfile.ZipInfo] = {}
            for info in infos:
                name = info.filename.replace("\\", "/")
                path = PurePosixPath(name)
                if info.is_dir() or path.is_absolute() or ".." in path.parts:
                    continue
                if stat.S_ISLNK(info.external_attr >> 16):
                    continue
                by_path.setdefault(path, info)
            for rel, path in _pick(assignment, list(by_path)).items():
                info = by_path[path]
                if info.file_size > MAX_FILE_BYTES:
                    found.notes.append(
                        f"{path} is {info.file_size} bytes unpacked, over the "
                        f"{MAX_FILE_BYTES} limit; ignored"
                    )
                    continue
                with zf.open(info) as fh:
                    data = fh.read(MAX_FILE_BYTES + 1)
                if len(data) > MAX_FILE_BYTES:
                    found.notes.append(
                        f"{path} unpacks to more than {MAX_FILE_BYTES} bytes; ignored"
                    )
                    continue
                found.files[rel] = data
                found.origins[rel] = str(path)
    except zipfile.BadZipFile as exc:
        raise SubmissionError(f"{archive.name} is not a readable zip file ({exc})") from exc
    except (RuntimeError, NotImplementedError, OSError) as exc:  # encrypted, odd compression
        raise SubmissionError(f"{archive.name} could not be unpacked ({exc})") from exc


def locate(submission: Path, assignment: Assignment) -> Located:
    """Find each editable file of ``assignment`` in a submission folder or zip."""
    found = Located()
    if submission.is_dir():
        _from_dir(submission, assignment, found)
    elif submission.is_file() and zipfile.is_zipfile(submission):
        _from_zip(submission, assignment, found)
    elif submission.is_file() and submission.suffix == ".py":
        found.notes.append("the submission is a single file; expected a folder or a zip")
        _from_dir(submission.parent, assignment, found)
    elif not submission.exists():
        raise SubmissionError(f"{submission} does not exist")
    else:
        raise SubmissionError(f"{submission.name} is neither a folder nor a zip file")
    found.missing = [rel for rel in assignment.editable if rel not in found.files]
    for rel in found.missing:
        found.notes.append(f"{rel} was not found in the submission; the tasks that need it score 0")
    for rel in assignment.fallback:
        if rel not in found.files:
            found.notes.append(
                f"{rel} was not in the submission: graded with the course's copy of it"
            )
    moved = {rel: o for rel, o in found.origins.items() if o != rel}
    if moved:
        found.notes.append(
            "found " + ", ".join(f"{rel} at {o}" for rel, o in sorted(moved.items()))
        )
    return found


def stage(assignment: Assignment, located: Located, dest: Path) -> Path:
    """Write the grading tree: student files over the course's provided/solved/stubbed ones.

    The tree is private to this process; the sandbox shares it with the one worker that
    grades it (``sandbox.share_with_worker``), so no other grade's worker can read it.
    """
    from grader.course.skeleton import make_skeleton

    pkg = dest / "minitorch"
    pkg.mkdir(parents=True, exist_ok=True)
    ref = assignment.reference_file

    def write(rel: str, data: bytes) -> None:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    for rel in assignment.provided:
        write(rel, ref(rel).read_bytes())
    for rel in assignment.solved:
        write(rel, course_copy(assignment, rel))
    for rel in assignment.stubbed:
        text = ref(rel).read_text(encoding="utf-8")
        write(rel, make_skeleton(text, rel).encode("utf-8"))
    for rel, data in located.files.items():
        write(rel, data)
    missing = sorted(Path(rel).stem for rel in located.missing)
    (dest / MISSING_LIST).write_text("\n".join(missing) + "\n", encoding="utf-8")
    keep_private(dest)
    return dest


def course_copy(assignment: Assignment, rel: str) -> bytes:
    """The course's solved copy of ``rel``: the reference without its solution markers."""
    from grader.course.skeleton import strip_markers

    text = assignment.reference_file(rel).read_text(encoding="utf-8")
    return strip_markers(text).encode("utf-8")


def copy_reference_submission(assignment: Assignment, dest: Path) -> Path:
    """The reference's editable files as a submission folder (for demos and tests)."""
    for rel in assignment.student_files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(assignment.reference_file(rel), target)
    return dest
