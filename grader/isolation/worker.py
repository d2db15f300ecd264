"""The worker: the only place where student code runs.

It loads the student's ``minitorch`` one file at a time (so a syntax error in ``scalar.py``
does not break the tests of ``autodiff.py``), applies the batches of handle operations the
tests record (``executor.py``: a generic executor, nothing of the course) and answers the
values asked for as plain data, and reports student exceptions as (type, message, student
frames).

It runs in the sandbox as ``python -s -S -B worker.py --root STAGE`` with only its
standard-library companions (``protocol.py``, ``executor.py``, ...) beside it, and
in-process for students' ``make test``. Standard library only.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.util
import os
import random
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:  # inside the sandbox its companions (standard library only) sit next to this file
    from . import absent, executor, newsyntax, protocol
except ImportError:  # pragma: no cover - exercised in the sandbox
    import absent  # type: ignore[no-redef]
    import executor  # type: ignore[no-redef]
    import newsyntax  # type: ignore[no-redef]
    import protocol  # type: ignore[no-redef]

PACKAGE = "minitorch"
#: The files copied next to this one into each worker's folder (standard library only).
COMPANIONS = (protocol.__file__, absent.__file__, newsyntax.__file__, executor.__file__)
MISSING_LIST = ".missing-modules"
Notify = Callable[[str, str], None]


class DeadlineExceeded(BaseException):
    """Raised by the in-process deadline alarm. Never reported as the student's exception."""


class StudentImportError(ImportError):
    """A student file could not be imported. The message names the file and the reason."""


def _student_frames(tb: types.TracebackType | None, root: Path) -> str:
    """Format only the frames of the student's package, with paths like minitorch/scalar.py."""
    lines = []
    pkg_dir = str(root / PACKAGE) + os.sep
    for frame in traceback.extract_tb(tb):
        if not frame.filename.startswith(pkg_dir):
            continue
        rel = os.path.relpath(frame.filename, str(root))
        lines.append(f'  File "{rel}", line {frame.lineno}, in {frame.name}')
        if frame.line:
            lines.append(f"    {frame.line.strip()}")
    return "\n".join(lines[-16:])


