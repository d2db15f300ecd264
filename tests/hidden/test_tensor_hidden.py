"""Hidden checks of module 2, shown after the due date: the same properties on inputs the
public tests do not draw (both inputs of a zip broadcast and stored permuted, reductions
of a permuted tensor, a mean along each dimension)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tensors import broadcast_pair, check_array, check_zip, layouts, make, read, shapes, values_in

from grader.isolation.checks import at_most


@pytest.mark.task("2.3")
@at_most(25)
@given(pair=broadcast_pair(3), data=st.data())
def test_zip_of_two_permuted_broadcast_inputs(mt, pair, data):
    """a * b and a + b for two broadcast inputs, each stored in its own order"""
    arrays = [data.draw(values_in(s, -3.0, 3.0), f"input {k}") for k, s in enumerate(pair)]
    orders = [data.draw(layouts(x.shape), "layout") for x in arrays]
    a, b = [make(mt, x, o) for x, o in zip(arrays, orders, strict=True)]
    check_zip(mt, a * b, np.multiply, arrays, orders, what="a * b")
    check_zip(mt, a + b, np.add, arrays, orders, what="a + b")


@pytest.mark.task("2.3")
@at_most(25)
@given(shape=shapes(3, 4), data=st.data())
def test_mean_along_each_dimension(mt, shape, data):
    """mean(dim) of a tensor in any layout"""
    array = data.draw(values_in(shape, -5.0, 5.0), "values")
    t = make(mt, array, data.draw(layouts(shape), "layout"))
    outs = [t.mean(dim) for dim in range(len(shape))]
    for dim, (out, got) in enumerate(zip(outs, read(*outs, what="mean"), strict=True)):
        check_array(
            out,
            got,
            array.mean(axis=dim, keepdims=True),
            what=f"mean({dim})",
            rtol=1e-9,
            atol=1e-12,
        )
