"""Hidden tests for task 0.4 (not in the hand-out): deeper trees, fresh modules."""

from __future__ import annotations

import pytest
from hypothesis import given
from support import ask, fmt, module_lines, module_paths, module_specs, parameter_paths, report


@pytest.mark.task("0.4")
@given(spec=module_specs(depth=3))
def test_deep_tree_parameters(student, spec):
    """named_parameters and parameters agree with the tree, three levels deep"""
    out = ask(
        student,
        "module_tree",
        spec,
        [],
        ["named", "parameters"],
        label="Module.named_parameters",
        called="building the tree below",
        snippet=module_lines(spec),
    )
    expected = sorted(parameter_paths(spec))
    named = sorted(str(name) for name, _, _ in out["named"])
    objects = sorted(str(p) for p in out["parameters"])
    if named != expected or objects != expected:
        report(
            "named_parameters / parameters do not match the module tree.",
            called="root.named_parameters() and root.parameters() on the tree below",
            returned=f"names {fmt(named)}; parameters registered as {fmt(objects)}",
            expected=f"{fmt(expected)} for both (in any order)",
            snippet=[*module_lines(spec), "sorted(n for n, p in root.named_parameters())"],
        )


@pytest.mark.task("0.4")
@given(spec=module_specs(depth=3))
def test_fresh_modules_are_training(student, spec):
    """every module of a fresh tree is in training mode, and eval() then train() restores it"""
    for actions, flag in (
        ([], True),
        ([["eval", ""]], False),
        ([["eval", ""], ["train", ""]], True),
    ):
        out = ask(
            student,
            "module_tree",
            spec,
            actions,
            ["training"],
            label="Module.train/eval",
            called="building the tree below",
            snippet=module_lines(spec),
        )
        for path in module_paths(spec):
            if out["training"][path] is not flag:
                calls = "; ".join(f"root.{a}()" for a, _ in actions) or "(no call)"
                var = "root" + (f".{path}" if path else "")
                report(
                    f"{var}.training is wrong.",
                    called=calls,
                    returned=out["training"][path],
                    expected=str(flag),
                    snippet=[
                        *module_lines(spec),
                        *(f"root.{a}()" for a, _ in actions),
                        f"{var}.training",
                    ],
                )
