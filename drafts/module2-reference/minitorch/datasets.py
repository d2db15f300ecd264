"""Toy 2-D classification datasets for the training project (provided).

Every generator is deterministic: points come from `random.Random(seed)`, never from the
global random state, so a dataset is the same on every run and machine.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "Graph",
    "simple",
    "diag",
    "split",
    "xor",
    "circle",
    "spiral",
    "datasets",
    "DEFAULT_SEED",
]

DEFAULT_SEED = 0


@dataclass
class Graph:
    """A dataset: N points X (pairs of floats) with labels y (0 or 1)."""

    N: int
    X: list[tuple[float, float]]
    y: list[int]


def _points(N: int, seed: int) -> list[tuple[float, float]]:
    """N points drawn uniformly from the unit square."""
    rng = random.Random(seed)
    return [(rng.random(), rng.random()) for _ in range(N)]


def _label(N: int, seed: int, rule: Callable[[float, float], bool]) -> Graph:
    X = _points(N, seed)
    return Graph(N, X, [1 if rule(x1, x2) else 0 for x1, x2 in X])


def simple(N: int, seed: int = DEFAULT_SEED) -> Graph:
    """Label 1 left of the vertical line x1 = 0.5."""
    return _label(N, seed, lambda x1, x2: x1 < 0.5)


def diag(N: int, seed: int = DEFAULT_SEED) -> Graph:
    """Label 1 below the diagonal x1 + x2 = 0.5."""
    return _label(N, seed, lambda x1, x2: x1 + x2 < 0.5)


def split(N: int, seed: int = DEFAULT_SEED) -> Graph:
    """Label 1 in the two vertical bands x1 < 0.2 and x1 > 0.8."""
    return _label(N, seed, lambda x1, x2: x1 < 0.2 or x1 > 0.8)


def xor(N: int, seed: int = DEFAULT_SEED) -> Graph:
    """Label 1 in the top-left and bottom-right quarters."""
    return _label(N, seed, lambda x1, x2: (x1 < 0.5 and x2 > 0.5) or (x1 > 0.5 and x2 < 0.5))


def circle(N: int, seed: int = DEFAULT_SEED) -> Graph:
    """Label 1 outside the circle of radius sqrt(0.1) around (0.5, 0.5)."""
    return _label(N, seed, lambda x1, x2: (x1 - 0.5) ** 2 + (x2 - 0.5) ** 2 > 0.1)


def spiral(N: int, seed: int = DEFAULT_SEED) -> Graph:
    """Two interleaved spirals, one per label. `seed` is unused: no randomness here."""

    def point(t: float) -> tuple[float, float]:
        return t * math.cos(t) / 20.0 + 0.5, t * math.sin(t) / 20.0 + 0.5

    half = N // 2
    steps = max(half, 1)
    first = [point(10.0 * i / steps) for i in range(5, 5 + half)]
    # The second arm is the first one turned a quarter turn around (0.5, 0.5).
    second = [(y, x) for x, y in (point(-10.0 * i / steps) for i in range(5, 5 + N - half))]
    return Graph(N, first + second, [0] * half + [1] * (N - half))


datasets: dict[str, Callable[..., Graph]] = {
    "Simple": simple,
    "Diag": diag,
    "Split": split,
    "Xor": xor,
    "Circle": circle,
    "Spiral": spiral,
}
