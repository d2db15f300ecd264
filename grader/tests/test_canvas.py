"""Canvas outputs: the gradebook import CSV, and canvas-upload against a local stand-in server.

The stand-in implements only the three endpoints ``grader canvas-upload`` calls, shaped as
Canvas documents them (GET course, GET assignment, PUT a submission with
``submission[posted_grade]``), on 127.0.0.1, and records every request it received.
"""

from __future__ import annotations

import csv
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import pytest

from grader.course.assignment import load_assignment
from grader.errors import ConfigError
from grader.platforms.canvas import upload_grades
from grader.platforms.exports import ScoreRow, canvas_import, read_scores_csv, write_scores_csv

pytestmark = pytest.mark.filterwarnings("ignore:Canvas may respond unexpectedly")

GRADEBOOK = [
    ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Module 0 (122)",
     "Module 1 (123)", "Current Score"],
    ["    Points Possible", "", "", "", "", "100", "100", "(read only)"],
    ["Doe, Jane", "1001", "S1", "jane@uni.edu", "A", "90", "", ""],
    ["Roe, Rick", "1002", "S2", "rick@uni.edu", "A", "80", "55", ""],
    ["Poe, Ann", "1003", "", "ann@uni.edu", "B", "70", "", ""],
    ["Group, Gil", "1004", "S4", "gil@uni.edu", "B", "", "", ""],
    ["Nobody, Ned", "1005", "S5", "ned@uni.edu", "B", "", "12", ""],
    ["Student, Test", "1006", "", "", "", "", "", ""],
]  # fmt: skip


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return path


def _scores(tmp_path: Path) -> Path:
    a = load_assignment("module1")
    rows = [
        ScoreRow("submission_1", "Jane Doe", "S1", "jane@uni.edu", total=87.5, max_score=100),
        ScoreRow("submission_2", "Rick Roe", "s2 ", "", total=40, max_score=100),
        ScoreRow("submission_3", "Ann Poe", "", "ANN@uni.edu", total=100, max_score=100),
        ScoreRow("submission_4", "Gil+Ned", "S4; S5", "", total=66, max_score=100),
        ScoreRow("submission_5", "Zed", "S99", "", total=10, max_score=100),
        ScoreRow("1006", "Test", "", "", total=None, status="not-graded", error="engine died"),
    ]
    return write_scores_csv(rows, a, tmp_path / "scores.csv")


def test_scores_csv_round_trip(tmp_path: Path) -> None:
    path = _scores(tmp_path)
    header = path.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[:4] == ["id", "name", "sid", "email"]
    assert "task 1.1" in header and header[-4:] == ["total", "max_score", "status", "error"]
    rows = {r.id: r for r in read_scores_csv(path)}
    assert rows["submission_1"].total == 87.5
    assert rows["1006"].total is None and rows["1006"].status == "not-graded"


def test_canvas_export_fills_one_column_by_student_id(tmp_path: Path) -> None:
    gradebook = _write_csv(tmp_path / "gradebook.csv", GRADEBOOK)
    out = tmp_path / "import.csv"
    report = canvas_import(gradebook, _scores(tmp_path), "Module 1 (123)", out)
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Module 1 (123)"]
    got = {r[0]: r[-1] for r in rows[1:]}
    assert got["    Points Possible"] == "100"  # kept as exported
    assert got["Doe, Jane"] == "87.5"  # SIS User ID
    assert got["Roe, Rick"] == "40"  # case and spaces ignored; old 55 replaced
    assert got["Poe, Ann"] == "100"  # no SIS id: e-mail against SIS Login ID
    assert got["Group, Gil"] == "66" and got["Nobody, Ned"] == "66"  # a group fills both
    assert got["Student, Test"] == ""  # an error row changes nothing
    assert report.unmatched_scores == ["submission_5"]
    assert "Module 0 (122)" not in rows[0]  # other assignments are never touched


def _filled(path: Path) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {r[0]: r[-1] for r in csv.reader(fh)}


