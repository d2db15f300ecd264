"""Hidden tests for task 0.4 (not in the hand-out): deeper trees, fresh modules."""

from __future__ import annotations

import pytest
from hypothesis import given
from support import IDS, NAMED_IDS, module_specs, module_tree, tree_values

from grader.isolation.checks import answers, fmt, report, reproduced
from grader.isolation.handles import code


@pytest.mark.task("0.4")
@given(spec=module_specs(depth=3))
def test_deep_tree_parameters(mt, spec):
    """named_parameters and parameters agree with the tree, three levels deep"""
    modules, params, names = module_tree(mt, spec)
    calls = modules[""].named_parameters(), modules[""].parameters()
    asked = code(mt, NAMED_IDS)(calls[0]), code(mt, IDS)(calls[1])
    (named, ids), where = tree_values(params, *asked, what="Module.named_parameters", names=names)
    got = sorted(str(name) for name, _ in named)
    objects = sorted(str(where.get(i)) for i in ids)
    with reproduced(*calls, names=names):
        if got != sorted(params) or objects != sorted(params):
            report(
                "named_parameters / parameters do not match the module tree.",
                called="root.named_parameters() and root.parameters() on the tree below",
                returned=f"names {fmt(got)}; parameters registered as {fmt(objects)}",
                expected=f"{fmt(sorted(params))} for both (in any order)",
            )


@pytest.mark.task("0.4")
@given(spec=module_specs(depth=3))
def test_fresh_modules_are_training(mt, spec):
    """every module of a fresh tree is in training mode, and eval() then train() restores it"""
    modules, _, names = module_tree(mt, spec)
    reads = []
    for action in ("", "eval", "train"):  # on one tree: fresh, then eval(), then train()
        if action:
            getattr(modules[""], action)()
        reads.append([m.training for m in modules.values()])
    got = iter(
        answers(*[h for flags in reads for h in flags], what="Module.train/eval", names=names)
    )
    runs = (([], True), (["eval"], False), (["eval", "train"], True))
    for (actions, flag), flags in zip(runs, reads, strict=True):
        for path, h in zip(modules, flags, strict=True):
            if (training := next(got)) is not flag:
                with reproduced(h, names=names):
                    report(
                        f"{'root' + (f'.{path}' if path else '')}.training is wrong.",
                        called="; ".join(f"root.{a}()" for a in actions) or "(no call)",
                        returned=training,
                        expected=str(flag),
                    )
