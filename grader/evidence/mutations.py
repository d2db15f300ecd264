"""Submissions made from the reference by text edits: the corpus of buggy and correct styles.

A corpus entry is a list of edits ``{file, find, replace}`` applied to the reference's
student-editable files; ``find`` must occur exactly once in its file, so an entry that no
longer fits the reference fails loudly instead of silently grading the reference.

    [[entry]]
    name = "mul_backward_forgets_d"
    task = "1.4"            # the task this entry should lose points in ("" for correct ones)
    file = "minitorch/scalar_functions.py"
    find = "..."
    replace = "..."
    why = "..."

An entry may instead hold ``edits = [{file, find, replace}, ...]`` for several changes.
An edit may also carry ``encoding = "latin-1"``: its file is then written in that encoding
instead of UTF-8 (a student file saved by an editor that honours a coding cookie).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["EDITABLE", "Entry", "apply_mutations", "load_corpus"]

#: The student-editable files of modules 0 and 1 (docs/architecture.md).
EDITABLE = (
    "minitorch/operators.py",
    "minitorch/module.py",
    "minitorch/autodiff.py",
    "minitorch/scalar.py",
    "minitorch/scalar_functions.py",
)


@dataclass(frozen=True)
class Entry:
    """One corpus submission: a name, the task it should lose points in, and its edits."""

    name: str
    task: str
    edits: list[dict[str, str]] = field(default_factory=list)
    why: str = ""


def _file_key(file: str) -> str:
    file = file.replace("\\", "/")
    return file if file.startswith("minitorch/") else f"minitorch/{file}"


def _student_files(reference_dir: Path, layer: str) -> list[str]:
    """The files a submission made from the reference holds: modules 0 and 1's five, and
    the files a later module's layer (``reference/<layer>``) has solution regions in."""
    files = list(EDITABLE)
    if layer:
        for path in sorted((reference_dir / layer / "minitorch").glob("*.py")):
            rel = f"minitorch/{path.name}"
            if rel not in files and "# BEGIN SOLUTION" in path.read_text(encoding="utf-8"):
                files.append(rel)
    return files


def apply_mutations(
    reference_dir: Path, edits: list[dict[str, Any]], out: Path, layer: str = ""
) -> Path:
    """Copy the student files of ``reference_dir/minitorch`` (modules 0 and 1's five, plus
    those of ``layer``, a later module's folder inside it) to ``out/minitorch`` and apply
    ``edits`` in order. Returns ``out``.

    Files are written as UTF-8, except a file named by an edit with an ``encoding`` key,
    which is written in that encoding (the last such edit of the file decides).

    ``reference_dir`` is the folder holding ``minitorch/`` (e.g. the repository's
    ``reference``). Raises ValueError if an edit names a file that is not editable or a
    ``find`` string does not occur exactly once.
    """
    reference_dir = Path(reference_dir)
    out = Path(out)
    texts: dict[str, str] = {}
    encodings: dict[str, str] = {}
    for rel in _student_files(reference_dir, layer):
        own = reference_dir / layer / rel
        texts[rel] = (own if layer and own.is_file() else reference_dir / rel).read_text(
            encoding="utf-8"
        )
    for i, edit in enumerate(edits):
        rel = _file_key(str(edit["file"]))
        if rel not in texts:
            raise ValueError(f"edit {i}: {edit['file']!r} is not a student-editable file")
        find, replace = str(edit["find"]), str(edit["replace"])
        count = texts[rel].count(find)
        if count != 1:
            raise ValueError(
                f"edit {i}: the find text occurs {count} times in {rel} (needs exactly 1): "
                f"{find[:80]!r}"
            )
        texts[rel] = texts[rel].replace(find, replace)
        if edit.get("encoding"):
            encodings[rel] = str(edit["encoding"])
    pkg = out / "minitorch"
    if pkg.exists():
        shutil.rmtree(pkg)
    pkg.mkdir(parents=True)
    for rel, text in texts.items():
        (out / rel).write_bytes(text.encode(encodings.get(rel, "utf-8")))
    return out


def load_corpus(path: Path) -> list[Entry]:
    """Read a corpus toml (``[[entry]]`` tables) into entries, validating their shape."""
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    entries = []
    names: set[str] = set()
    for raw in data.get("entry", []):
        name = str(raw["name"])
        if name in names:
            raise ValueError(f"{path}: duplicate entry name {name!r}")
        names.add(name)
        if "edits" in raw:
            edits = [dict(e) for e in raw["edits"]]
        else:
            edits = [{"file": raw["file"], "find": raw["find"], "replace": raw["replace"]}]
            if "encoding" in raw:
                edits[0]["encoding"] = raw["encoding"]
        for e in edits:
            missing = {"file", "find", "replace"} - set(e)
            if missing:
                raise ValueError(f"{path}: entry {name!r} has an edit without {sorted(missing)}")
            if "encoding" in e:
                try:
                    "".encode(str(e["encoding"]))
                except LookupError:
                    raise ValueError(
                        f"{path}: entry {name!r} names an unknown encoding {e['encoding']!r}"
                    ) from None
        entries.append(Entry(name, str(raw.get("task", "")), edits, str(raw.get("why", ""))))
    return entries