def test_canvas_export_refuses_a_points_mismatch_unless_told(tmp_path: Path) -> None:
    book = [row[:] for row in GRADEBOOK]
    book[1][6] = "10"
    gradebook = _write_csv(tmp_path / "gradebook.csv", book)
    out = tmp_path / "import.csv"
    with pytest.raises(ConfigError, match=r"worth 10 points but the grader scored out of 100"):
        canvas_import(gradebook, _scores(tmp_path), "Module 1 (123)", out)
    assert not out.exists()  # nothing half-right to import
    canvas_import(gradebook, _scores(tmp_path), "Module 1 (123)", out, scale=True)
    assert _filled(out)["Doe, Jane"] == "8.75"
    out.unlink()
    canvas_import(gradebook, _scores(tmp_path), "Module 1 (123)", out, points=10)
    assert _filled(out)["Doe, Jane"] == "8.75"
    with pytest.raises(ConfigError, match=r"--points 20, but the gradebook says"):
        canvas_import(gradebook, _scores(tmp_path), "Module 1 (123)", out, points=20)
    # No Points Possible row: --points says it, --scale has nothing to scale to.
    del book[1]
    bare = _write_csv(tmp_path / "bare.csv", book)
    canvas_import(bare, _scores(tmp_path), "Module 1 (123)", out, points=50)
    assert _filled(out)["Doe, Jane"] == "43.75"
    with pytest.raises(ConfigError, match="--points N instead"):
        canvas_import(bare, _scores(tmp_path), "Module 1 (123)", out, scale=True)


def test_canvas_export_fails_when_no_grade_matches(tmp_path: Path, capsys) -> None:
    from grader.cli import main

    gradebook = _write_csv(tmp_path / "gradebook.csv", GRADEBOOK)
    a = load_assignment("module1")
    strangers = write_scores_csv(
        [ScoreRow("x1", "X", "S77", "x@else.edu", total=50, max_score=100)],
        a,
        tmp_path / "strangers.csv",
    )
    out = tmp_path / "import.csv"
    code = main(
        ["canvas-export", "--gradebook", str(gradebook), "--scores", str(strangers),
         "--column", "Module 1 (123)", "--out", str(out)]
    )  # fmt: skip
    assert code != 0 and not out.exists()
    assert "none of the 1 scores" in capsys.readouterr().err


def test_canvas_export_names_the_columns_when_the_column_is_wrong(tmp_path: Path) -> None:
    gradebook = _write_csv(tmp_path / "gradebook.csv", GRADEBOOK)
    with pytest.raises(ConfigError, match=r"Did you mean 'Module 1 \(123\)'"):
        canvas_import(gradebook, _scores(tmp_path), "Module 1", tmp_path / "x.csv")


# --------------------------------------------------------------------------- upload


class _Canvas(BaseHTTPRequestHandler):
    """Canvas REST stand-in: only what canvasapi calls for get_course/get_assignment/edit."""

    requests: list[tuple[str, str, dict]] = []
    refuse_users: set[str] = set()
    points: float = 100.0

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _reply(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") != "Bearer secret-token":
            self._reply(401, {"errors": [{"message": "Invalid access token."}]})
            return False
        return True

    def do_GET(self) -> None:
        path = urlparse(self.path).path
        self.requests.append(("GET", path, {}))
        if not self._authorized():
            return
        parts = path.strip("/").split("/")
        if parts[:3] == ["api", "v1", "courses"] and len(parts) == 4 and parts[3] == "7":
            return self._reply(200, {"id": 7, "name": "MiniTorch", "course_code": "MT"})
        if len(parts) == 6 and parts[3:] == ["7", "assignments", "123"]:
            return self._reply(
                200,
                {"id": 123, "course_id": 7, "name": "Module 1", "points_possible": self.points},
            )
        self._reply(404, {"errors": [{"message": "The specified resource does not exist."}]})

    def do_PUT(self) -> None:
        path = urlparse(self.path).path
        length = int(self.headers.get("Content-Length", 0))
        form = parse_qs(self.rfile.read(length).decode())
        self.requests.append(("PUT", path, form))
        if not self._authorized():
            return
        parts = path.strip("/").split("/")
        if parts[:6] == ["api", "v1", "courses", "7", "assignments", "123"] and len(parts) == 8:
            user = unquote(parts[7])
            if parts[6] != "submissions" or user in self.refuse_users:
                return self._reply(404, {"errors": [{"message": "user not found"}]})
            grade = form.get("submission[posted_grade]", [""])[0]
            return self._reply(
                200, {"id": 1, "user_id": 1, "assignment_id": 123, "grade": grade, "score": grade}
            )
        self._reply(404, {"errors": [{"message": "The specified resource does not exist."}]})


@pytest.fixture
def canvas_server():
    _Canvas.requests = []
    _Canvas.refuse_users = {"sis_user_id:S99"}
    _Canvas.points = 100.0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Canvas)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Canvas.requests
    finally:
        server.shutdown()
        server.server_close()


