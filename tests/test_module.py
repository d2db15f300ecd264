"""Task 0.4: Module trees (children, parameters with dotted names, train / eval).

Each test builds a random tree of the student's ``Module`` objects by attribute assignment
(and ``add_parameter``), through handles, then reads what the student's methods return,
telling the Parameters apart by identity. Orders are free: everything is compared as a
collection.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import IDS, NAMED_IDS, module_paths, module_specs, module_tree, tree_values

from grader.isolation.checks import answers, fmt, report, reproduced
from grader.isolation.handles import code


def _sorted(items):
    return sorted(items, key=lambda x: (x is None, str(x)))


@pytest.mark.task("0.4")
@given(spec=module_specs())
def test_named_parameters(mt, spec):
    """named_parameters gives every parameter of the tree once, under its dotted name"""
    modules, params, names = module_tree(mt, spec)
    named = modules[""].named_parameters()
    (got,), where = tree_values(
        params, code(mt, NAMED_IDS)(named), what="Module.named_parameters", names=names
    )
    called, expected = "root.named_parameters() on the tree below", sorted(params)
    with reproduced(named, names=names):
        if sorted(str(name) for name, _ in got) != expected:
            report(
                "Module.named_parameters returned the wrong names.",
                called=called,
                returned=_sorted(name for name, _ in got),
                expected=f"{fmt(expected)} (in any order)",
                hint="a child's parameters are named '<child name>.<parameter name>', recursively",
            )
        for name, which in got:
            if where.get(which) != name:
                report(
                    f"Module.named_parameters paired {name!r} with the wrong Parameter.",
                    called=called,
                    returned=f"({name!r}, the Parameter registered as {where.get(which)!r})",
                    expected=f"({name!r}, the Parameter registered as {name!r})",
                )


@pytest.mark.task("0.4")
@given(spec=module_specs())
def test_parameters(mt, spec):
    """parameters gives every Parameter of the whole tree exactly once"""
    modules, params, names = module_tree(mt, spec)
    listed = modules[""].parameters()
    (got,), where = tree_values(
        params, code(mt, IDS)(listed), what="Module.parameters", names=names
    )
    with reproduced(listed, names=names):
        if _sorted(where.get(i) for i in got) != sorted(params):
            report(
                "Module.parameters returned the wrong Parameters.",
                called="root.parameters() on the tree below",
                returned=f"the Parameters registered as {fmt(_sorted(where.get(i) for i in got))}",
                expected=f"the Parameters registered as {fmt(sorted(params))} (in any order, "
                f"{len(params)} in all)",
            )


# Module.modules() is given by the template (it returns the registered children): it is not
# the student's work, so no test scores it.


@st.composite
def specs_and_actions(draw):
    spec = draw(module_specs())
    paths = list(module_paths(spec))
    actions = draw(
        st.lists(
            st.tuples(st.sampled_from(["train", "eval"]), st.sampled_from(paths)),
            min_size=1,
            max_size=4,
        )
    )
    return spec, actions


def expected_training(spec, actions):
    flags = {path: True for path in module_paths(spec)}
    for action, where in actions:
        for path in flags:
            if where == "" or path == where or path.startswith(where + "."):
                flags[path] = action == "train"
    return flags


@pytest.mark.task("0.4")
@given(case=specs_and_actions())
def test_train_and_eval(mt, case):
    """train() and eval() set training on a module and every one of its descendants"""
    spec, actions = case
    modules, _, names = module_tree(mt, spec)
    for action, path in actions:
        getattr(modules[path], action)()
    calls = "; ".join(f"{'root' + ('.' + p if p else '')}.{a}()" for a, p in actions)
    flags = [m.training for m in modules.values()]
    got = answers(*flags, what="Module.train/eval", names=names)
    right = expected_training(spec, actions).items()
    for (path, flag), training, h in zip(right, got, flags, strict=True):
        if training is not flag:
            var = "root" + (f".{path}" if path else "")
            with reproduced(h, names=names):
                report(
                    f"{var}.training is wrong after train()/eval() calls.",
                    called=calls,
                    returned=training,
                    expected=f"{flag} (train() / eval() reach every descendant)",
                )
