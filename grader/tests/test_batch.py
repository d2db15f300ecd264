"""Batch regrades: discovery, Gradescope export metadata, resume, and faults that must not
stop a batch (hang, out of memory, crash, garbage output).

The container tests use a stand-in image (docker_env.standin_image) whose run_autograder
does what each submission's behaviour.txt says, so 30 containers take seconds; the real
grader in a container is tested in test_docker.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from grader.batch import discover, parse_gradescope_metadata, run_batch
from grader.course.assignment import load_assignment
from grader.platforms.exports import read_scores_csv

METADATA = """\
---
submission_1001:
  :submitters:
  - :name: Jane Doe
    :sid: '12345'
    :email: jane@uni.edu
  :created_at: 2026-01-01 10:00:00.000000000 -08:00
  :score: 80.0
  :status: processed
  :results:
    :score: 80.0
submission_1002:
  :submitters:
  - :name: "O'Hara, Kim"
    :sid: 'A''7'
    :email: kim@uni.edu
  - :name: Lee Park
    :sid: "99"
    :email: lee@uni.edu
  :created_at: 2026-01-01 11:00:00.000000000 -08:00
"""


def test_gradescope_metadata_is_read_without_yaml() -> None:
    meta = parse_gradescope_metadata(METADATA)
    assert meta["submission_1001"] == {"name": "Jane Doe", "sid": "12345", "email": "jane@uni.edu"}
    assert meta["submission_1002"]["sid"] == "A'7; 99"  # a group: both members
    assert meta["submission_1002"]["name"] == "O'Hara, Kim; Lee Park"


def test_discover_folders_zips_and_gradescope_export(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    (plain / "alice").mkdir(parents=True)
    with zipfile.ZipFile(plain / "bob smith.zip", "w") as zf:
        zf.writestr("minitorch/scalar.py", "x = 1\n")
    (plain / "carl.tar.gz").write_bytes(b"not graded, but reported: bad-submission")
    (plain / "jane.doe.zip").write_bytes(b"")
    (plain / "notes.txt").write_text("ignored")
    (plain / "lone.py").write_text("ignored: graded with its siblings, i.e. the others' folders")
    (plain / ".DS_Store").write_text("ignored")
    items = discover(plain)
    assert [(i.id, i.path.name) for i in items] == [
        ("alice", "alice"),
        ("bob_smith", "bob smith.zip"),
        ("carl", "carl.tar.gz"),
        ("jane.doe", "jane.doe.zip"),
    ]

    export = tmp_path / "export"
    for sub in ("submission_1001", "submission_1002"):
        (export / sub).mkdir(parents=True)
    (export / "submission_metadata.yml").write_text(METADATA)
    items = discover(export)
    assert [i.id for i in items] == ["submission_1001", "submission_1002"]
    assert items[0].meta["sid"] == "12345"


# --------------------------------------------------------------------------- containers


@pytest.fixture(scope="module")
def standin():
    from docker_env import base_image, docker_client, standin_image

    client = docker_client()
    return standin_image(client, base_image(client))


@pytest.mark.docker
def test_faults_become_reports_and_the_batch_goes_on(standin, tmp_path: Path) -> None:
    from docker_env import make_submission

    a = load_assignment("module1")
    subs = tmp_path / "subs"
    for i in range(26):
        make_submission(subs / f"s{i:02d}", f"score {i}")
    make_submission(subs / "hangs", "hang")
    make_submission(subs / "memory", "oom")
    make_submission(subs / "crashes", "crash")
    make_submission(subs / "garbage", "garbage")
    assert len(discover(subs)) == 30
    out = tmp_path / "out"
    start = time.monotonic()
    summary = run_batch(subs, a, out, jobs=2, mode="docker", image=standin, timeout=6, memory_mb=96)
    elapsed = time.monotonic() - start
    assert summary.graded == 30 and not summary.failed
    rows = {r.id: r for r in read_scores_csv(out / "scores.csv")}
    assert len(rows) == 30
    assert rows["s07"].total == 7 and rows["s07"].status == "ok" and rows["s07"].tasks["1.1"] == 7
    assert rows["hangs"].status == "timeout" and rows["hangs"].total == 0
    assert "timed out after 6 s" in rows["hangs"].error
    assert rows["memory"].status == "crashed" and "out of memory" in rows["memory"].error
    assert rows["crashes"].status == "crashed" and rows["crashes"].total == 0
    assert "wrote no results.json" in rows["crashes"].error
    assert rows["garbage"].status == "crashed" and "not valid JSON" in rows["garbage"].error
    assert rows["s07"].error == ""
    for path in (out / "results").glob("*.json"):
        json.loads(path.read_text())  # every file complete
    assert elapsed < 90, f"30 stand-in containers took {elapsed:.0f} s"


@pytest.mark.docker
def test_submission_goes_in_as_files_only(standin, tmp_path: Path) -> None:
    """Zips are unpacked; symlinks and paths escaping the folder never reach the container."""
    from grader.platforms.containers import grade_in_container

    a = load_assignment("module1")
    zpath = tmp_path / "sub.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("behaviour.txt", "score 42\n")
        zf.writestr("minitorch/scalar.py", "x = 1\n")
        zf.writestr("../escape.py", "evil\n")
        zf.writestr("__MACOSX/._scalar.py", "junk\n")
    doc = grade_in_container(zpath, a, tmp_path / "r.json", image=standin, timeout=30)
    assert doc["score"] == 42
    assert doc["extra_data"]["files"] == ["behaviour.txt", "minitorch/scalar.py"]
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "behaviour.txt").write_text("score 5\n")
    (folder / "link.py").symlink_to("/etc/passwd")
    doc = grade_in_container(folder, a, None, image=standin, timeout=30)
    assert doc["extra_data"]["files"] == ["behaviour.txt"]


@pytest.mark.docker
def test_killed_batch_resumes_with_the_rest(standin, tmp_path: Path) -> None:
    from docker_env import make_submission

    a = load_assignment("module1")
    subs = tmp_path / "subs"
    n = 10
    for i in range(n):
        make_submission(subs / f"s{i:02d}", f"sleep 0.5 {i}")
    out = tmp_path / "out"
    script = (
        "import sys; from pathlib import Path; from grader.batch import run_batch; "
        "from grader.course.assignment import load_assignment; "
        f"run_batch(Path({str(subs)!r}), load_assignment('module1'), Path({str(out)!r}), "
        f"jobs=1, image={standin!r}, timeout=30, progress=False)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    results = out / "results"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(results.glob("*.json"))) < 4:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # as hard as a reboot: no clean-up runs
    proc.wait()
    first = {p.name: p.stat().st_mtime_ns for p in results.glob("*.json")}
    assert 4 <= len(first) < n, first
    summary = run_batch(subs, a, out, jobs=2, image=standin, timeout=30, progress=False)
    assert summary.skipped == len(first)  # their keys still match: kept
    assert dict(summary.reasons) == {"not graded before": n - len(first)}
    assert summary.graded == n - len(first)
    assert {
        p.name: p.stat().st_mtime_ns for p in results.glob("*.json") if p.name in first
    } == first
    rows = read_scores_csv(out / "scores.csv")
    assert sorted(r.total for r in rows) == list(range(n))
    assert not [p for p in results.iterdir() if p.name.startswith(".")]  # no temp files left


@pytest.mark.docker
def test_ctrl_c_saves_finished_results_only(standin, tmp_path: Path) -> None:
    from docker_env import make_submission

    subs = tmp_path / "subs"
    for i in range(6):
        make_submission(subs / f"s{i:02d}", f"sleep 1.5 {i + 1}")
    out = tmp_path / "out"
    # Python keeps SIGINT ignored when it starts with it ignored (a background job of a
    # non-interactive shell does): put back the handler a TA's terminal would give.
    script = (
        "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from pathlib import Path; from grader.batch import run_batch; "
        "from grader.course.assignment import load_assignment; "
        f"run_batch(Path({str(subs)!r}), load_assignment('module1'), Path({str(out)!r}), "
        f"jobs=2, image={standin!r}, timeout=30, progress=False)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    results = out / "results"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(results.glob("*.json"))) < 2:
        time.sleep(0.1)
    time.sleep(0.5)  # let the next two containers start
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) != 0
    saved = [json.loads(p.read_text()) for p in results.glob("*.json")]
    assert 2 <= len(saved) < 6
    assert all(d["extra_data"]["container"]["status"] == "ok" and d["score"] > 0 for d in saved)
    import socket

    import docker

    owner = f"org.minitorch.grader.owner={socket.gethostname()}:{proc.pid}"
    assert docker.from_env().containers.list(filters={"label": owner}) == []  # none running
