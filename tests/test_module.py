"""Task 0.4: Module trees (children, parameters with dotted names, train / eval).

The probe builds a random tree of plain ``Module`` objects by attribute assignment (and
``add_parameter``), then reports what the student's methods return, naming each object by
the path the probe built it under. Orders are free: everything is compared as a collection.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import (
    ask,
    fmt,
    module_lines,
    module_paths,
    module_specs,
    parameter_paths,
    report,
)


def tree(student, spec, parts, actions=(), label="Module"):
    return ask(
        student,
        "module_tree",
        spec,
        [list(a) for a in actions],
        parts,
        label=label,
        called="building the tree below",
        snippet=module_lines(spec),
    )


def _sorted(items):
    return sorted(items, key=lambda x: (x is None, str(x)))


@pytest.mark.task("0.4")
@given(spec=module_specs())
def test_named_parameters(student, spec):
    """named_parameters gives every parameter of the tree once, under its dotted name"""
    out = tree(student, spec, ["named"], label="Module.named_parameters")
    expected = parameter_paths(spec)
    got = out["named"]
    names = [name for name, _, _ in got]
    snippet = [*module_lines(spec), "sorted(name for name, p in root.named_parameters())"]
    if sorted(map(str, names)) != sorted(expected) or len(names) != len(expected):
        report(
            "Module.named_parameters returned the wrong names.",
            called="root.named_parameters() on the tree below",
            returned=_sorted(names),
            expected=f"{fmt(sorted(expected))} (in any order)",
            snippet=snippet,
            hint="a child's parameters are named '<child name>.<parameter name>', recursively",
        )
    for name, which, _ in got:
        if which != name:
            report(
                f"Module.named_parameters paired {name!r} with the wrong Parameter.",
                called="root.named_parameters() on the tree below",
                returned=f"({name!r}, the Parameter registered as {which!r})",
                expected=f"({name!r}, the Parameter registered as {name!r})",
                snippet=snippet,
            )


@pytest.mark.task("0.4")
@given(spec=module_specs())
def test_parameters(student, spec):
    """parameters gives every Parameter of the whole tree exactly once"""
    out = tree(student, spec, ["parameters"], label="Module.parameters")
    expected = sorted(parameter_paths(spec))
    got = out["parameters"]
    if _sorted(got) != expected:
        report(
            "Module.parameters returned the wrong Parameters.",
            called="root.parameters() on the tree below",
            returned=f"the Parameters registered as {fmt(_sorted(got))}",
            expected=f"the Parameters registered as {fmt(expected)} (in any order, "
            f"{len(expected)} in all)",
            snippet=[*module_lines(spec), "len(root.parameters())"],
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
def test_train_and_eval(student, case):
    """train() and eval() set training on a module and every one of its descendants"""
    spec, actions = case
    out = tree(student, spec, ["training"], actions, label="Module.train/eval")
    expected = expected_training(spec, actions)
    calls = "; ".join(f"{'root' + ('.' + p if p else '')}.{a}()" for a, p in actions)
    for path, flag in expected.items():
        got = out["training"][path]
        if got is not flag:
            var = "root" + (f".{path}" if path else "")
            report(
                f"{var}.training is wrong after train()/eval() calls.",
                called=calls,
                returned=got,
                expected=f"{flag} (train() / eval() reach every descendant)",
                snippet=[*module_lines(spec), calls, f"{var}.training"],
            )
