"""Hostile submissions, graded for real: none of them scores above its honest baseline.

Every attack in ``attacks/attacks.toml`` is an honest baseline (modules 1 and 2: every
backward wrong; module 0: the four list helpers wrong) plus the attack: forging
results.json, planting pytest plugins, rigged numbers, bombs, reading the hidden tests,
opening sockets, leaving daemons, killing the grader. The attacks that need no module's
internals also run against module 2, as ``module2-<name>``. Each is graded by the real
CLI (``grading_jobs.grade_all``), in the sandbox and, for the attacks marked ``docker``, in
a container. Afterwards we check what a TA cares about:

- the score is not above the baseline's, graded the same way in the same run;
- the report is a valid results.json, written by the grader and not by the attack;
- nothing planted ran in the trusted process, no connection got out, no secret leaked;
- no process of the worker outlives the grade, nothing is left in /tmp, and the grade
  finished within the assignment's budget; memory and processes stayed bounded.

Attacks report what they managed in their own error message ("ATTACK-REPORT ..."), which
reaches results.json as the failure output of the test that called them: that is how an
attack that *did* read a file or open a socket would smuggle the result out, and how these
tests see it.

Three arenas: ``sandbox`` (bubblewrap builds the worker's view), ``fallback`` (the same with
``GRADER_NO_BWRAP=1`` in the grading processes' environment: the view is built from
namespaces, as on a machine without bubblewrap) and ``docker``.

Sandbox grades use ``--max-examples 10``: an attack runs on the first call of a wrong
function, so the full budget adds time and no coverage. ``grader grade --mode docker`` has
no such option and runs the assignment's full budget.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from attacks import build, replay
from grading_jobs import Graded, Job, grade_all

from grader.course.assignment import load_assignment, repo_root
from grader.course.secret import course_secret, ensure_course_secret
from grader.evidence.demo import load_examples, materialize
from grader.grading.results import SCHEMA_PATH
from grader.grading.runner import grade_command
from grader.grading.submission import copy_reference_submission
from grader.isolation import UID_SLOTS, WORKER_UID, UidLease, open_to_worker
from grader.platforms.bundle import build_bundle

BASELINES, ATTACKS = build.load()
ASSIGNMENTS = {b.assignment: load_assignment(b.assignment) for b in BASELINES.values()}
BASELINE_OF = {a.name: a.baseline for a in ATTACKS}  # attack -> the baseline it builds on
SCHEMA = json.loads(SCHEMA_PATH.read_text())
FAST = ("--max-examples", "10", "--no-shrink")  # messages need no minimal examples here
WORKER_UIDS = range(WORKER_UID, WORKER_UID + UID_SLOTS)
FORGED = ("FAKE-RESULTS-MARKER", "FAKE-STDOUT-MARKER")

# Holes found by these tests and not fixed yet (see docs/security.md). Each entry makes one
# check of one (mode, attack) an expected failure, strict: it fails loudly once the hole is
# closed, and the entry must go.
HOLES: dict[tuple[str, str, str], str] = {}

pytestmark = pytest.mark.evidence  # the full evidence: make test-all


def hole(check: str, mode: str, name: str) -> list[pytest.MarkDecorator]:
    reason = HOLES.get((check, mode, name))
    return [pytest.mark.xfail(strict=True, reason=reason)] if reason else []


# --------------------------------------------------------------------------- the arena
@dataclass
class Arena:
    """Everything one mode's grading run left behind."""

    mode: str
    graded: dict[str, Graded]
    out: Path
    connections: list[Any]
    marker_dir: Path
    submissions: dict[str, Path]
    leftover_processes: list[str] = field(default_factory=list)
    leftover_files: list[str] = field(default_factory=list)
    replay_course: Path | None = None  # the course without its secret (mechanism 3)
    course_copies: list[Path] = field(default_factory=list)  # in the checkout (round 3, m4)

    def baseline(self, assignment: str) -> Graded:
        return self.graded[f"baseline-{assignment}"]

    def attack(self, name: str) -> Graded:
        return self.graded[name]


class Listener:
    """A TCP server on every interface; an attack that reaches it is recorded."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections: list[Any] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, address = self.sock.accept()
            except OSError:
                return
            self.connections.append(address)
            conn.close()

    def close(self) -> None:
        self.sock.close()


def _stage_gone(cmdline: list[str]) -> bool:
    """A worker (or a fork of it) whose staged submission was already deleted."""
    if "--root" not in cmdline[:-1]:
        return False
    return not Path(cmdline[cmdline.index("--root") + 1]).exists()


def leftover_processes() -> list[str]:
    """Processes an attack left behind: its marked daemon, or worker-uid processes (on this
    host, not in a container) whose grade is over. Other concurrent grades are not counted."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
            status = Path(f"/proc/{entry}/status").read_text()
            cgroup = Path(f"/proc/{entry}/cgroup").read_text()
        except OSError:
            continue
        cmdline = raw.decode(errors="replace").split("\0")
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        uid = int(fields.get("Uid", "-1").split()[0])
        zombie = fields.get("State", "").strip().startswith("Z")
        text = f"pid {entry} uid {uid}: {' '.join(cmdline)[:200]}"
        if "ATTACK-LEFTOVER" in raw.decode(errors="replace") and not zombie:
            found.append(text)
        elif uid in WORKER_UIDS and not zombie and "docker" not in cgroup:
            if _stage_gone(cmdline):
                found.append(text)
    return found


