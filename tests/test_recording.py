"""Recording ops cheaply without changing what is recorded: the user's line and API name of
each node (found when read, from the instruction offset), side tables that empty as nodes die,
and the cached type promotion and broadcasting of the binary ops' fast paths."""
from __future__ import annotations

import gc
import itertools
import sys

import numpy as np
import pytest

import lazytorch as torch
from lazytorch.frontend.elementwise import broadcast_pair
from lazytorch.ir import dtypes as dt
from lazytorch.ir import sites

HERE = "test_recording.py"


def here() -> int:
    """The line number of the caller."""
    return sys._getframe(1).f_lineno


def site(t: torch.Tensor) -> tuple[str, str] | None:
    return sites.SITES.get(t.node)


def test_sites_name_the_users_line_and_api():
    x = torch.randn(4, 3)
    line = here() + 1
    a, b, c, d = x * 2.5, 1.5 - x, x.exp(), x.sum(1)
    assert site(a) == (f"{HERE}:{line}", "mul")
    assert site(b) == (f"{HERE}:{line}", "sub")
    assert site(c) == (f"{HERE}:{line}", "exp")
    assert site(d) == (f"{HERE}:{line}", "sum")
    line = here() + 1
    e = x.t()
    assert site(e) == (f"{HERE}:{line}", "t")
    line = here() + 2
    f = (x
         + 1.0)
    assert site(f)[0] in (f"{HERE}:{line - 1}", f"{HERE}:{line}")  # the line of the `+`
    assert site(f)[1] == "add"


def test_sites_name_the_torch_function():
    # torch.sqrt(x) names `sqrt`, as x.sqrt() does (the generic wrapper's own name was shown)
    x = torch.rand(4) + 0.5
    line = here() + 1
    a, b, c = torch.sqrt(x), torch.tanh(x), torch.sum(x)
    assert site(a) == (f"{HERE}:{line}", "sqrt")
    assert site(b) == (f"{HERE}:{line}", "tanh")
    assert site(c) == (f"{HERE}:{line}", "sum")
    assert torch.sqrt.__name__ == "sqrt" and torch.sqrt.__qualname__ == "sqrt"


def test_site_line_in_a_long_function():
    # the line is found from the instruction offset when it is read: also deep in a long body
    body = "".join(f"    v{i} = {i} + 1\n" for i in range(600))
    src = f"def long(x):\n{body}    return x * 3.0\n"
    code = compile(src, "long_script.py", "exec")
    ns: dict = {}
    exec(code, ns)
    y = ns["long"](torch.randn(3))
    assert site(y) == (f"long_script.py:{602}", "mul")


def test_sites_of_a_module_and_its_backward():
    lin = torch.nn.Linear(3, 2)
    x = torch.randn(5, 3, requires_grad=True)
    line = here() + 1
    loss = lin(x).relu().sum()
    assert site(loss) == (f"{HERE}:{line}", "sum")
    loss.backward()
    g = x.grad.node.srcs[0]  # (the gradient under its detach)
    assert g in sites.BACKWARD
    assert sites.SITES.get(g)[0] == f"{HERE}:{line}"
    assert sites.SITES.get(g)[1].endswith("(backward)")


def test_side_tables_empty_as_nodes_die():
    x = torch.randn(8)
    before = len(sites.SITES)
    y = x
    for _ in range(50):
        y = y * 1.5 + 2.0
    assert len(sites.SITES) >= before + 100
    del y
    gc.collect()
    # what stays: the two constants' nodes (a scalar, its reshape and expand), which are cached
    assert len(sites.SITES) <= before + 6


def test_side_tables_do_not_leak_to_a_new_node_at_the_same_address():
    # a node that dies takes its entries along, so a later node at its address starts clean
    x = torch.randn(2)
    for _ in range(200):
        y = x * 7.0
        n = y.node
        assert sites.SITES.get(n)[1] == "mul"
        del y, n
        z = torch.randn(2)
        assert z.node not in sites.SITES and z.node not in sites.BACKWARD


SCALARS = (True, 3, 2.5)


@pytest.mark.parametrize("default", [dt.float32, dt.float64])
def test_cached_result_types_agree_with_result_type(default):
    old = dt.get_default_dtype()
    try:
        torch.set_default_dtype(default)
        for d in dt.ALL:
            for v in SCALARS:
                t = torch.zeros(2, dtype=d)
                assert dt.scalar_result_type(d, type(v)) is dt.result_type(t, v)
        for a, b in itertools.product(dt.ALL, repeat=2):
            for a0, b0 in itertools.product((False, True), repeat=2):
                ta = torch.zeros(() if a0 else (2,), dtype=a)
                tb = torch.zeros(() if b0 else (2,), dtype=b)
                assert dt.pair_result_type(a, a0, b, b0) is dt.result_type(ta, tb)
    finally:
        torch.set_default_dtype(old)


def test_default_dtype_change_reaches_the_fast_path():
    x = torch.tensor([1, 2, 3])
    assert (x * 0.5).dtype == torch.float32
    old = dt.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        y = x * 0.5
        assert y.dtype == torch.float64
        np.testing.assert_array_equal(y.numpy(), np.array([1, 2, 3]) * 0.5)
    finally:
        torch.set_default_dtype(old)
    assert (x * 0.5).dtype == torch.float32


def test_fast_path_promotion_and_broadcast_match_numpy(rng):
    a = rng.standard_normal((3, 1, 4)).astype(np.float32)
    b = rng.integers(-5, 5, (2, 4)).astype(np.int64)
    ta, tb = torch.tensor(a), torch.tensor(b)
    for got, want in ((ta + tb, a + b), (tb * ta, b * a), (ta - 2, a - 2), (tb * 2, b * 2),
                      (tb + True, b + 1), (tb / 2, b / 2), (ta > tb, a > b)):
        assert got.shape == want.shape
        np.testing.assert_allclose(got.numpy(), want.astype(got.numpy().dtype), rtol=1e-6)
    assert (tb * 2).dtype == torch.int64 and (tb * 2.0).dtype == torch.float32
    assert (torch.tensor(3, dtype=torch.int64) * ta).dtype == torch.float32


def test_broadcast_errors_keep_their_messages():
    a, b = torch.randn(3, 4), torch.randn(2, 4)
    for _ in range(2):  # (the second time, the broadcast of the pair is looked up)
        with pytest.raises(RuntimeError, match=r"The size of tensor a \(3\) must match the size "
                                               r"of tensor b \(2\) at non-singleton dimension 0"):
            a + b
    assert broadcast_pair((3, 1), (4,)) == (3, 4)
