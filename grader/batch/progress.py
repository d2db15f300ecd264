"""The batch's one-line progress display: done, running, failed, and the time left."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from typing import IO

# --------------------------------------------------------------------------- progress


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class ProgressLine:
    """done/total, rate, ETA and the submissions in flight, for a terminal and for a log.

    Every finished submission prints one permanent line (readable in a non-TTY log). On a
    terminal a status line below it is redrawn every second with the names in flight and
    how long each has run. The ETA appears once ``eta_after`` submissions have finished and
    is an estimate from then on (mean time per submission, the work in flight, ``jobs`` at
    a time), never a placeholder.
    """

    def __init__(
        self,
        total: int,
        jobs: int,
        stream: IO[str],
        *,
        live: bool | None = None,
        eta_after: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.jobs, self.stream = total, max(1, jobs), stream
        self.live = stream.isatty() if live is None else live
        self.eta_after = max(1, min(eta_after, total))
        self.clock = clock
        self.start = clock()
        self.done = 0
        self.durations: list[float] = []
        self.in_flight: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if self.live:
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()

    def eta(self, now: float | None = None) -> float | None:
        """Seconds left, or None before ``eta_after`` submissions have finished."""
        if self.done < self.eta_after or not self.durations:
            return None
        now = self.clock() if now is None else now
        mean = sum(self.durations) / len(self.durations)
        queued = self.total - self.done - len(self.in_flight)
        work = queued * mean + sum(max(mean - (now - t), 0.0) for t in self.in_flight.values())
        return work / min(self.jobs, max(1, queued + len(self.in_flight)))

    def status(self, now: float | None = None, *, names: bool = True) -> str:
        """``[done/total] | rate | ETA | grading <in flight>``."""
        now = self.clock() if now is None else now
        elapsed = max(now - self.start, 1e-9)
        width = len(str(self.total))
        parts = [f"[{self.done:>{width}}/{self.total}]"]
        if self.done:
            parts.append(f"{self.done / elapsed * 60:.1f}/min")
        eta = self.eta(now)
        if self.done >= self.total:
            parts.append(f"done in {_clock(elapsed)}")
        elif eta is None:
            parts.append(f"ETA after {self.eta_after} done")
        else:
            parts.append(f"ETA {_clock(eta)}")
        if self.in_flight and names:
            flying = ", ".join(f"{n} ({_clock(now - t)})" for n, t in self.in_flight.items())
            parts.append(f"grading {flying}")
        return " | ".join(parts)

    def started(self, ident: str) -> None:
        with self._lock:
            self.in_flight[ident] = self.clock()

    def finished(self, ident: str, text: str) -> None:
        with self._lock:
            now = self.clock()
            began = self.in_flight.pop(ident, now)
            self.durations.append(now - began)
            self.done += 1
            counter, _, rest = self.status(now).partition(" | ")
            line = f"{counter} {text} ({now - began:.1f} s) | {rest}"
            self._write(line, permanent=True)

    def _write(self, line: str, permanent: bool) -> None:
        if self.live:
            # The redrawn status line must fit on one line, or "\r" cannot erase it.
            width = max(20, shutil.get_terminal_size().columns - 1)
            status = self.status() if permanent else line
            self.stream.write("\r\x1b[K" + (line + "\n" if permanent else "") + status[:width])
        elif permanent:
            self.stream.write(line + "\n")
        self.stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                self._write(self.status(), permanent=False)

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        if self.live:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