def leftover_files(remove: bool = False) -> list[str]:
    """Files the disk and /dev/shm fillers left in the host's /tmp, /var/tmp and /dev/shm;
    with ``remove``, deleted once listed (a gigabyte in /dev/shm would cost the machine's
    other users their memory)."""
    found = []
    for place in ("/tmp", "/var/tmp", "/dev/shm"):
        try:
            names = os.listdir(place)
        except OSError:
            continue
        found += [f"{place}/{n}" for n in names if n.startswith("attack-fill-")]
    if remove:
        for path in found:
            with contextlib.suppress(OSError):
                os.unlink(path)
    return found


def course_copies(checkout: Path) -> list[Path]:
    """What a TA's checkout holds besides the course itself, made here when missing so that
    m4_read_course_copies has something to find: the Gradescope zip under dist/ (``make
    gradescope``: the course secret, the hidden tests and the reference inside) and ``make
    demo``'s copy of the reference under out/."""
    a = ASSIGNMENTS["module1"]
    bundle = checkout / "dist" / f"{a.name}-autograder.zip"
    if not bundle.is_file():
        build_bundle(a, bundle)
    reference = checkout / "out" / "demo" / "submissions" / a.name / "reference"
    if not (reference / "minitorch").is_dir():
        examples = load_examples(checkout / "examples" / "submissions.toml")
        example = next(e for e in examples if e.assignment == a.name and e.kind == "reference")
        materialize(example, a, reference)
    return [bundle, *sorted(p for p in reference.rglob("*") if p.is_file())]


@contextlib.contextmanager
def readable_by_everyone(checkout: Path, paths: list[Path]) -> Iterator[None]:
    """``paths`` and the folders from ``checkout`` down to them open to every user while the
    arena grades; their modes are put back afterwards. Copies made before the grader wrote
    them private (or copied by hand) are world-readable: only the worker's view of the
    filesystem may stop it reading them, and that is what the arena shows."""
    touched = {checkout}
    for path in paths:
        touched |= {p for p in path.parents if p.is_relative_to(checkout)} | {path}
    modes = {p: p.stat().st_mode & 0o7777 for p in touched}
    try:
        for path, mode in modes.items():
            path.chmod(mode | (0o005 if path.is_dir() else 0o004))
        yield
    finally:
        for path, mode in modes.items():
            with contextlib.suppress(OSError):
                path.chmod(mode)