def test_canvas_upload_posts_each_grade(canvas_server, tmp_path: Path) -> None:
    url, seen = canvas_server
    rows = read_scores_csv(_scores(tmp_path))
    report = upload_grades(url, "secret-token", 7, 123, rows, match="sis_user_id")
    assert seen[0][:2] == ("GET", "/api/v1/courses/7")
    assert seen[1][:2] == ("GET", "/api/v1/courses/7/assignments/123")
    puts = {unquote(p.rsplit("/", 1)[1]): f["submission[posted_grade]"] for m, p, f in seen[2:]}
    assert puts == {
        "sis_user_id:S1": ["87.5"],
        "sis_user_id:s2": ["40"],
        "sis_user_id:S4": ["66"],
        "sis_user_id:S5": ["66"],
        "sis_user_id:S99": ["10"],
    }
    assert all(m == "PUT" for m, _, _ in seen[2:])
    assert [u for u, _ in report.failed] == ["sis_user_id:S99"]  # refused, others still posted
    skipped = dict(report.skipped)
    assert "submission_3" in skipped and "1006" in skipped  # no sid; no score


def test_canvas_upload_refuses_a_points_mismatch_unless_told(canvas_server, tmp_path) -> None:
    from grader.platforms.canvas import CanvasError  # noqa: F401 - the refusal is a ConfigError

    url, seen = canvas_server
    _Canvas.points = 10.0
    rows = read_scores_csv(_scores(tmp_path))
    with pytest.raises(ConfigError, match=r"worth 10 points but the grader scored out of 100"):
        upload_grades(url, "secret-token", 7, 123, rows)
    assert [m for m, _, _ in seen] == ["GET", "GET"]  # asked, posted nothing
    report = upload_grades(url, "secret-token", 7, 123, rows, scale=True)
    puts = {unquote(p.rsplit("/", 1)[1]): f["submission[posted_grade]"] for m, p, f in seen[4:]}
    assert puts["sis_user_id:S1"] == ["8.75"] and report.factor == 0.1


def test_canvas_upload_dry_run_contacts_nobody(tmp_path: Path, capsys, monkeypatch) -> None:
    """No server, no token, no URL: the dry run prints every grade it would post."""
    from grader.cli import main

    monkeypatch.delenv("CANVAS_API_TOKEN", raising=False)
    monkeypatch.delenv("CANVAS_API_URL", raising=False)
    scores = _scores(tmp_path)
    rows = read_scores_csv(scores)
    report = upload_grades("", "", 7, 123, rows, match="sis_login_id", dry_run=True)
    assert ("sis_login_id:jane@uni.edu", "87.5") in report.posted
    code = main(
        ["canvas-upload", "--scores", str(scores), "--course", "7", "--assignment-id", "123",
         "--dry-run", "--points", "10"]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "Canvas not contacted" in printed and "would post 5 grades" in printed
    assert "8.75  sis_user_id:S1  (submission_1)" in printed
    with pytest.raises(ConfigError, match="--points N instead"):
        upload_grades("", "", 7, 123, rows, dry_run=True, scale=True)


def test_canvas_upload_fails_when_nothing_can_be_posted(tmp_path: Path) -> None:
    rows = [ScoreRow("a", total=None, status="not-graded"), ScoreRow("b", total=5, max_score=10)]
    with pytest.raises(ConfigError, match="nothing to post"):
        upload_grades("", "", 7, 123, rows, match="sis_user_id", dry_run=True)


def test_canvas_upload_explains_a_bad_token(canvas_server, tmp_path: Path) -> None:
    from grader.platforms.canvas import CanvasError

    url, _ = canvas_server
    with pytest.raises(CanvasError, match="token"):
        upload_grades(url, "wrong", 7, 123, read_scores_csv(_scores(tmp_path)))
