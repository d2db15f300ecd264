"""``grader batch --scheduler``: a real Dask cluster on this machine, grading for real.

Must show: a scheduler and two worker processes started with the ``dask`` command line
(loopback only, ephemeral ports, one thread each) grade 20 submissions through
``--scheduler``; one worker is SIGKILLed (its whole process group) while it grades, its grade
is retried on the other worker, and the 20 results equal a local ``--mode sandbox`` batch of
the same submissions (scores.csv byte for byte, every test's status and score, the results'
keys, so either run resumes the other). A worker with another course secret is refused with
a message saying so. Without ``distributed`` the command names the extra to install.

`make test` runs the two-grade test only; the twenty grades with a killed worker are part
of the full evidence (`make test-all`). Nothing here is skipped: a cluster that cannot
start fails the test with its output.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from grader.batch import run_batch
from grader.course.assignment import Assignment, load_assignment, repo_root
from grader.errors import ClusterError
from grader.evidence.mutations import apply_mutations, load_corpus

BUDGET = 2  # hypothesis examples per test: smoke-sized real grades, alike in both runs
DASK = Path(sys.executable).parent / "dask"
START_TIMEOUT = 90.0


class DaskProcesses:
    """A scheduler and workers started with the ``dask`` command line, each in its own
    process group (so a test can SIGKILL a worker and its nanny together)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}
        self.scheduler_file = tmp / "scheduler.json"

    def _start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = self.tmp / f"{name}.log"
        self.logs[name] = log
        with open(log, "wb") as fh:
            self.procs[name] = subprocess.Popen(
                [str(DASK), *argv],
                stdin=subprocess.DEVNULL,
                stdout=fh,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )

    def output(self) -> str:
        return "\n".join(
            f"--- {name}:\n{log.read_text(errors='replace')[-3000:]}"
            for name, log in self.logs.items()
            if log.exists()
        )

    def scheduler(self) -> str:
        self._start(
            "scheduler",
            [
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(self.scheduler_file),
            ],
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.procs["scheduler"].poll() is not None:
                break
            try:
                address = json.loads(self.scheduler_file.read_text())["address"]
                assert address.startswith("tcp://127.0.0.1:"), address
                return address
            except (OSError, ValueError, KeyError):
                time.sleep(0.2)
        pytest.fail(f"the Dask scheduler did not start:\n{self.output()}", pytrace=False)

    def worker(self, name: str, env: dict[str, str] | None = None) -> None:
        self._start(
            name,
            [
                "worker",
                "--scheduler-file",
                str(self.scheduler_file),
                "--host",
                "127.0.0.1",
                "--nworkers",
                "1",
                "--nthreads",
                "1",
                "--no-dashboard",
                "--name",
                name,
            ],
            env,
        )

    def wait_for_workers(self, client, names: set[str]) -> dict[str, str]:
        """{name: address} once every named worker has joined (fails loudly otherwise)."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            workers = client.scheduler_info(n_workers=-1)["workers"]
            found = {w["name"]: addr for addr, w in workers.items()}
            if names <= set(found):
                return {n: found[n] for n in names}
            dead = [n for n in names if self.procs[n].poll() is not None]
            if dead:
                break
            time.sleep(0.2)
        pytest.fail(f"Dask workers {sorted(names)} did not join:\n{self.output()}", pytrace=False)

    def kill(self, name: str) -> None:
        os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait(timeout=30)

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=30)


@pytest.fixture
def dask_processes(tmp_path: Path):
    assert DASK.is_file(), f"{DASK} is missing: make installs the 'cluster' extra"
    processes = DaskProcesses(tmp_path)
    yield processes
    processes.close()


def _client(address: str):
    from distributed import Client

    return Client(address, timeout=30, set_as_default=False)


def _twenty(assignment: Assignment, dest: Path) -> Path:
    """The reference and 19 buggy entries of the corpus; every fourth one a zip."""
    corpus = load_corpus(Path(__file__).parent / "corpus" / "buggy.toml")
    entries = [e for e in corpus if "without_visited" not in e.name][::3][:19]
    assert len(entries) == 19, "grader/tests/corpus/buggy.toml shrank"
    subs = dest / "subs"
    made = [("reference", [])] + [(e.name, e.edits) for e in entries]
    for n, (name, edits) in enumerate(made):
        folder = apply_mutations(assignment.reference_dir, edits, dest / "made" / name)
        if n % 4 == 3:
            subs.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(subs / f"{name}.zip", "w") as zf:
                for path in sorted(folder.rglob("*.py")):
                    zf.write(path, path.relative_to(folder).as_posix())
        else:
            shutil.copytree(folder, subs / name)
    assert len(list(subs.iterdir())) == 20
    return subs


def _graded(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "results").glob("*.json"))}


def _verdicts(doc: dict) -> list[tuple[str, str, float]]:
    return [(t["name"], t["status"], t["score"]) for t in doc["tests"]]


def test_two_grades_on_a_real_cluster(dask_processes: DaskProcesses, tmp_path: Path) -> None:
    """What `make test` grades on Dask: a scheduler and one worker started with the ``dask``
    command line, the reference and one bug graded through ``run_batch(scheduler=...)``, the
    results validated on the client and keyed like a local batch's."""
    assignment = load_assignment("module1")
    subs = tmp_path / "subs"
    apply_mutations(assignment.reference_dir, [], subs / "reference")
    swapped = {
        "file": "scalar_functions.py",
        "find": "return operators.mul(b, d_output), operators.mul(a, d_output)",
        "replace": "return operators.mul(a, d_output), operators.mul(b, d_output)",
    }
    apply_mutations(assignment.reference_dir, [swapped], subs / "swapped")
    address = dask_processes.scheduler()
    dask_processes.worker("w1")
    client = _client(address)
    try:
        [worker] = dask_processes.wait_for_workers(client, {"w1"}).values()
    finally:
        client.close()
    out = tmp_path / "out"
    summary = run_batch(
        subs,
        assignment,
        out,
        mode="sandbox",
        max_examples=BUDGET,
        scheduler=address,
        progress=False,
    )
    assert summary.graded == 2 and not summary.failed, summary
    results = _graded(out)
    assert {r["extra_data"]["cluster"]["worker"] for r in results.values()} == {worker}
    assert results["reference"]["score"] == 100, results["reference"]["output"]
    tasks = {t["id"]: t for t in results["swapped"]["extra_data"]["tasks"]}
    assert tasks["1.4"]["score"] < tasks["1.4"]["max_score"]
    assert all(t["score"] == t["max_score"] for i, t in tasks.items() if i != "1.4"), tasks
    # Keyed like a local batch: a local rerun keeps both results.
    again = run_batch(subs, assignment, out, mode="sandbox", max_examples=BUDGET, progress=False)
    assert (again.graded, again.skipped) == (0, 2)


@pytest.mark.evidence
def test_twenty_grades_on_two_workers_survive_a_killed_worker(
    dask_processes: DaskProcesses, tmp_path: Path
) -> None:
    assignment = load_assignment("module1")
    subs = _twenty(assignment, tmp_path)

    # The local batch the cluster must agree with.
    local = tmp_path / "local"
    summary = run_batch(
        subs, assignment, local, mode="sandbox", jobs=2, max_examples=BUDGET, progress=False
    )
    assert summary.graded == 20 and not summary.failed

    address = dask_processes.scheduler()
    dask_processes.worker("w1")
    dask_processes.worker("w2")
    client = _client(address)
    try:
        workers = dask_processes.wait_for_workers(client, {"w1", "w2"})
        out = tmp_path / "cluster"
        batch = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "grader",
                "batch",
                str(subs),
                "-a",
                "module1",
                "--out",
                str(out),
                "--mode",
                "sandbox",
                "--max-examples",
                str(BUDGET),
                "--scheduler",
                address,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # Once a few results exist and w1 is grading, SIGKILL w1 (worker and nanny).
        lost: list[str] = []
        deadline = time.monotonic() + 240
        while not lost and time.monotonic() < deadline and batch.poll() is None:
            done = len(list((out / "results").glob("*.json"))) if out.exists() else 0
            running = client.processing(workers=[workers["w1"]]).get(workers["w1"], [])
            if done >= 3 and running:
                lost = [str(key) for key in running]
                dask_processes.kill("w1")
            time.sleep(0.1)
        output, _ = batch.communicate(timeout=300)
    finally:
        client.close()
    assert lost, f"w1 was never seen grading after 3 results:\n{output}"
    assert batch.returncode == 0, output
    assert "2 of 2 workers admitted (sandbox)" in output, output

    # The grade w1 lost was graded again, on w2; every later one ran on w2.
    lost_ids = {key.split("-grade-", 1)[1].rsplit("-", 1)[0] for key in lost}
    results = _graded(out)
    assert set(results) == set(_graded(local)) and len(results) == 20
    for ident in lost_ids:
        assert results[ident]["extra_data"]["cluster"]["worker"] == workers["w2"], ident
    by_worker = {r["extra_data"]["cluster"]["worker"] for r in results.values()}
    assert by_worker == {workers["w1"], workers["w2"]}, by_worker

    # The same grades as the local batch: scores.csv, each test's verdict, the keys.
    assert (out / "scores.csv").read_text() == (local / "scores.csv").read_text()
    locals_ = _graded(local)
    for ident, doc in results.items():
        assert _verdicts(doc) == _verdicts(locals_[ident]), ident
        assert doc["extra_data"]["batch"] == locals_[ident]["extra_data"]["batch"], ident
    rows = (out / "scores.csv").read_text().splitlines()
    assert any(",100.0,100.0,ok," in row or ",100,100,ok," in row for row in rows), rows[:3]
    assert len({r["score"] for r in results.values()}) > 3  # the mistakes cost points
    assert (out / "logs" / "reference.log").is_file()

    # Keys are shared: a local rerun on the cluster's output keeps every result.
    again = run_batch(subs, assignment, out, mode="sandbox", max_examples=BUDGET, progress=False)
    assert (again.graded, again.skipped) == (0, 20)


def test_a_worker_with_another_course_secret_is_refused(
    dask_processes: DaskProcesses, tmp_path: Path
) -> None:
    assignment = load_assignment("module1")
    course = tmp_path / "course"
    for name in ("assignments", "tests", "reference"):
        shutil.copytree(
            repo_root() / name,
            course / name,
            ignore=shutil.ignore_patterns("__pycache__", ".hypothesis"),
        )
    (course / "assignments" / "module1" / "course-secret").write_text("another-course-" * 4)
    address = dask_processes.scheduler()
    dask_processes.worker("stranger", env={"GRADER_ROOT": str(course)})
    client = _client(address)
    try:
        dask_processes.wait_for_workers(client, {"stranger"})
    finally:
        client.close()
    subs = tmp_path / "subs"
    apply_mutations(assignment.reference_dir, [], subs / "alice")
    with pytest.raises(ClusterError) as refused:
        run_batch(
            subs,
            assignment,
            tmp_path / "out",
            mode="sandbox",
            max_examples=BUDGET,
            scheduler=address,
            progress=False,
        )
    message = str(refused.value)
    assert f"no worker of {address} may grade module1" in message
    assert "different course secret" in message
    assert "course-secret" in message and "copy the client's course secret" in message
    # The worker's own log says why, for whoever started it.
    time.sleep(0.5)
    assert "this worker is refused for module1: different course secret" in (
        dask_processes.output()
    )
    assert not (tmp_path / "out" / "results" / "alice.json").exists()


def test_without_distributed_the_command_names_the_extra(tmp_path: Path) -> None:
    (tmp_path / "subs").mkdir()
    code = (
        "import sys; sys.modules['distributed'] = None\n"
        "from grader.cli import main\n"
        f"sys.exit(main(['batch', {str(tmp_path / 'subs')!r}, '-a', 'module1', '--out', "
        f"{str(tmp_path / 'out')!r}, '--scheduler', 'tcp://127.0.0.1:1']))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "pip install 'minitorch-grader[cluster]'" in proc.stderr