def first_free_uid() -> int:
    """A free worker uid in the upper half of the range, for grades that must share one uid
    one after the other: grades elsewhere on the machine lease from the bottom, so they are
    unlikely to take it in between (the fill test checks the uids it saw)."""
    lease = UidLease(WORKER_UID + UID_SLOTS // 2, UID_SLOTS // 2)
    try:
        return lease.uid
    finally:
        lease.release()


def run_arena(mode: str, base: Path, names: list[str], baselines: bool = True) -> Arena:
    """Grade ``names`` (and their baselines) in ``mode``: sandbox, fallback or docker."""
    listener = Listener()
    marker_dir = Path(tempfile.mkdtemp(prefix="attack-markers-"))
    marker_dir.chmod(0o777)
    placeholders = {"@PORT@": str(listener.port), "@MARKER_DIR@": str(marker_dir)}
    cli_mode = "sandbox" if mode == "fallback" else mode
    extra = FAST if cli_mode == "sandbox" else ()
    env = {**os.environ, "GRADER_NO_BWRAP": "1"} if mode == "fallback" else dict(os.environ)
    # Grading draws its examples with the course secret: make sure this checkout has one (a
    # fresh clone gets it from the first bundle built, in whatever order the tests run).
    for assignment in ASSIGNMENTS.values():
        ensure_course_secret(assignment)
    replay_course = None
    if any(REPLAY in a.payload + a.at_import for a in ATTACKS if a.name in names):
        replay_course = replay.course_without_secret(base / "course-without-secret")
        placeholders[REPLAY] = replay.record_table(
            replay_course, replay_course / "reference", base, FAST
        )
    submissions: dict[str, Path] = {}
    jobs = []
    for key, baseline in BASELINES.items():
        path = build.build(baseline, None, base / f"baseline-{key}")
        submissions[f"baseline-{key}"] = path
    if any(REPLAY_OTHERS in a.payload + a.at_import for a in ATTACKS if a.name in names):
        # What an earlier submission of this course was asked (mechanism 3, round 3): the
        # backward calls of a classmate's correct grade, with the course secret.
        work = base / "replay-other-submissions"
        mate = copy_reference_submission(ASSIGNMENTS["module1"], work / "classmate")
        submissions[CLASSMATE] = mate
        placeholders[REPLAY_OTHERS] = replay.record_table(repo_root(), mate, work, FAST)
    for key, baseline in BASELINES.items():
        path = submissions[f"baseline-{key}"]
        if baselines and any(a.baseline == key for a in ATTACKS if a.name in names):
            jobs.append(Job(f"baseline-{key}", path, baseline.assignment, cli_mode, extra))
    after_fill: list[Job] = []
    for attack in ATTACKS:
        if attack.name in names:
            path = build.build(BASELINES[attack.baseline], attack, base / attack.name, placeholders)
            submissions[attack.name] = path
            job = Job(attack.name, path, attack.assignment, cli_mode, extra)
            if attack.name == FILL and cli_mode == "sandbox":
                # Then the reference twice on the uid the filler had, one grade at a time.
                ref = copy_reference_submission(ASSIGNMENTS["module1"], base / "after-fill")
                open_to_worker(ref)
                after_fill = [job, *(Job(n, ref, "module1", cli_mode, extra) for n in AFTER_FILL)]
                continue
            jobs.append(job)
            if attack.name == BURNER and cli_mode == "sandbox":
                # Graded next to the burner (two grades at a time, in this order).
                ref = copy_reference_submission(ASSIGNMENTS["module1"], base / NEIGHBOUR)
                open_to_worker(ref)
                jobs.append(Job(NEIGHBOUR, ref, "module1", cli_mode, extra))
    copies = course_copies(repo_root()) if cli_mode == "sandbox" and COPIES in names else []
    try:
        with readable_by_everyone(repo_root(), copies):
            graded = grade_all(jobs, base / "results", env=env)
            if after_fill:
                pinned = {**env, "GRADER_WORKER_UID": str(first_free_uid())}
                graded |= grade_all(
                    after_fill, base / "results", workers=1, env=pinned, watch=WORKER_UIDS
                )
    finally:
        listener.close()
    return Arena(
        mode=mode,
        graded=graded,
        out=base / "results",
        connections=list(listener.connections),
        marker_dir=marker_dir,
        submissions=submissions,
        leftover_processes=leftover_processes(),
        leftover_files=leftover_files(remove=True),
        replay_course=replay_course,
        course_copies=copies,
    )


MODES = [
    "sandbox",
    "fallback",
    pytest.param("docker", marks=[pytest.mark.docker, pytest.mark.slow]),
]
SANDBOX_ATTACKS = [a.name for a in ATTACKS]
DOCKER_ATTACKS = [a.name for a in ATTACKS if a.docker]
COPIES = "m4_read_course_copies"
FILL = "m5_fill_host_shm"
AFTER_FILL = ("reference-after-the-fill-1", "reference-after-the-fill-2")
#: Without bubblewrap (GRADER_NO_BWRAP=1): the attacks on what the view hides and bounds, a
#: few of the others, and the baseline they are judged against (CPU is scarce).
FALLBACK_ATTACKS = [
    COPIES,
    FILL,
    "read_hidden_tests_and_reference",
    "m4_read_other_stages",
    "fill_the_disk",
    "memory_bomb",
    "network_socket",
    "background_process",
    # round 3: every mechanism in every mode
    "m2_hidden_calls_in_an_import_error",
    "m2_slow_only_when_deep",
    "m3_replay_other_submissions",
    "m6_die_while_operators_is_checked",
    "m8_integer_of_400_digits",
    "m1_edit_probe_forward_values",
    "m7_read_grader_code_from_frames",
]
ARENA_ATTACKS = {"sandbox": SANDBOX_ATTACKS, "fallback": FALLBACK_ATTACKS, "docker": DOCKER_ATTACKS}
#: In docker mode these run inside combined submissions (a container grade costs ~50 s).
COMBINED_IN = {part: a.name for a in ATTACKS if a.docker for part in a.combine}
BURNER = "m8_cpu_burner"
REPLAY = "@REPLAY_TABLE@"
REPLAY_OTHERS = "@REPLAY_OTHER_SUBMISSIONS@"
CLASSMATE = "classmate-reference"
NEIGHBOUR = "reference-next-to-the-burner"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Arena:
    return run_arena("sandbox", tmp_path_factory.mktemp("attacks-sandbox"), SANDBOX_ATTACKS)


@pytest.fixture(scope="module")
def fallback(tmp_path_factory: pytest.TempPathFactory) -> Arena:
    return run_arena("fallback", tmp_path_factory.mktemp("attacks-fallback"), FALLBACK_ATTACKS)


@pytest.fixture(scope="module")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Arena:
    from docker_env import base_image, docker_client

    from grader.platforms.images import ensure_image

    client = docker_client()
    with pytest.MonkeyPatch.context() as mp:
        # The CLI builds its image from $GRADER_BASE_IMAGE; build it once here, not twice
        # in parallel from the two grading jobs.
        mp.setenv("GRADER_BASE_IMAGE", base_image(client))
        for name in {a.assignment for a in ATTACKS if a.docker}:
            ensure_image(ASSIGNMENTS[name], client=client)
        return run_arena("docker", tmp_path_factory.mktemp("attacks-docker"), DOCKER_ATTACKS)


def arena(request: pytest.FixtureRequest, mode: str) -> Arena:
    return request.getfixturevalue(mode)


def cases(check: str = "") -> list[Any]:
    """Every (mode, attack) pair, docker ones marked, known holes of ``check`` marked xfail."""
    params = []
    for mode, names in ARENA_ATTACKS.items():
        for name in names:
            marks = hole(check, mode, name)
            if mode == "docker":
                marks += [pytest.mark.docker, pytest.mark.slow]
            params.append(pytest.param(mode, name, marks=marks, id=f"{mode}-{name}"))
    return params


def kind_cases(kind: str, check: str = "") -> list[Any]:
    """The sandbox grade of attack ``kind``, its fallback grade (if that arena has it) and
    its docker grade (alone or combined)."""
    marks = hole(check, "sandbox", kind)
    params = [pytest.param("sandbox", kind, marks=marks, id=f"sandbox-{kind}")]
    for copy in (a.name for a in ATTACKS if a.name.endswith(f"-{kind}") and a.name != kind):
        params.append(pytest.param("sandbox", copy, marks=marks, id=f"sandbox-{copy}"))
    if kind in FALLBACK_ATTACKS:
        marks = hole(check, "fallback", kind)
        params.append(pytest.param("fallback", kind, marks=marks, id=f"fallback-{kind}"))
    docker_name = COMBINED_IN.get(kind, kind if kind in DOCKER_ATTACKS else None)
    if docker_name is not None:
        marks = [*hole(check, "docker", kind), pytest.mark.docker, pytest.mark.slow]
        params.append(pytest.param("docker", docker_name, marks=marks, id=f"docker-{kind}"))
    return params


def reports(g: Graded) -> str:
    """Every text a student could read in the report (where an attack smuggles data out)."""
    return g.outputs()


def attack_report(g: Graded, kind: str) -> dict[str, int]:
    """The numbers an attack put in its error messages ('ATTACK-REPORT memory a=1 b=2MB'),
    the largest of each over the whole report (attacks report progress on every call)."""
    numbers: dict[str, int] = {}
    for match in re.finditer(rf"ATTACK-REPORT {kind} ([^\n]*)", reports(g)):
        for part in match.group(1).split():
            key, _, value = part.partition("=")
            digits = re.match(r"\d+", value)
            if digits:
                numbers[key] = max(numbers.get(key, 0), int(digits.group()))
    return numbers


# --------------------------------------------------------------------------- every attack
@pytest.mark.parametrize(("mode", "name"), cases("score"))
def test_attack_gets_a_valid_report_and_no_more_than_its_baseline(
    request: pytest.FixtureRequest, mode: str, name: str
) -> None:
    a = arena(request, mode)
    g = a.attack(name)
    base = a.baseline(BASELINE_OF[name])
    assert g.exit_code == 0, f"exit {g.exit_code}\n{g.stderr[-2000:]}"
    jsonschema.validate(g.results, SCHEMA)
    assert "Traceback (most recent call last)" not in g.results["output"]
    tasks = {
        t["id"]: (t["score"], b["score"])
        for t, b in zip(
            g.results["extra_data"]["tasks"], base.results["extra_data"]["tasks"], strict=True
        )
    }
    assert g.results["score"] <= base.results["score"] + 1e-9, (
        f"{name} scored {g.results['score']} > baseline {base.results['score']}; "
        f"(attack, baseline) per task: {tasks}"
    )


@pytest.mark.parametrize(("mode", "name"), cases())
def test_attack_finishes_within_the_budget_and_leaves_no_forgery(
    request: pytest.FixtureRequest, mode: str, name: str
) -> None:
    a = arena(request, mode)
    g = a.attack(name)
    limits = ASSIGNMENTS[g.job.assignment].limits
    assert g.wall < limits.budget + 60, f"{name} took {g.wall:.0f} s"
    # The report on disk is the grader's, whatever the attack wrote and printed.
    on_disk = (a.out / f"{name}.json").read_text()
    for marker in FORGED:
        assert marker not in on_disk
    for path in [*a.out.iterdir(), repo_root() / "results.json", Path("results.json")]:
        if path.is_file():
            assert "FAKE-RESULTS-MARKER" not in path.read_text(errors="replace"), path


# --------------------------------------------------------------------------- per defence
@pytest.mark.parametrize(("mode", "name"), kind_cases("conftest_and_pytest11_plugin"))
def test_nothing_planted_in_the_submission_runs_in_the_grader(
    request: pytest.FixtureRequest, mode: str, name: str
) -> None:
    a = arena(request, mode)
    assert a.graded[name].exit_code == 0
    assert sorted(os.listdir(a.marker_dir)) == []


@pytest.mark.parametrize(("mode", "name"), kind_cases("network_socket"))
def test_no_connection_gets_out(request: pytest.FixtureRequest, mode: str, name: str) -> None:
    a = arena(request, mode)
    report = attack_report(a.attack(name), "network")
    assert report or "ATTACK-REPORT network" in reports(a.attack(name))  # it did try
    assert a.connections == []
    assert ":connected" not in reports(a.attack(name))


def _secret_lines(assignment: str, exclude: set[str]) -> set[str]:
    """Lines only the hidden tests and the reference solution hold (long enough to be
    telling, and not also in a public file or the attack's own submission)."""
    a = ASSIGNMENTS[assignment]
    secret: set[str] = set()
    for path in sorted((a.tests_dir / "hidden").glob("*.py")):
        secret |= {line.strip() for line in path.read_text().splitlines()}
    for rel in a.editable:
        in_solution = False
        for line in a.reference_file(rel).read_text().splitlines():
            if "BEGIN SOLUTION" in line:
                in_solution = True
            elif "END SOLUTION" in line:
                in_solution = False
            elif in_solution:
                secret.add(line.strip())
    return {s for s in secret if len(s) >= 24 and s not in exclude}


def _public_lines(arena_: Arena, name: str) -> set[str]:
    a = ASSIGNMENTS[arena_.attack(name).job.assignment]
    lines: set[str] = set()
    public = [p for p in a.tests_dir.glob("*.py") if not p.name.startswith("test_")]
    public += [a.tests_dir / f for f in a.public_tests]
    public += [a.reference_file(rel) for rel in (*a.provided, *a.solved)]
    public += [p for p in arena_.submissions[name].rglob("*") if p.is_file()]
    for path in public:
        if path.is_file():
            lines |= {line.strip() for line in path.read_text(errors="replace").splitlines()}
    return lines


@pytest.mark.parametrize(("mode", "name"), kind_cases("read_hidden_tests_and_reference"))
def test_hidden_tests_and_reference_stay_unreadable(
    request: pytest.FixtureRequest, mode: str, name: str
) -> None:
    a = arena(request, mode)
    g = a.attack(name)
    text = reports(g)
    assert "ATTACK-REPORT read" in text  # the attack ran and reported
    leaked = [
        line
        for line in text.splitlines()
        if line.strip().startswith("LEAKED ") and not line.strip().endswith("environ:")
    ]
    assert leaked == []
    # Whatever the attack printed: no line of a hidden test or of a reference solution body
    # that the grader itself does not also print for the honest baseline.
    exclude = _public_lines(a, name) | set(reports(a.baseline(g.job.assignment)).splitlines())
    secrets = _secret_lines(g.job.assignment, exclude)
    assert secrets, "no secret lines to look for: are the hidden tests missing?"
    found = [s for s in secrets if s in text]
    assert found == []


def _grader_only_lines(assignment: str) -> set[str]:
    """Lines of the grader-only blocks of the course's test files (support.py's)."""
    a = ASSIGNMENTS[assignment]
    lines: set[str] = set()
    for path in sorted(a.tests_dir.rglob("*.py")):
        inside = False
        for line in path.read_text().splitlines():
            if line.strip() == "# BEGIN GRADER-ONLY":
                inside = True
            elif line.strip() == "# END GRADER-ONLY":
                inside = False
            elif inside and len(line.strip()) >= 16:
                lines.add(line.strip())
    return lines


@pytest.mark.parametrize(
    ("mode", "name"), kind_cases("m7_read_grader_code_from_frames", "grader_code")
)
def test_no_grader_code_where_student_code_runs(
    request: pytest.FixtureRequest, mode: str, name: str
) -> None:
    """Student code that reads every grader frame on its stack, their globals and the
    worker's files finds no solution line of any task and no grader-only line: stand-ins for
    another task's code run on the trusted side, and the worker holds only the generic
    executor and the operations of the batch it runs."""
    a = arena(request, mode)
    g = a.attack(name)
    text = reports(g)
    assert "ATTACK-REPORT grader_code" in text  # it ran
    grader_only = _grader_only_lines(g.job.assignment)
    exclude = (_public_lines(a, name) - grader_only) | set(
        reports(a.baseline(BASELINE_OF[name])).splitlines()
    )
    secrets = _secret_lines(g.job.assignment, exclude) | (grader_only - exclude)
    found = sorted(s for s in secrets if s in text)
    assert "def _chain_rule" not in text
    assert found == []


def test_without_bubblewrap_a_readable_checkout_stays_hidden(tmp_path: Path) -> None:
    """No bubblewrap and a world-readable course elsewhere (GRADER_ROOT): nothing is read.

    On a TA's machine without bubblewrap the worker sees the view namespaces build: an
    allowlist (the system, its stage and its own files), so the reading attack finds
    nothing wherever the course lives, and the report says which view it was.
    """
    bases, attacks = build.load()
    attack = next(a for a in attacks if a.name == "read_hidden_tests_and_reference")
    sub = build.build(bases[attack.assignment], attack, tmp_path / "sub")
    # A world-readable copy of the course, wherever this checkout lives.
    course = Path(tempfile.mkdtemp(prefix="readable-course-"))
    try:
        for name in ("reference", "assignments", "tests"):
            shutil.copytree(repo_root() / name, course / name)
        open_to_worker(course)
        env = {**os.environ, "GRADER_NO_BWRAP": "1", "GRADER_ROOT": str(course)}
        out = tmp_path / "r.json"
        cmd = grade_command(sub, "module1", out, extra=("--max-examples", "10"))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        doc = json.loads(out.read_text())
    finally:
        shutil.rmtree(course, ignore_errors=True)
    defences = doc["extra_data"]["defences"]
    assert defences["view"] == "namespaces", defences
    assert defences["private_filesystem"] is True and defences["hidden_course_files"] is True
    text = "\n".join(t["output"] for t in doc["tests"]) + doc["output"]
    assert "ATTACK-REPORT read" in text  # the attack ran
    # Nothing at all: not the course graded, not the grader's checkout, not another copy.
    assert [line for line in text.splitlines() if "LEAKED " in line] == []


@pytest.mark.parametrize(("mode", "name"), kind_cases("background_process"))
def test_no_process_outlives_the_grade(
    request: pytest.FixtureRequest, mode: str, name: str
) -> None:
    """After every grade of the mode (daemons, fork and memory bombs, signals included)."""
    a = arena(request, mode)
    assert a.graded[name].exit_code == 0
    assert a.leftover_processes == []


@pytest.mark.parametrize(("mode", "name"), kind_cases("fork_bomb"))
def test_processes_are_bounded(request: pytest.FixtureRequest, mode: str, name: str) -> None:
    a = arena(request, mode)
    report = attack_report(a.attack(name), "fork_bomb")
    limit = ASSIGNMENTS["module1"].limits.processes
    if mode == "docker":
        from grader.platforms.containers import ContainerLimits

        limit = ContainerLimits.for_assignment(ASSIGNMENTS["module1"]).pids
    assert report, "the fork bomb did not report (it should, within its per-call deadline)"
    assert report["processes"] <= limit


@pytest.mark.parametrize(("mode", "name"), kind_cases("memory_bomb", "memory"))
def test_memory_is_bounded(request: pytest.FixtureRequest, mode: str, name: str) -> None:
    a = arena(request, mode)
    report = attack_report(a.attack(name), "memory")
    limit = ASSIGNMENTS["module1"].limits.memory_mb
    if mode == "docker":
        from grader.platforms.containers import ContainerLimits

        limit = ContainerLimits.for_assignment(ASSIGNMENTS["module1"]).memory_mb
    if not report:  # killed for memory before it could report: bounded, and said so
        graded = a.attack(name)
        if mode == "docker" and graded.results["extra_data"].get("container", {}).get("oom_killed"):
            return
        outputs = "\n".join(t["output"] for t in graded.results["tests"])
        assert "killed by SIGKILL: out of memory" in outputs
        return
    assert report["single_mb"] == 0
    assert report["parallel_mb"] <= limit


@pytest.mark.parametrize(("mode", "name"), kind_cases("fill_the_disk", "disk"))
def test_disk_filling_is_bounded_and_cleaned_up(
    request: pytest.FixtureRequest, mode: str, name: str
) -> None:
    a = arena(request, mode)
    assert a.leftover_files == []
    report = attack_report(a.attack(name), "disk")
    assert report, "the disk filler did not report"
    # RAM-backed places (tmpfs) count against the submission's memory.
    ram = sum(v for k, v in report.items() if k in ("/tmp", "/var/tmp", "/dev/shm"))
    assert ram <= ASSIGNMENTS["module1"].limits.memory_mb, report


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("sys_exit_at_import", "it called sys.exit(0)"),
        ("infinite_loop_at_import", "did not finish importing within 10 s"),
        ("infinite_loop_in_mul_backward", "timed out after 5 s in .backward"),
        ("fake_results_then_exit", "died"),
        ("rigged_numbers", "subclass of float"),
    ],
)
def test_student_is_told_what_happened(sandbox: Arena, name: str, needle: str) -> None:
    assert needle in reports(sandbox.attack(name))


