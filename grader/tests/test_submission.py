"""Finding the editable files wherever students put them, and staging them safely."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from grader.course.assignment import load_assignment
from grader.errors import SubmissionError
from grader.grading.submission import locate, stage

MODULE1 = load_assignment("module1")
FILES = ("autodiff.py", "scalar.py", "scalar_functions.py")


def make(folder: Path, prefix: str, names: tuple[str, ...] = FILES) -> Path:
    for name in names:
        path = folder / prefix / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {prefix}{name}\n")
    return folder


@pytest.mark.parametrize("prefix", ["minitorch/", "", "Module-1-main/minitorch/", "Module-1-main/"])
def test_accepted_layouts(tmp_path: Path, prefix: str) -> None:
    found = locate(make(tmp_path, prefix), MODULE1)
    assert not found.missing
    assert found.files["minitorch/scalar.py"] == f"# {prefix}scalar.py\n".encode()


def test_preferred_location_wins_and_junk_is_ignored(tmp_path: Path) -> None:
    make(tmp_path, "minitorch/")
    make(tmp_path, "old/minitorch/")
    make(tmp_path, "__MACOSX/minitorch/")
    found = locate(tmp_path, MODULE1)
    assert found.origins["minitorch/autodiff.py"] == "minitorch/autodiff.py"


def test_missing_file_is_named(tmp_path: Path) -> None:
    found = locate(make(tmp_path, "minitorch/", ("autodiff.py",)), MODULE1)
    assert found.missing == ["minitorch/scalar.py", "minitorch/scalar_functions.py"]
    assert any("minitorch/scalar.py was not found" in n for n in found.notes)


def test_zip_with_nested_folder_and_hostile_members(tmp_path: Path) -> None:
    archive = tmp_path / "sub.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in FILES:
            zf.writestr(f"Module-1-main/minitorch/{name}", f"# {name}\n")
        zf.writestr("../../etc/scalar.py", "evil")  # path traversal: never used
        zf.writestr("/abs/autodiff.py", "evil")
        zf.writestr("Module-1-main/big.bin", b"\0" * 1000)  # not an editable file: not read
    found = locate(archive, MODULE1)
    assert not found.missing
    assert found.files["minitorch/autodiff.py"] == b"# autodiff.py\n"
    assert "found minitorch/autodiff.py at Module-1-main/minitorch/autodiff.py" in " ".join(
        found.notes
    )


def test_zip_bomb_member_is_not_unpacked(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("minitorch/scalar.py", b"#" * (50 * 1024 * 1024))  # 50 MiB of one byte
    found = locate(archive, MODULE1)
    assert "minitorch/scalar.py" not in found.files
    assert any("over the" in n for n in found.notes)


def test_unreadable_inputs_raise_submission_error(tmp_path: Path) -> None:
    bad = tmp_path / "sub.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(SubmissionError):
        locate(bad, MODULE1)
    with pytest.raises(SubmissionError, match="does not exist"):
        locate(tmp_path / "nope", MODULE1)


def test_stage_overlays_student_files_on_course_files(tmp_path: Path) -> None:
    sub = make(tmp_path / "sub", "minitorch/")
    (sub / "minitorch" / "operators.py").write_text("# student's operators: graded\n")
    found = locate(sub, MODULE1)
    root = stage(MODULE1, found, tmp_path / "stage")
    # Module 1 grades the student's own module-0 files when they bring them...
    ops = (root / "minitorch" / "operators.py").read_text()
    assert ops == "# student's operators: graded\n"
    # ...and the course's solved copy of the ones they do not, saying so.
    module = (root / "minitorch" / "module.py").read_text()
    assert "BEGIN SOLUTION" not in module and "class Module" in module
    assert "minitorch/module.py" not in found.missing
    assert any("graded with the course's copy" in n for n in found.notes), found.notes
    assert (root / "minitorch" / "scalar.py").read_text() == "# minitorch/scalar.py\n"
    assert (root / "minitorch" / "__init__.py").read_bytes() == (
        MODULE1.reference_dir / "minitorch" / "__init__.py"
    ).read_bytes()
    # private until a worker is given it (sandbox.share_with_worker)
    assert oct((root / "minitorch" / "scalar.py").stat().st_mode & 0o777) == "0o600"


def test_named_pipe_is_refused_with_a_note(tmp_path: Path) -> None:
    sub = make(tmp_path / "sub", "minitorch/")
    (sub / "minitorch" / "scalar.py").unlink()
    os.mkfifo(sub / "minitorch" / "scalar.py")
    found = locate(sub, MODULE1)  # would block forever if the pipe were read
    assert "minitorch/scalar.py" in found.missing
    assert any("not a regular file" in n for n in found.notes), found.notes


def test_zip_entry_count_is_read_from_the_end_record(tmp_path: Path) -> None:
    import zipfile

    from grader.grading.submission import MAX_ZIP_MEMBERS, zip_entry_count

    small = tmp_path / "small.zip"
    with zipfile.ZipFile(small, "w") as zf:
        for i in range(3):
            zf.writestr(f"f{i}.py", "")
    assert zip_entry_count(small) == 3
    big = tmp_path / "big.zip"
    with zipfile.ZipFile(big, "w") as zf:  # past 65535: counted by the ZIP64 end record
        for i in range(MAX_ZIP_MEMBERS + 50_000):
            zf.writestr(str(i), "")
    assert zip_entry_count(big) == MAX_ZIP_MEMBERS + 50_000
    with pytest.raises(SubmissionError, match="lists 70000 entries"):
        locate(big, MODULE1)
    (tmp_path / "fake.zip").write_bytes(b"no end record here")
    assert zip_entry_count(tmp_path / "fake.zip") is None
