"""How hypothesis draws and shrinks a grade's examples, beyond what its settings offer.

Two changes to a pinned hypothesis, each through the one private hook it needs: the draws
never depend on where the grader is installed (``no_local_constants``), and shrinking a
failure has a bound in calls and in seconds (``bound_shrinking``), so a buggy submission
costs about what a correct one does and shows the same example on a busy machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["bound_shrinking", "no_local_constants"]


def no_local_constants() -> None:
    """Draw from hypothesis' global constants only, never from the modules loaded here.

    Hypothesis mixes into its draws the literals of every "local" module it finds loaded
    (anything outside site-packages), and caches them under ``.hypothesis/constants`` in
    the working folder. What is local depends on where the grader is installed (a checkout
    or a bundle's venv), so the same test drew different examples in sandbox and docker
    modes. hypothesis is pinned, so this private hook is stable.
    """
    from hypothesis.internal.conjecture import providers

    empty = providers.Constants()
    providers._get_local_constants = lambda: empty  # type: ignore[attr-defined]


def bound_shrinking(
    calls: int, seconds: float, fault_stands: Callable[[], bool], stall: int = 50
) -> None:
    """Let each failing test spend at most ``calls`` test calls shrinking its example (and
    stop after ``stall`` calls in a row that found nothing smaller); let the whole run
    spend at most ``seconds`` shrinking, one test at most a sixth of that. A failure that
    no input changes (``fault_stands()`` right after it: a file that does not import, a
    hung call) is not shrunk at all: the example that found it is the one to show.

    Shrinking is where a buggy submission spent its time (a wrong backpropagate: 634 calls,
    5 s, for one test): most of it in the last few steps, from a graph of four variables
    to one of three. The call count keeps the example and the message the same on a busy
    machine; the clock only bounds code whose every call is slow (seconds each): then a
    test shows a less shrunk example, and its score is the same either way. hypothesis is
    pinned; its shrinker checks ``check_calls`` before every call and stops on
    ``StopShrinking``.
    """
    from hypothesis.internal.conjecture import engine
    from hypothesis.internal.conjecture.shrinker import StopShrinking

    unbounded = getattr(engine.ConjectureRunner.new_shrinker, "_grader_unbounded", None)
    unbounded = unbounded or engine.ConjectureRunner.new_shrinker
    spent = [0.0]  # seconds of shrinking so far in this run
    per_test = seconds / 6

    def new_shrinker(self: Any, *args: Any, **kwargs: Any) -> Any:
        shrinker = unbounded(self, *args, **kwargs)
        shrinker.max_stall = stall
        start_calls, started = shrinker.calls, time.monotonic()
        allowed = 0.0 if fault_stands() else min(per_test, seconds - spent[0])

        def check_calls() -> None:
            took = time.monotonic() - started
            if (
                shrinker.calls - shrinker.calls_at_last_shrink >= shrinker.max_stall
                or shrinker.calls - start_calls >= calls
                or took > allowed
            ):
                raise StopShrinking

        def shrink() -> None:
            try:
                if allowed > 0:
                    run_shrink()
            finally:
                spent[0] += time.monotonic() - started

        run_shrink = shrinker.shrink
        shrinker.check_calls = check_calls
        shrinker.shrink = shrink
        return shrinker

    new_shrinker._grader_unbounded = unbounded  # type: ignore[attr-defined]
    engine.ConjectureRunner.new_shrinker = new_shrinker  # type: ignore[method-assign]