# ------------------------------------------------- fail-closed mechanisms (issue 12)
@pytest.mark.parametrize(
    ("mode", "name", "needle"),
    [
        pytest.param(*case.values, needle, marks=case.marks, id=case.id)
        for kind, needle in (
            ("m5_reply_of_a_million_lists", "too large"),
            ("m6_unprintable_message", "[bold red]MARKUP-MARKER[/bold red]"),
            # docker mode copies regular files only into the container: the pipe is missing
            ("m7_named_pipe", "is not a regular file|autodiff.py was not found"),
            ("m9_zip_of_many_entries", "a submission zip may hold at most"),
            ("m8_integer_of_400_digits", "too large to compare"),
            ("m6_die_while_operators_is_checked", "operators.py could not be imported"),
        )
        for case in kind_cases(kind)
    ],
)
def test_fail_closed_mechanism_is_refused_with_a_message(
    request: pytest.FixtureRequest, mode: str, name: str, needle: str
) -> None:
    """Each mechanism ends in a message that says what happened (markup kept as text),
    besides the score check every attack gets."""
    g = arena(request, mode).attack(name)
    assert g.exit_code == 0, g.stderr[-2000:]
    assert any(alternative in reports(g) for alternative in needle.split("|")), needle


@pytest.mark.parametrize(("mode", "name"), kind_cases("m2_wrong_only_in_the_health_check"))
def test_gaming_the_health_check_costs_the_forward_points(
    request: pytest.FixtureRequest, mode: str, name: str
) -> None:
    """Wrong only while a one-off health check runs: the graph tests do not skip on its
    word, so task 1.2 loses points and task 1.4 gains none."""
    a = arena(request, mode)
    g, base = a.attack(name), a.baseline("module1")
    assert g.task("1.2")["score"] < base.task("1.2")["score"]
    assert g.task("1.4")["score"] <= base.task("1.4")["score"]


