"""Measure how far correct implementations are from the closed forms in tests/support.py.

The tolerances in tests/support.py come from this script (run on the reference):

    .venv/bin/python grader/tests/measure_tolerances.py

It prints, per operator and ScalarFunction, the worst error of the reference against the
closed forms and against central differences (as the tests compute them), and the worst
error of a few alternative correct styles. Not a test: it only prints figures.
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "reference"), str(ROOT / "tests")]

import support as S  # noqa: E402
from minitorch import operators as ops  # noqa: E402
from minitorch import scalar_functions as sf  # noqa: E402
from minitorch.autodiff import Context  # noqa: E402

from grader.isolation import checks as C  # noqa: E402

N = 20_000
rnd = random.Random(0)


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def operator_point(name: str) -> list[float]:
    """Random inputs from (about) the domain the tests draw from."""
    sign = rnd.choice([-1.0, 1.0])
    if name == "log":
        return [10 ** rnd.uniform(-3, 6)]
    if name == "exp":
        return [rnd.uniform(-700, 700)]
    if name == "inv":
        return [sign * 10 ** rnd.uniform(-3, 4)]
    if name == "sigmoid":
        return [rnd.uniform(-50, 50)]
    if name == "log_back":
        return [10 ** rnd.uniform(-2, 4), rnd.uniform(-10, 10)]
    if name == "inv_back":
        return [sign * 10 ** rnd.uniform(-2, 3), rnd.uniform(-10, 10)]
    if name == "relu_back":
        return [rnd.uniform(-1e3, 1e3), rnd.uniform(-10, 10)]
    return [rnd.uniform(-1e3, 1e3) for _ in range(S.OPERATORS[name].arity)]


def function_point(name: str) -> list[float]:
    if name == "Inv":
        return [rnd.choice([-1.0, 1.0]) * rnd.uniform(0.1, 50)]
    if name == "Log":
        return [rnd.uniform(0.1, 100)]
    if name == "Exp":
        return [rnd.uniform(-30, 30)]
    if name == "ReLU":
        x = rnd.uniform(0.05, 50)
        return [x if rnd.random() < 0.5 else -x]
    return [rnd.uniform(-50, 50) for _ in range(S.FUNCTIONS[name].arity)]


def central_points(args: list[float]) -> list[list[float]]:
    """For each argument, the points args with that argument at x + h and at x - h, where
    h = 1e-6 * max(1, |x|)."""
    points = []
    for i, x in enumerate(args):
        for sign in (1.0, -1.0):
            p = list(args)
            p[i] = x + sign * 1e-6 * max(1.0, abs(x))
            points.append(p)
    return points


def central_estimates(args: list[float], values: list[float]) -> list[tuple[float, float]]:
    """(estimate, rounding error bound) of each partial derivative from the forward values at
    ``central_points(args)``. The step is recomputed from the float points, so the rounding
    of x + h does not bias the estimate."""
    out = []
    for i, x in enumerate(args):
        up, down = values[2 * i], values[2 * i + 1]
        h = 1e-6 * max(1.0, abs(x))
        width = (x + h) - (x - h)
        out.append(((up - down) / width, 8 * 2.3e-16 * max(abs(up), abs(down), 1e-300) / width))
    return out


def main() -> None:
    print("forward of the reference operators vs the closed forms (worst relative error)")
    for name, op in S.OPERATORS.items():
        worst = 0.0
        for _ in range(N):
            args = operator_point(name)
            got, expected = getattr(ops, name)(*args), op.exact(*args)
            worst = max(worst, rel(got, expected) if expected else abs(got))
        print(f"  {name:10s} {worst:.3g}")

    print("backward of the reference vs closed forms and central differences")
    for name, fn in S.FUNCTIONS.items():
        cls = getattr(sf, name)
        worst_rel = worst_abs = worst_cd = 0.0
        failures = 0
        for _ in range(N):
            args = function_point(name)
            d = rnd.uniform(0.1, 10) * rnd.choice([-1.0, 1.0])
            ctx = Context()
            cls.forward(ctx, *args)
            grads = cls.backward(ctx, d)
            grads = list(grads) if isinstance(grads, tuple) else [grads]
            expected = fn.grads(*args, d)
            rtol, atol = fn.backward_tolerance(args, d)
            for g, e in zip(grads, expected, strict=True):
                worst_rel = max(worst_rel, rel(g, e) if e else 0.0)
                worst_abs = max(worst_abs, abs(g - e) / abs(d))
                failures += not C.within(g, e, rtol, atol)
            if name in ("LT", "EQ"):
                continue
            points = central_points(args)
            values = [cls.forward(Context(), *p) for p in points]
            for i, (estimate, rounding) in enumerate(central_estimates(args, values)):
                allowed = abs(d) * rounding + 1e-12 + S.CD_RTOL * abs(d * estimate)
                worst_cd = max(worst_cd, abs(grads[i] - d * estimate) / allowed)
                failures += abs(grads[i] - d * estimate) > allowed
        print(
            f"  {name:8s} rel {worst_rel:.3g}  abs/|d| {worst_abs:.3g}  "
            f"CD error / allowed {worst_cd:.3g}  failures {failures}"
        )

    print("alternative correct styles vs the closed forms (worst relative error)")
    alternatives = {
        "sigmoid 0.5 * (1 + tanh(x / 2)), x >= -30": (
            lambda x: 0.5 * (1 + math.tanh(x / 2)),
            S.sigmoid,
            lambda: rnd.uniform(-30, 50),
        ),
        "sigmoid via exp(-|x|)": (
            lambda x: (
                1 / (1 + math.exp(-abs(x)))
                if x >= 0
                else math.exp(-abs(x)) / (1 + math.exp(-abs(x)))
            ),
            S.sigmoid,
            lambda: rnd.uniform(-50, 50),
        ),
        "sigmoid' as exp(-x) / (1 + exp(-x)) ** 2": (
            lambda x: math.exp(-x) / (1 + math.exp(-x)) ** 2,
            lambda x: S.local_derivatives("sigmoid", x)[0],
            lambda: rnd.uniform(-50, 50),
        ),
        "inv as x ** -1": (lambda x: x**-1, lambda x: 1 / x, lambda: 10 ** rnd.uniform(-3, 4)),
        "exp as math.e ** x": (lambda x: math.e**x, math.exp, lambda: rnd.uniform(-700, 700)),
    }
    for label, (f, g, draw) in alternatives.items():
        worst = 0.0
        for _ in range(N):
            x = draw()
            worst = max(worst, rel(f(x), g(x)))
        print(f"  {label:45s} {worst:.3g}")
    worst = max(x * abs(math.log(x + 1e-6) - math.log(x)) for x in (10**-3, 1.0, 10**6))
    print(f"  {'log(x + 1e-6): |difference| * x':45s} {worst:.3g}")


if __name__ == "__main__":
    main()
