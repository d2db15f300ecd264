"""What a batch grades: a folder of submissions, or Gradescope's "Export Submissions".

A folder of submission folders or zips gives one ``BatchItem`` each (the id is the file
name); an export (``submission_metadata.yml`` plus one ``submission_<id>`` folder each) also
gives each student's name, SID and e-mail, read from the yml without a YAML library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import SubmissionError

GRADESCOPE_METADATA = "submission_metadata.yml"


@dataclass(frozen=True)
class BatchItem:
    """One submission of a batch: a stable id (file-name safe), its path, who submitted it."""

    id: str
    path: Path
    meta: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------- discovery


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1].replace("''", "'")
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


def parse_gradescope_metadata(text: str) -> dict[str, dict[str, str]]:
    """Submitters per submission from Gradescope's ``submission_metadata.yml``.

    Reads only the shape Gradescope writes (so no YAML dependency)::

        submission_123:
          :submitters:
          - :name: Jane Doe
            :sid: '12345'
            :email: jane@example.edu

    Returns ``{"submission_123": {"name": ..., "sid": ..., "email": ...}}``; a group's
    members are joined with "; " in each field.
    """
    out: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    in_submitters = False
    member: dict[str, str] = {}

    def flush() -> None:
        nonlocal member
        if current is not None and member:
            for key in ("name", "sid", "email"):
                current.setdefault(key, []).append(member.get(key, ""))
        member = {}

    for raw in text.splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        line = raw.strip()
        if indent == 0 and line.endswith(":"):
            flush()
            current = out.setdefault(_unquote(line[:-1]), {})
            in_submitters = False
            continue
        if current is None:
            continue
        if line.startswith("- "):
            if in_submitters:
                flush()
            line = line[2:].strip()
            if not in_submitters:
                continue
        elif line.startswith(":") and indent <= 2:
            flush()
            in_submitters = line.startswith(":submitters:")
            continue
        if in_submitters and line.startswith(":") and ":" in line[1:]:
            key, _, value = line[1:].partition(":")
            if key in ("name", "sid", "email"):
                member[key] = _unquote(value)
    flush()
    return {sub: {k: "; ".join(v) for k, v in fields.items()} for sub, fields in out.items()}


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: Files of a submissions folder taken as submissions (anything else: notes, a CSV, ...).
_SUBMISSION_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".7z", ".rar")


def _safe_id(name: str) -> str:
    return _SAFE.sub("_", name).strip("._") or "submission"


def discover(folder: Path) -> list[BatchItem]:
    """The submissions in ``folder`` (plain folder of dirs/zips, or a Gradescope export)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SubmissionError(f"{folder}: not a folder of submissions")
    meta: dict[str, dict[str, str]] = {}
    metadata = folder / GRADESCOPE_METADATA
    if metadata.is_file():
        meta = parse_gradescope_metadata(metadata.read_text(encoding="utf-8", errors="replace"))
    items: list[BatchItem] = []
    seen: set[str] = set()
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.name == GRADESCOPE_METADATA:
            continue
        if path.is_dir():
            name = path.name
        elif path.is_file() and path.suffix.lower() in _SUBMISSION_SUFFIXES:
            # Not only zips: a tarball or a lone .py is a submission the grader refuses with
            # a reason (status bad-submission), never one the batch silently leaves out.
            name = path.name
            while Path(name).suffix.lower() in _SUBMISSION_SUFFIXES and Path(name).stem:
                name = Path(name).stem
        else:
            continue
        ident = base = _safe_id(name)
        n = 2
        while ident in seen:
            ident = f"{base}-{n}"
            n += 1
        seen.add(ident)
        items.append(BatchItem(ident, path, dict(meta.get(name, {}))))
    return items