@pytest.mark.parametrize(("mode", "name"), kind_cases("m4_read_other_stages"))
def test_other_grades_stages_stay_unreadable(
    request: pytest.FixtureRequest, mode: str, name: str
) -> None:
    text = reports(arena(request, mode).attack(name))
    assert "ATTACK-REPORT stages" in text  # it ran
    assert [line for line in text.splitlines() if line.strip().startswith("LEAKED ")] == []


# ----------------------------------- fail closed, round 3: the view without bubblewrap
@pytest.mark.parametrize(("mode", "name"), kind_cases(COPIES))
def test_course_copies_in_the_checkout_stay_unreadable(
    request: pytest.FixtureRequest, mode: str, name: str
) -> None:
    """Mechanism 4 of round 3: the grader's checkout, found through /proc or by its usual
    place, holds copies of the course besides the course folders (the dist/ zip with the
    course secret, make demo's out/ copy of the reference, tests/support.py's grader-only
    tables, grader/tests/corpus/). The worker's view holds none of them."""
    a = arena(request, mode)
    if mode != "docker":  # the arena made them, world-readable while it graded
        assert any(p.suffix == ".zip" for p in a.course_copies), a.course_copies
        assert any("reference" in p.parts for p in a.course_copies), a.course_copies
    text = reports(a.attack(name))
    assert "ATTACK-REPORT course_copies" in text  # it ran
    assert [line for line in text.splitlines() if line.strip().startswith("LEAKED ")] == []
    secret = course_secret(ASSIGNMENTS["module1"])
    assert secret is not None and secret.decode()[:16] not in text


