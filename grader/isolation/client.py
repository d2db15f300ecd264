"""Start the worker and talk to it: the trusted side of the worker protocol.

``StudentClient.run(message, label)`` (a batch of handle operations, sent by
``handles.Session``) and the import checks are all the tests use. Behind it a connection
runs the worker either in this process (students' ``make test``: fast, real tracebacks) or
in a separate, locked-down process (grading). Deadlines are enforced from this side: a call
that runs too long kills the worker, which restarts for the next call.

The sandboxed worker, when the grader runs as root:
- runs as an unprivileged uid that nothing else uses, so every process it leaves behind can
  be found and killed at the end;
- has rlimits on address space, CPU seconds, processes, file size and open files, no core;
- lives in its own session and, where the kernel allows, its own network namespace;
- starts in an empty memory cgroup of its own (a new one for every start of the worker);
- sees an allowlist view of the filesystem: the system's /usr, the staged submission, the
  worker's own files and the runtime packages, read-only, and private sized /tmp, /var/tmp
  and /dev/shm. bubblewrap builds it where it can; without it, the kernel's namespaces build
  the same one (``NamespaceView``); where neither works (inside a container) there is none.
``defences()`` says which of these were active, for the report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from grader.isolation import absent, protocol, worker
from grader.isolation.config import SandboxConfig, defences
from grader.isolation.protocol import (
    BadValue,
    BudgetExhausted,
    Call,
    ProbeTimeout,
    Reply,
    StudentError,
    WorkerCrashed,
)
from grader.isolation.transport import Deadline, Died, InProcess, Oversized, Subprocess

_MAX_RESTARTS = 40
_MAX_IMPORT_DEPTH = 32  # nested student imports the client keeps track of
_MAX_UNAVAILABLE = 16  # packages without the runtime the report names (one note each)
_GAVE_UP = "grading stopped running your code"
#: The wall clock a grade may take, as a multiple of its CPU budget (for code that sleeps).
_WALL_FACTOR = 3


# --------------------------------------------------------------------------- the client
@dataclass(frozen=True)
class Problem:
    """Something that stopped student code from running, for the report's first lines.

    ``kind`` is the submission-level status it leads to (``import-error``, ``timeout``,
    ``crashed``), or ``note`` for what the report tells without it being a failure (an
    import of a package the grading runtime lacks, bound to a placeholder); ``key`` names the
    cause (a file, a function, a package); ``message`` says what happened.
    ``hidden``: noticed only while tests shown after the due date ran, so the report's
    visible lines must not tell it (its own test's output does).
    """

    kind: str
    key: str
    message: str
    hidden: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "message": self.message, "hidden": self.hidden}


def _stands(fault: protocol.StudentFault) -> bool:
    """Whether ``fault`` fails every later call of its test alike, whatever the input."""
    if isinstance(fault, (ProbeTimeout, BudgetExhausted)):
        return True
    if isinstance(fault, StudentError):
        return fault.type_name == "ImportError"
    return isinstance(fault, WorkerCrashed) and fault.message.startswith(_GAVE_UP)


class StudentClient:
    """What the tests call. Owns one worker at a time and the rules for faults.

    - A call that hangs kills the worker; later calls of the same label fail at once with
      the same message (hypothesis would otherwise re-run a hanging call while shrinking).
    - A student module whose import hangs or kills the worker is blocked: every later
      import of it fails at once, so the tests that do not need it still run.
    - Once the submission's budget is spent (CPU time of its workers, or a generous wall
      clock), every call fails at once.
    """

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self._conn: InProcess | Subprocess = (
            InProcess(config) if config.mode == "inprocess" else Subprocess(config)
        )
        # The wall clock of the budget starts once the connection is set up: what the host's
        # one-off checks (bubblewrap, namespaces, an interpreter for the worker uid) cost on
        # a loaded machine is not the submission's time.
        self.started = time.monotonic()
        self._conn.on_note = self._on_note
        self._ids = 0
        self._importing: list[str] = []
        #: The operation of a batch the worker said has been running for a while.
        self._running: int | None = None
        self._blocked: dict[str, str] = {}
        self._hung: dict[tuple[str, str], str] = {}
        #: The test now running (set by the plugin). A call that hung fails at once when the
        #: same test calls it again (hypothesis would re-run it while shrinking), but another
        #: test still gets to run it: one hang must not cost every test that shares a label.
        self.scope = ""
        #: Whether the test now running is shown only after the due date (set by the
        #: plugin): what its calls run into stays in that test's own output.
        self.hidden_scope = False
        self.restarts = 0
        self.calls = 0
        #: Whether the last call failed in a way that no other input changes: a file that does
        #: not import, a hung call (repeats fail at once), the budget, too many restarts. The
        #: plugin skips shrinking then: every smaller example would fail the same way, so
        #: shrinking could only spend time and end on an example that is not the trigger.
        self.fault_stands = False
        #: One entry per cause that stopped student code from running: a file that did not
        #: import, a call that timed out, a crash, the budget. Reported once, at the top.
        self.problems: dict[str, Problem] = {}

    # -- bookkeeping
    def _on_note(self, event: str, name: str) -> None:
        # Notes come from student-controlled memory: a module name is short, and imports
        # nest a few levels deep, so a flood of "enter" notes keeps only the latest few.
        if event == "enter":
            self._importing.append(name[:100])
            del self._importing[:-_MAX_IMPORT_DEPTH]
        elif event == "exit" and self._importing:
            self._importing.pop()
        elif event == "running" and name.isdigit() and len(name) < 12:
            self._running = int(name)
        elif event == "unavailable":
            self._note_unavailable(name)

    def _note_unavailable(self, name: str) -> None:
        """A student file imported a package the grading runtime lacks: the worker bound it
        to a placeholder that fails when used. One note per package, at the report's top."""
        stem, _, top = name.partition(":")
        if not (stem.isidentifier() and top.isidentifier() and len(name) <= 100):
            return  # the worker's words are student-controlled: only plain names are told
        noted = [p for p in self.problems.values() if p.kind == "note"]
        if len(noted) >= _MAX_UNAVAILABLE and f"note:{top}" not in self.problems:
            return
        self._note(
            "note",
            top,
            f"Note: minitorch/{stem}.py imports {top}, which is not available when grading "
            f"(graded code can use {absent.describe_runtime(self.config.runtime)}). The file "
            f"was graded anyway; only a test that reaches a use of {top} fails. Remove the "
            "import if you do not need it.",
        )

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def defences(self) -> dict[str, bool | str]:
        return defences(self.config)

    @property
    def worker_uid(self) -> int | None:
        """The uid the sandboxed worker runs as (None in-process or when not root)."""
        lease = getattr(self._conn, "lease", None)
        return lease.uid if lease is not None else None

    # -- worker life
    def _ensure_worker(self) -> None:
        if self._conn.alive:
            return
        if self.restarts >= _MAX_RESTARTS:
            raise WorkerCrashed(
                f"{_GAVE_UP}: the worker process was restarted "
                f"{_MAX_RESTARTS} times after hangs or crashes"
            )
        self._conn.start()
        self.restarts += 1
        if self._blocked:
            self._conn.request(Call(self._next_id(), "init", [self._blocked], "init"), 10.0)
        self._preload()

    def _preload(self) -> None:
        """Import each student file once, with its own deadline, to find the ones that hang."""
        pkg = worker.StudentPackage(self.config.root)
        for name in pkg.module_names():
            if name in self._blocked:
                continue
            self._importing = []
            call = Call(self._next_id(), name, [], "import")
            try:
                self._conn.request(call, self.config.limits.import_timeout)
            except (Deadline, Died) as exc:
                culprit = self._importing[-1] if self._importing else name
                self._blocked[culprit] = self._import_fault(culprit, exc)
                self._restart_after_fault()
                self._conn.start()
                self._conn.request(Call(self._next_id(), "init", [self._blocked], "init"), 10.0)
        self._importing = []

    def _import_fault(self, name: str, exc: Exception) -> str:
        rel = f"minitorch/{name}.py"
        if isinstance(exc, Oversized):
            return f"{rel} could not be checked: the process running it sent too much data"
        if isinstance(exc, Deadline):
            return (
                f"{rel} could not be imported: it did not finish importing within "
                f"{self.config.limits.import_timeout:g} s (an infinite loop or a long computation "
                "at the top level of the file?)"
            )
        how = self._conn.exit_description() if isinstance(self._conn, Subprocess) else ""
        return f"{rel} could not be imported: the process running it died ({how})"

    def _restart_after_fault(self) -> None:
        self._conn.kill()
        self.restarts += 1

    def import_problem(self, name: str) -> str | None:
        """Why ``minitorch/<name>.py`` does not import in the worker, or None when it does.

        A worker that dies or hangs at any point of the check (its imports, a restart, the
        answer itself) makes that the answer: the file is not usable as it is.
        """
        try:
            self._ensure_worker()
            if name in self._blocked:
                return self._blocked[name]
            reply = self._conn.request(
                Call(self._next_id(), name, [], "import"), self.config.limits.import_timeout
            )
        except WorkerCrashed as exc:
            return str(exc)
        except (Deadline, Died, Oversized) as exc:
            message = self._import_fault(name, exc)  # before the restart: how it ended
            self._restart_after_fault()
            return message
        if reply.ok:
            return None
        error = reply.error or {}
        return str(error.get("message") or error.get("type") or "it did not import")

    def _budget_exhausted(self) -> str | None:
        """Why no more student code may run, or None.

        The budget counts the CPU time of this grade's own workers, so a busy neighbour on
        the machine cannot cost anyone points; a wall clock of several times the budget still
        stops code that only sleeps.
        """
        budget = self.config.limits.budget
        if self._conn.cpu_seconds() > budget:
            return (
                f"grading stopped after your code used {budget:g} s of CPU time (the "
                "submission's budget), so the remaining checks were not run"
            )
        wall = _WALL_FACTOR * budget
        if self.elapsed > wall:
            return (
                f"grading stopped after {wall:g} s of wall-clock time (your code waited or slept "
                "for most of it), so the remaining checks were not run"
            )
        return None

    # -- the API the tests use
    def run(
        self, message: dict[str, Any], label: str, label_of: Callable[[int], str] | None = None
    ) -> Any:
        """Send one batch of handle operations (``handles.Session``'s request) and return
        the worker's answer. Raises a ``StudentFault`` subclass when student code fails,
        hangs or crashes. A batch that hangs is named by ``label_of`` the operation that
        was running (when the worker could tell), and its ``ProbeTimeout`` has that ``op``."""
        return self._logged("run", (message,), label, "run", label_of)

    @property
    def generation(self) -> int:
        """Changes whenever the worker restarts (its objects are gone then)."""
        return self.restarts

    def _logged(
        self,
        name: str,
        args: tuple[Any, ...],
        label: str | None,
        op: str,
        label_of: Callable[[int], str] | None = None,
    ) -> Any:
        try:
            value = self._call(name, args, label, op, label_of)
        except protocol.StudentFault as exc:
            self.fault_stands = _stands(exc)
            if self.config.call_log is not None:
                self._log(
                    {
                        "op": name,
                        "args": list(args),
                        "fault": type(exc).__name__,
                        "type": getattr(exc, "type_name", None),
                    }
                )
            raise
        self.fault_stands = op == "run" and self._batch_faults(value)
        if self.config.call_log is not None:
            self._log({"op": name, "args": list(args), "value": value})
        return value

    def _batch_faults(self, answer: Any) -> bool:
        """Note the files a batch of handle operations found not importing (the report's
        top says so, as for a call that raised it) and say whether one stands."""
        failed = answer.get("failed") if type(answer) is dict else None
        stands = False
        for error in (failed or {}).values() if type(failed) is dict else ():
            if type(error) is dict and error.get("type") == "ImportError":
                self._note_import(str(error.get("message", "")))
                stands = True
        return stands

    def _log(self, entry: dict[str, Any]) -> None:
        import json

        assert self.config.call_log is not None
        with open(self.config.call_log, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")

    def _call(
        self,
        name: str,
        args: tuple[Any, ...],
        label: str | None,
        op: str,
        label_of: Callable[[int], str] | None = None,
    ) -> Any:
        what = label or name
        if (self.scope, what) in self._hung:
            self._hang_again(what, label)
        exhausted = self._budget_exhausted()
        if exhausted:
            self._note("timeout", "budget", exhausted)
            raise BudgetExhausted(exhausted, label=label)
        protocol.check_plain(list(args), f"the arguments of {what}")
        self.calls += 1
        reply: Reply | None
        hung_op: int | None = None
        try:
            self._ensure_worker()
            self._importing, self._running = [], None
            call = Call(self._next_id(), name, list(args), op)
            reply = self._conn.request(call, self.config.limits.probe_timeout)
        except Deadline:
            culprit = self._importing[-1] if self._importing else None
            self._restart_after_fault()
            if culprit is not None:
                self._blocked[culprit] = self._import_fault(culprit, Deadline())
                self._note_import(self._blocked[culprit])
                raise StudentError("ImportError", self._blocked[culprit], label=label) from None
            running = self._running
            named = label_of(running) if label_of and running is not None else ""
            what, hung_op = (named, running) if named else (what, None)
            limit = self.config.limits.probe_timeout
            message = (
                f"timed out after {limit:g} s in {what} (an infinite loop? "
                "the worker was stopped; later calls of it fail the same way without waiting)"
            )
            self._hung[self.scope, what] = message
            self._note("timeout", what, message)
            reply = None
        except Oversized:
            self._restart_after_fault()
            raise BadValue(
                f"the value returned for {what} is too large to be checked (over "
                f"{protocol.MAX_FRAME // (1024 * 1024)} MiB or {protocol.MAX_WIRE_ITEMS} items)",
                label=label,
            ) from None
        except Died:
            how = self._conn.exit_description() if isinstance(self._conn, Subprocess) else ""
            culprit = self._importing[-1] if self._importing else None
            self._restart_after_fault()
            if culprit is not None:
                self._blocked[culprit] = self._import_fault(culprit, Died())
                self._note_import(self._blocked[culprit])
                raise StudentError("ImportError", self._blocked[culprit], label=label) from None
            message = f"the process running your code died ({how}) in {what}"
            self._note("crashed", what, message)
            raise WorkerCrashed(message, label=label) from None
        if reply is None:
            self._hang_again(what, label, hung_op)  # outside the except block: see _hang_again
        if reply.ok:
            # What the worker says is student-controlled: checked here, on the trusted side.
            try:
                protocol.check_plain(reply.value, f"the value returned for {what}")
            except BadValue as exc:
                raise BadValue(exc.message, label=label) from None
        if not reply.ok and reply.error is not None:
            if reply.error.get("type") == "ImportError":
                self._note_import(str(reply.error.get("message", "")))
            if label and not reply.error.get("label"):
                reply = Reply(reply.id, False, error={**reply.error, "label": label})
        return reply.value

    def _hang_again(self, what: str, label: str | None, op: int | None = None) -> NoReturn:
        """Raise the timeout of ``what`` in this test, the first time and on every repeat alike.

        hypothesis tells failures apart by where they were raised and what they were raised
        during; the repeat of a hang (no call made) must look like the hang itself, or the
        replay of a failing example counts as another failure ("flaky")."""
        fault = ProbeTimeout(self._hung[self.scope, what], label=label)
        fault.op = op  # type: ignore[attr-defined]
        raise fault

    def _note(self, kind: str, key: str, message: str) -> None:
        known = self.problems.get(f"{kind}:{key}")
        if known is None or (known.hidden and not self.hidden_scope):
            message = protocol.clip(message, 2000)
            self.problems[f"{kind}:{key}"] = Problem(kind, key, message, self.hidden_scope)

    def _note_import(self, message: str) -> None:
        """A student file that did not import (its message starts with the file's name)."""
        import re

        found = re.match(r"(minitorch/\w+\.py)\b", message)
        if found:
            self._note("import-error", found.group(1), message)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> StudentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<StudentClient {self.config.mode} {self.config.root}>"
