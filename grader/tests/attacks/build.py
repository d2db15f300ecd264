"""Turn attacks.toml into submission folders (used by test_attacks.py; no pytest here).

    python grader/tests/attacks/build.py OUT [NAME ...]

writes OUT/<baseline or attack name>/ so a TA can grade one by hand:
``grader grade OUT/rigged_numbers --assignment module1``.
"""

from __future__ import annotations

import os
import sys
import textwrap
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from grader.course.assignment import load_assignment, repo_root
from grader.evidence.mutations import apply_mutations
from grader.isolation import open_to_worker

ATTACKS_FILE = Path(__file__).with_name("attacks.toml")
REFERENCE = repo_root() / "reference"


@dataclass(frozen=True)
class Baseline:
    name: str  # its key in attacks.toml: "module1", "module1_zero", ...
    assignment: str
    why: str
    file: str  # the edited student file the attack code is appended to
    edits: list[dict[str, str]]
    append: str


@dataclass(frozen=True)
class Attack:
    name: str
    assignment: str
    why: str
    payload: str = ""
    at_import: str = ""
    edits: list[dict[str, str]] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    combine: tuple[str, ...] = ()
    docker: bool = False
    baseline: str = ""  # the baseline it builds on (default: the one named as its assignment)
    fifos: tuple[str, ...] = ()  # paths made named pipes (replacing the file)
    zip_entries: int = 0  # > 0: the submission is a zip of this many (empty) extra entries
    modules: tuple[str, ...] = ()  # other assignments it also runs against, on their baselines


def load(path: Path = ATTACKS_FILE) -> tuple[dict[str, Baseline], list[Attack]]:
    data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    baselines = {
        name: Baseline(
            name, b.get("assignment", name), b["why"], b["file"], list(b["edits"]), b["append"]
        )
        for name, b in data["baseline"].items()
    }
    attacks = []
    for raw in data["attack"]:
        attack = Attack(
            name=raw["name"],
            assignment=raw["assignment"],
            why=" ".join(raw["why"].split()),
            payload=raw.get("payload", ""),
            at_import=raw.get("at_import", ""),
            edits=list(raw.get("edits", [])),
            files=dict(raw.get("files", {})),
            combine=tuple(raw.get("combine", ())),
            docker=bool(raw.get("docker", False)),
            baseline=raw.get("baseline", raw["assignment"]),
            fifos=tuple(raw.get("fifos", ())),
            zip_entries=int(raw.get("zip_entries", 0)),
            modules=tuple(raw.get("modules", ())),
        )
        base = baselines.get(attack.baseline)
        if base is None or base.assignment != attack.assignment:
            raise ValueError(
                f"attack {attack.name}: no baseline {attack.baseline!r} of {attack.assignment}"
            )
        attacks.append(attack)
        for module in attack.modules:  # the same attack on another module's baseline
            if module not in baselines or attack.combine:
                raise ValueError(f"attack {attack.name}: no baseline {module!r} to run against")
            attacks.append(
                replace(
                    attack,
                    name=f"{module}-{attack.name}",
                    assignment=module,
                    baseline=module,
                    docker=False,
                    modules=(),
                )
            )
    names = [a.name for a in attacks]
    if len(set(names)) != len(names):
        raise ValueError("attack names must be unique")
    by_name = {a.name: a for a in attacks}
    combined = []
    for attack in attacks:
        parts = [by_name[n] for n in attack.combine]
        if any(p.baseline != attack.baseline or not p.payload for p in parts):
            raise ValueError(f"attack {attack.name}: combine needs payloads of its assignment")
        combined.append(_combined(attack, parts) if parts else attack)
    return baselines, combined


#: The wrong functions of the module-1 baseline, in the order ``combine`` uses them.
FUNCTIONS = ("Add", "Log", "Mul", "Inv", "Neg", "Sigmoid", "ReLU", "Exp", "LT", "EQ")


def _combined(attack: Attack, parts: list[Attack]) -> Attack:
    """One payload that runs each part's payload on the first call of its own function."""
    if len(parts) > len(FUNCTIONS):
        raise ValueError(f"attack {attack.name}: at most {len(FUNCTIONS)} parts")
    code = []
    table = []
    for i, (part, fn) in enumerate(zip(parts, FUNCTIONS, strict=False)):
        body = textwrap.indent(textwrap.dedent(part.payload).strip("\n"), "    ")
        code.append(f"def _part_{i}(name, *args):  # {part.name}, on {fn}\n{body}\n")
        table.append(f"{fn!r}: _part_{i}")
    dispatch = "part = {" + ", ".join(table) + "}.get(name)\n"
    dispatch += "return None if part is None else part(name, *args)\n"
    return Attack(
        name=attack.name,
        assignment=attack.assignment,
        why=attack.why,
        payload=dispatch,
        at_import="\n\n".join(code),
        combine=attack.combine,
        docker=attack.docker,
        baseline=attack.baseline,
    )


def build(
    baseline: Baseline,
    attack: Attack | None,
    out: Path,
    placeholders: dict[str, str] | None = None,
) -> Path:
    """Write the baseline (plus ``attack``) as a submission folder at ``out``."""
    attack = attack or Attack("baseline", baseline.assignment, "", baseline=baseline.name)
    layer = load_assignment(baseline.assignment).reference_layer
    apply_mutations(REFERENCE, [*baseline.edits, *attack.edits], out, layer)
    target = out / "minitorch" / baseline.file
    text = target.read_text(encoding="utf-8") + baseline.append
    if attack.payload:
        body = textwrap.indent(textwrap.dedent(attack.payload).strip("\n"), "    ")
        text += f"\n\ndef _attack(name, *args):  # the attack\n{body}\n"
    if attack.at_import:
        text += "\n\n" + textwrap.dedent(attack.at_import).strip("\n") + "\n"
    target.write_text(text, encoding="utf-8")
    for rel, content in attack.files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content.lstrip("\n"), encoding="utf-8")
    for key, value in (placeholders or {}).items():
        for path in out.rglob("*"):
            if path.is_file() and key in (content := path.read_text(encoding="utf-8")):
                path.write_text(content.replace(key, value), encoding="utf-8")
    for rel in attack.fifos:
        (out / rel).unlink(missing_ok=True)
        os.mkfifo(out / rel)
    open_to_worker(out)  # the worker's uid reads the submission as staged
    if attack.zip_entries:
        return _zipped(out, attack.zip_entries)
    return out


def _zipped(folder: Path, extra_entries: int) -> Path:
    """``folder`` as ``folder.zip``: its files, then ``extra_entries`` empty members."""
    archive = folder.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
        for i in range(extra_entries):
            zf.writestr(f"padding/{i}", b"")
    archive.chmod(0o644)
    return archive


if __name__ == "__main__":  # pragma: no cover - manual use
    dest = Path(sys.argv[1])
    wanted = set(sys.argv[2:])
    bases, all_attacks = load()
    for base in bases.values():
        if not wanted or f"baseline-{base.name}" in wanted:
            build(base, None, dest / f"baseline-{base.name}")
    for att in all_attacks:
        if not wanted or att.name in wanted:
            build(bases[att.baseline], att, dest / att.name)
    print(f"written to {dest}")