@pytest.mark.parametrize(("mode", "name"), kind_cases(FILL))
def test_a_filled_shm_costs_the_next_grades_on_its_uid_nothing(
    request: pytest.FixtureRequest, mode: str, name: str
) -> None:
    """Mechanism 5 of round 3: a submission leaves a gigabyte in /dev/shm, /tmp and /var/tmp.
    The worker's are private and sized and die with it, and every worker start gets an empty
    memory cgroup: the reference graded twice right after it on the same uid scores 100."""
    a = arena(request, mode)
    if mode != "docker":  # in a container, no uid outlives the grade
        uids = {n: a.graded[n].worker_uids for n in (name, *AFTER_FILL)}
        assert len(set(uids.values())) == 1 and all(uids.values()), (
            f"the three grades did not run on one worker uid (another grade took it?): {uids}"
        )
        for after in AFTER_FILL:
            g = a.graded[after]
            assert g.exit_code == 0, g.stderr[-2000:]
            jsonschema.validate(g.results, SCHEMA)
            assert g.results["extra_data"]["status"] == "ok", g.results["output"][:2000]
            assert g.results["score"] == 100.0, g.outputs()[:3000]
    assert a.leftover_files == []
    report = attack_report(a.attack(name), "fill")
    assert report, "the filler did not report"
    memory = ASSIGNMENTS["module1"].limits.memory_mb
    assert sum(report.get(p, 0) for p in ("/dev/shm", "/tmp", "/var/tmp")) <= memory, report


