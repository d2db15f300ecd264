"""Hidden tests for task 0.4 (not in the hand-out): deeper trees, fresh modules."""

from __future__ import annotations

import pytest
from hypothesis import given
from support import IDS, NAMED_IDS, TRAINING, module_lines, module_specs, module_tree, tree_values

from grader.isolation.checks import fmt, report
from grader.isolation.handles import code


@pytest.mark.task("0.4")
@given(spec=module_specs(depth=3))
def test_deep_tree_parameters(mt, spec):
    """named_parameters and parameters agree with the tree, three levels deep"""
    modules, params = module_tree(mt, spec)
    root, call = modules[""], "sorted(n for n, p in root.named_parameters())"
    asked = (code(mt, NAMED_IDS)(root.named_parameters()), code(mt, IDS)(root.parameters()))
    (named, ids), where = tree_values(
        spec, params, *asked, what="Module.named_parameters", call=call
    )
    names = sorted(str(name) for name, _ in named)
    objects = sorted(str(where.get(i)) for i in ids)
    if names != sorted(params) or objects != sorted(params):
        report(
            "named_parameters / parameters do not match the module tree.",
            called="root.named_parameters() and root.parameters() on the tree below",
            returned=f"names {fmt(names)}; parameters registered as {fmt(objects)}",
            expected=f"{fmt(sorted(params))} for both (in any order)",
            snippet=[*module_lines(spec), call],
        )


@pytest.mark.task("0.4")
@given(spec=module_specs(depth=3))
def test_fresh_modules_are_training(mt, spec):
    """every module of a fresh tree is in training mode, and eval() then train() restores it"""
    modules, _ = module_tree(mt, spec)
    training, reads = code(mt, TRAINING), []
    for action in ("", "eval", "train"):  # on one tree: fresh, then eval(), then train()
        if action:
            getattr(modules[""], action)()
        reads.append(training(*modules.values()))
    got, _ = tree_values(spec, {}, *reads, what="Module.train/eval", call="root.training")
    runs = (([], True), (["eval"], False), (["eval", "train"], True))
    for (actions, flag), flags in zip(runs, got, strict=True):
        for path, training in zip(modules, flags, strict=True):
            if training is not flag:
                calls = [f"root.{a}()" for a in actions]
                var = "root" + (f".{path}" if path else "")
                report(
                    f"{var}.training is wrong.",
                    called="; ".join(calls) or "(no call)",
                    returned=training,
                    expected=str(flag),
                    snippet=[*module_lines(spec), *calls, f"{var}.training"],
                )