def _shorten(text: str, limit: int = 2000) -> str:
    """A student's exception message, cut to what a report can show (it may be huge)."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 200]} ... [{len(text) - limit + 200} characters cut] ... {text[-150:]}"


def _describe_exception(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    if isinstance(exc, KeyboardInterrupt):
        return "raised KeyboardInterrupt"
    text = _shorten(str(exc))
    return f"raised {type(exc).__name__}: {text}" if text else f"raised {type(exc).__name__}"


def grading_python(stated: str) -> tuple[str, tuple[int, int]]:
    """The Python a student is told their code is graded with, and this one's version.

    The course states it (assignment.toml ``[runtime] python``); when this interpreter is
    older than that, this one is what judged the file, so it is what the message names.
    """
    running = (sys.version_info.major, sys.version_info.minor)
    parts = stated.split(".")
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        if (int(parts[0]), int(parts[1])) <= running:
            return stated, running
    return f"{running[0]}.{running[1]}", running


def _syntax_message(rel: str, exc: SyntaxError, source: bytes = b"", python: str = "") -> str:
    where = f"line {exc.lineno}" if exc.lineno else "unknown line"
    if "encoding" in str(exc.msg) or "decode" in str(exc.msg):
        return (
            f"{rel} could not be imported: {exc.msg} ({where}); save it as UTF-8, or declare "
            "its encoding in a first-line comment such as # -*- coding: latin-1 -*-"
        )
    grading, running = grading_python(python)
    try:  # a student on a newer Python: say which syntax, and what to write instead
        findings = newsyntax.newer_syntax(source, exc, running) if source else []
    except Exception:  # noqa: BLE001 - a best-effort explanation must not cost the message
        findings = []
    return newsyntax.syntax_message(rel, exc, findings, grading)


class _StudentLoader(importlib.abc.Loader):
    """Executes one student file, turning every failure into a clear StudentImportError."""

    def __init__(self, package: StudentPackage, name: str, path: Path) -> None:
        self.package = package
        self.name = name
        self.path = path

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        rel = f"{PACKAGE}/{self.name}.py"
        cached = self.package.failures.get(self.name)
        if cached:
            raise StudentImportError(cached)
        self.package.notify("enter", self.name)
        try:
            data = self.path.read_bytes()
            if b"\0" in data:  # compile() raises ValueError, not SyntaxError, for these
                line = data[: data.index(b"\0")].count(b"\n") + 1
                raise self.package.fail(
                    self.name,
                    f"{rel} could not be imported: it contains a NUL byte (line {line}); "
                    "save it as plain UTF-8 text",
                )
            try:
                # Bytes, exactly as an import reads them: UTF-8 by default, a coding cookie
                # (``# -*- coding: latin-1 -*-``) or a byte-order mark where the file has one.
                code = compile(data, str(self.path), "exec", dont_inherit=True)
            except SyntaxError as exc:
                message = _syntax_message(rel, exc, data, self.package.python)
                raise self.package.fail(self.name, message) from None
            module.__file__ = str(self.path)
            try:
                exec(code, module.__dict__)
            except (StudentImportError, DeadlineExceeded):
                raise
            except BaseException as exc:  # noqa: BLE001 - student code may raise anything
                frames = _student_frames(exc.__traceback__, self.package.root)
                message = f"{rel} could not be imported: it {_describe_exception(exc)}"
                unavailable = self.package.unavailable(exc)
                if isinstance(exc, absent.PackageNotAvailable):  # e.g. @beartype at the top
                    message = f"{rel} could not be imported: while it loaded, {exc.msg}"
                elif unavailable:
                    message = f"{rel} could not be imported: {unavailable}"
                if frames:
                    message += "\n" + frames
                raise self.package.fail(self.name, message) from None
        finally:
            self.package.notify("exit", self.name)


class StudentPackage(importlib.abc.MetaPathFinder):
    """A ``minitorch`` package whose files import independently of each other.

    The provided ``__init__.py`` star-imports every file, so importing it normally would let
    one broken file break all of them. Instead ``minitorch`` is a bare package module; its
    submodules import on demand through this finder, and attribute access on the package
    (``minitorch.Scalar``) runs the ``__init__``'s star imports one by one, skipping files
    that fail.
    """

    def __init__(
        self,
        root: Path,
        notify: Notify | None = None,
        runtime: tuple[str, ...] = (),
        python: str = "",
    ) -> None:
        self.root = root.resolve()
        self.runtime = runtime
        #: The Python the course grades with (assignment.toml), for syntax errors' messages.
        self.python = python
        self.pkg_dir = self.root / PACKAGE
        self.notify: Notify = notify or (lambda event, name: None)
        # Imports of packages the grading runtime lacks bind to placeholders (absent.py);
        # the first import of each is a note: "unavailable", "<file stem>:<package>".
        self.absent = absent.AbsentFinder(
            str(self.pkg_dir),
            runtime,
            lambda stem, top: self.notify("unavailable", f"{stem}:{top}"),
            PACKAGE,
        )
        self.failures: dict[str, str] = {}
        self._init_done = False
        # Files the submission lacks (listed by the stager), so their imports say "missing".
        listing = self.root / MISSING_LIST
        self.missing = set(listing.read_text().split()) if listing.is_file() else set()

    # -- installation
    def install(self) -> types.ModuleType:
        for name in list(sys.modules):
            if name == PACKAGE or name.startswith(PACKAGE + "."):
                del sys.modules[name]
        pkg = types.ModuleType(PACKAGE, "The student's minitorch package (loaded by the grader).")
        pkg.__path__ = [str(self.pkg_dir)]  # type: ignore[attr-defined]
        pkg.__file__ = str(self.pkg_dir / "__init__.py")
        pkg.__package__ = PACKAGE
        pkg.__getattr__ = self._package_getattr  # type: ignore[attr-defined]
        sys.modules[PACKAGE] = pkg
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)
        self.absent.install()
        return pkg

    def uninstall(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        self.absent.uninstall()
        for name, module in list(sys.modules.items()):
            if name == PACKAGE or name.startswith(PACKAGE + ".") or absent.is_placeholder(module):
                del sys.modules[name]

    def fail(self, name: str, message: str) -> StudentImportError:
        self.failures[name] = message
        return StudentImportError(message)

    def unavailable(self, exc: BaseException) -> str | None:
        """The message for an import of a package graded code cannot have, else None."""
        if not isinstance(exc, ModuleNotFoundError) or not exc.name:
            return None
        top = exc.name.split(".")[0]
        if top == PACKAGE or top in sys.stdlib_module_names:
            return None
        allowed = ", ".join(["the standard library", *self.runtime])
        return (
            f"it imports {top}, which graded code cannot use (available: {allowed}); "
            "remove that import"
        )

    def block(self, name: str, message: str) -> None:
        """Make every import of ``name`` fail at once (it hung or crashed the worker before)."""
        self.failures[name] = message

    def module_names(self) -> list[str]:
        return sorted(p.stem for p in self.pkg_dir.glob("*.py") if p.stem != "__init__")

    def missing_name(self, attr: str) -> BaseException | None:
        """The import error of the student file that should define ``minitorch.<attr>``
        (itself, or a file it imports, did not import), or None.

        The package skips files that fail, so without this ``minitorch.Scalar`` of a
        ``scalar.py`` that does not import would be a bare AttributeError.
        """
        import re

        name = re.escape(attr)
        defines = re.compile(rf"^(?:class|def)\s+{name}\b|^{name}\s*[:=]", re.M)
        for stem in self.module_names():
            try:
                text = (self.pkg_dir / f"{stem}.py").read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            if not defines.search(text):
                continue
            try:
                importlib.import_module(f"{PACKAGE}.{stem}")
            except ImportError as exc:
                return exc
        for _, message in sorted(self.failures.items()):
            return StudentImportError(message)
        return None

    # -- importlib protocol
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        prefix = PACKAGE + "."
        if not fullname.startswith(prefix) or "." in fullname[len(prefix) :]:
            return None
        name = fullname[len(prefix) :]
        file = self.pkg_dir / f"{name}.py"
        if name in self.failures:
            return importlib.util.spec_from_loader(
                fullname, _StudentLoader(self, name, file), origin=str(file)
            )
        if not file.is_file():
            if name not in self.missing:
                return None
            self.failures[name] = (
                f"{PACKAGE}/{name}.py is missing: it was not found in the submission"
            )
            return importlib.util.spec_from_loader(
                fullname, _StudentLoader(self, name, file), origin=str(file)
            )
        loader = _StudentLoader(self, name, file)
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)

    # -- package attributes: the __init__'s star imports, each on its own
    def _star_imports(self) -> list[str]:
        import ast

        init = self.pkg_dir / "__init__.py"
        try:
            tree = ast.parse(init.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError):
            return self.module_names()
        names = []
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                names.append(node.module)
        return names

    def _package_getattr(self, attr: str) -> Any:
        pkg = sys.modules[PACKAGE]
        if not self._init_done and not attr.startswith("__"):
            self._init_done = True
            for name in self._star_imports():
                try:
                    mod = importlib.import_module(f"{PACKAGE}.{name}")
                except ImportError:
                    continue
                public = getattr(mod, "__all__", None)
                if public is None:
                    public = [n for n in vars(mod) if not n.startswith("_")]
                # In order, each over the last, as the star imports themselves bind: module
                # 2's `from .tensor_functions import *` rebinds `minitorch.tensor`, first
                # the submodule tensor.py, to the function that makes tensors.
                for n in public:
                    if n in vars(mod):
                        setattr(pkg, n, getattr(mod, n))
            if attr in vars(pkg):
                return vars(pkg)[attr]
        raise AttributeError(f"module 'minitorch' has no attribute '{attr}'")


class Worker:
    """Answers calls: imports, name blocks and batches of operations on the student package."""

    def __init__(
        self,
        root: Path,
        notify: Notify | None = None,
        runtime: tuple[str, ...] = (),
        python: str = "",
    ) -> None:
        self.package = StudentPackage(root, notify, runtime, python)
        self.executor = executor.Executor(
            lambda: importlib.import_module(PACKAGE), self.package.missing_name
        )

    def start(self, blocked: dict[str, str] | None = None) -> None:
        random.seed(0)
        self.package.install()
        for name, message in (blocked or {}).items():
            self.package.block(name, message)

    def stop(self) -> None:
        self.executor.reset()
        self.package.uninstall()

    def handle(self, call: protocol.Call) -> protocol.Reply:
        try:
            if call.op == "import":
                __import__(f"{PACKAGE}.{call.name}")
                value: Any = None
            elif call.op == "run":
                value = self.run(call.args[0])
            elif call.op == "init":
                for name, message in dict(call.args[0] if call.args else {}).items():
                    self.package.block(str(name), str(message))
                value = None
            else:
                raise LookupError(f"no operation {call.op!r}")
            protocol.check_plain(value, f"the value returned for {call.op} {call.name}")
            return protocol.Reply(call.id, True, value)
        except protocol.BadValue as exc:
            return protocol.Reply(call.id, False, error=exc.to_json())
        except BaseException as exc:  # noqa: BLE001 - student code may raise anything
            return protocol.Reply(call.id, False, error=self._error(exc))  # the deadline: raised

    def run(self, message: dict[str, Any]) -> dict[str, Any]:
        """Apply a batch of handle operations and answer the values asked for (the shapes:
        ``Executor.answer``), values checked as plain data here, in the worker, too."""

        def plain(obj: Any) -> Any:
            value = executor.plain(obj)
            protocol.check_plain(value, "the value")
            return value

        return self.executor.answer(
            message, self._error, plain, protocol.BadValue, (DeadlineExceeded,)
        )

    def _error(self, exc: BaseException) -> dict[str, Any]:
        """``exc`` as the reply's error: type, message, the student's frames. The deadline
        is not an error of student code: it propagates."""
        if isinstance(exc, DeadlineExceeded):
            raise exc
        if isinstance(exc, StudentImportError):
            return protocol.StudentError("ImportError", str(exc)).to_json()
        frames = _student_frames(exc.__traceback__, self.package.root)
        if isinstance(exc, SystemExit):
            text = f"sys.exit({exc.code!r}) was called"
        else:
            text = _shorten(str(exc))
        return protocol.StudentError(type(exc).__name__, text, frames).to_json()


def serve(
    root: Path,
    in_fd: int,
    out_fd: int,
    runtime: tuple[str, ...] = (),
    python: str = "",
) -> None:
    """The sandboxed main loop: one frame in, notes and one reply out, until end of input."""

    writing = threading.Lock()  # the watcher's notes and the replies share one pipe

    def notify(event: str, name: str) -> None:
        with writing:
            protocol.write_frame(out_fd, {"type": "note", "event": event, "module": name})

    worker = Worker(root, notify, runtime, python)
    worker.start()
    threading.Thread(target=_watch, args=(worker.executor, notify), daemon=True).start()
    while True:
        frame = protocol.read_frame_blocking(in_fd)
        if frame is None:
            return
        call = protocol.Call.from_json(frame)
        reply = worker.handle(call)
        try:
            message = reply.to_json()
            protocol.encode_frame(message)
        except (TypeError, ValueError) as exc:  # e.g. a value too big for one frame
            what = f"the value returned for {call.op} {call.name}"
            fault = protocol.BadValue(f"{what} cannot be sent: {exc}")
            message = protocol.Reply(call.id, False, error=fault.to_json()).to_json()
        with writing:
            protocol.write_frame(out_fd, message)


def _watch(ex: executor.Executor, notify: Callable[[str, str], None]) -> None:
    """Tell the trusted side which operation has been running for a second: if the batch
    then hangs, the report names that call, not the batch's last one. (A hang that never
    lets this thread run, a C loop holding the GIL, leaves the batch's label.)"""
    seen, told = (None, -1), -1
    while True:
        time.sleep(0.5)
        now = (ex.running, ex.begun)
        if now[0] is not None and now == seen and now[1] != told:
            notify("running", str(now[0]))
            told = now[1]
        seen = now


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="minitorch-grader worker (runs student code)")
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--site", type=Path, help="folder of the runtime packages (numpy, ...)")
    parser.add_argument("--runtime", default="", help="their names, comma-separated")
    parser.add_argument("--python", default="", help="the Python the course grades with")
    args = parser.parse_args(argv)
    # Keep the reply channel private: student prints go to stderr, not into the protocol.
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    in_fd = os.dup(0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    sys.path[:0] = [str(args.root)]
    if args.site is not None:
        sys.path.append(str(args.site))
    runtime = tuple(n for n in args.runtime.split(",") if n)
    serve(args.root, in_fd, out_fd, runtime, args.python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