def test_a_correct_neighbour_of_a_cpu_burner_keeps_full_marks(sandbox: Arena) -> None:
    g = sandbox.graded[NEIGHBOUR]
    assert g.results["score"] == 100.0, g.outputs()[:2000]


@pytest.mark.parametrize("mode", MODES)
def test_visible_output_keeps_the_hidden_total_hidden(
    request: pytest.FixtureRequest, mode: str
) -> None:
    """Mechanism 11 on every grade of the arena: while tests are hidden, the first line of
    the output gives the visible tests' score only, never the total."""
    for name, g in sorted(arena(request, mode).graded.items()):
        tests = g.results["tests"]
        if not any(t.get("visibility") in ("hidden", "after_due_date") for t in tests):
            continue
        visible = [t for t in tests if t.get("visibility", "visible") == "visible"]
        got = sum(round(t["score"] * 100) for t in visible) / 100
        top = sum(round(t["max_score"] * 100) for t in visible) / 100
        first = g.results["output"].splitlines()[0]
        assert first.startswith(f"Score: {got:g} / {top:g} on the tests shown now"), (name, first)


def test_baselines_are_honest_and_partly_right(sandbox: Arena) -> None:
    """A baseline that scores 0 or 100 would make 'not above the baseline' meaningless."""
    for assignment in BASELINES:
        score = sandbox.baseline(assignment).results["score"]
        assert 0 < score < 100, (assignment, score)


#: The view of the filesystem the worker gets in each arena on this machine (root, Linux).
VIEWS = {"sandbox": "bubblewrap", "fallback": "namespaces", "docker": "none"}


@pytest.mark.parametrize("mode", MODES)
def test_defences_are_reported(request: pytest.FixtureRequest, mode: str) -> None:
    defences = arena(request, mode).baseline("module1").results["extra_data"]["defences"]
    print(f"{mode}: {json.dumps(defences)}")
    assert defences["separate_process"] and defences["rlimits"]
    assert defences["view"] == VIEWS[mode]
    assert defences["private_filesystem"] is (mode != "docker")
    if mode != "docker":
        assert defences["hidden_course_files"] and defences["no_network"]


def test_replayed_local_examples_earn_nothing_even_without_the_course_secret(
    sandbox: Arena, tmp_path: Path
) -> None:
    """Mechanism 3. The table of m3 answers every backward call a local run of the tests
    makes (derandomized, no secret). Graded against the same course without its secret it
    earns nothing either: the seed mixes in a digest of the submission's graded files, and
    the table cannot be built into the very files whose digest draws the examples (that a
    replay is worth points under one shared seed is shown by the test below)."""
    assert sandbox.replay_course is not None
    out = tmp_path / "without-secret.json"
    cmd = grade_command(
        sandbox.submissions["m3_replay_local_examples"], "module1", out, mode="sandbox", extra=FAST
    )
    env = {**os.environ, "GRADER_ROOT": str(sandbox.replay_course)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    without = json.loads(out.read_text())
    base = sandbox.baseline("module1").results
    with_secret = sandbox.attack("m3_replay_local_examples").results
    assert without["score"] <= base["score"], (without["score"], base["score"])
    assert with_secret["score"] <= base["score"], (with_secret["score"], base["score"])


def test_replayed_examples_of_another_submission_pay_only_with_one_seed_per_course(
    sandbox: Arena, tmp_path: Path
) -> None:
    """Mechanism 3, round 3. A table of the backward calls a classmate's (correct) grade made
    is worth points when every submission is graded with one seed (the old rule, forced
    here with --seed on both grades); with the seed drawn from the course secret and each
    submission's own files (the arena's grades), the attack's files draw other examples
    and the table earns nothing."""
    seed = ("--seed", "4242")
    table = replay.record_table(
        repo_root(),
        sandbox.submissions[CLASSMATE],
        tmp_path,
        ("--grading-seed", "4242", *FAST),
    )
    attack = next(a for a in ATTACKS if a.name == "m3_replay_other_submissions")
    sub = build.build(BASELINES["module1"], attack, tmp_path / "sub", {REPLAY_OTHERS: table})
    open_to_worker(sub)
    scores = {}
    for name, path in (("attack", sub), ("baseline", sandbox.submissions["baseline-module1"])):
        out = tmp_path / f"{name}.json"
        cmd = grade_command(path, "module1", out, mode="sandbox", extra=(*seed, *FAST))
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        scores[name] = json.loads(out.read_text())["score"]
    assert scores["attack"] > scores["baseline"] + 5, scores
    base = sandbox.baseline("module1").results["score"]
    with_own_seed = sandbox.attack("m3_replay_other_submissions").results["score"]
    assert with_own_seed <= base, (with_own_seed, base)


@pytest.mark.parametrize(
    ("mode", "name", "needle"),
    [
        pytest.param(*case.values, needle, marks=case.marks, id=case.id)
        for kind, needle in (
            ("m2_hidden_calls_in_an_import_error", "HIDDEN-CALLS"),
            ("m2_slow_only_when_deep", "timed out after"),
        )
        for case in kind_cases(kind)
    ],
)
def test_what_a_hidden_test_ran_into_stays_in_its_own_output(
    request: pytest.FixtureRequest, mode: str, name: str, needle: str
) -> None:
    """Mechanism 2, round 3: an error or a timeout met only by a test shown after the due
    date is told in that test's output; the visible part of the report says only that a
    problem occurred there (no arguments of hidden calls, no name of the hidden test)."""
    from grader.grading.runner import HIDDEN_PROBLEM

    g = arena(request, mode).attack(name)
    tests = g.results["tests"]
    visible = g.results["output"] + "".join(
        t["output"] for t in tests if t.get("visibility", "visible") == "visible"
    )
    hidden = "".join(t["output"] for t in tests if t.get("visibility", "visible") != "visible")
    assert needle not in visible
    assert needle in hidden, "what the hidden test ran into was lost, not routed to it"
    assert HIDDEN_PROBLEM in g.results["output"]


@pytest.mark.parametrize(("mode", "name"), kind_cases("m1_edit_probe_forward_values"))
def test_forward_values_edited_in_the_probe_do_not_skip_the_judgement(
    request: pytest.FixtureRequest, mode: str, name: str
) -> None:
    """Mechanism M1 of round 3: forward values edited from inside backward in the probe that
    built the graph. The worker holds no probe now (only the generic executor): the attack
    finds nothing to edit and is the zero-backward baseline, scoring no more than it
    (m10_edit_the_executors_objects is its twin against the executor)."""
    a = arena(request, mode)
    g, base = a.attack(name), a.baseline(BASELINE_OF[name])
    assert g.exit_code == 0, g.stderr[-2000:]
    assert g.task("1.4")["score"] <= base.task("1.4")["score"]
