"""Debugging tools: errors at the user's line (eager and lazy), anomaly detection, check mode,
debug levels, eager op-by-op mode against lazy mode, and the graph as networkx."""
from __future__ import annotations

import re
import runpy
import sys
import traceback

import numpy as np
import pytest

import lazytorch as torch
from lazytorch import config, debug
from lazytorch.compiler.codegen.c import CRenderer
from lazytorch.engine import realize
from lazytorch.ir.ops import Op
from tests.conftest import check

HERE = "test_debug.py"


def here() -> int:
    """The line number of the caller."""
    return sys._getframe(1).f_lineno


@pytest.fixture
def fresh_plans():
    """Forget compiled plans before and after (a test that corrupts codegen must not leave a
    corrupted plan behind, and a test reading build-time output must not hit the cache)."""
    realize._PLANS.clear()
    yield
    realize._PLANS.clear()


def _marked_lines(src: str) -> dict[str, int]:
    """`# @name` markers in a script -> their 1-based line numbers."""
    return {m.group(1): i for i, line in enumerate(src.splitlines(), 1)
            if (m := re.search(r"# @(\w+)", line))}


def _last_frame_in(exc: BaseException, filename: str) -> int:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    assert frames, f"no frame of {filename} in the traceback"
    return frames[-1].lineno


# ------------------------------------------------------------------ errors at the user's line
SHAPE_SCRIPT = """\
import lazytorch as torch
x = torch.randn(5, 10)
w = torch.randn(10, 3)
h = (x @ w).relu()
v = torch.randn(3, 1)
bad = torch.randn(4, 1)
out = h @ bad  # @bad
print(out.sum())
"""


@pytest.mark.parametrize("mode", ["interp", "compiled"])
def test_eager_shape_error_raises_at_user_line(tmp_path, mode):
    path = tmp_path / "shape_script.py"
    path.write_text(SHAPE_SCRIPT)
    with debug.eager(mode), pytest.raises(RuntimeError) as info:
        runpy.run_path(str(path), run_name="__main__")
    assert "mat1 and mat2 shapes cannot be multiplied (5x3 and 4x1)" in str(info.value)
    assert _last_frame_in(info.value, str(path)) == _marked_lines(SHAPE_SCRIPT)["bad"]


def test_eager_env_variable_runs_ops_at_once(monkeypatch):
    # the variable is read once, when lazytorch is imported: emulate a fresh process
    def set_env(value):
        monkeypatch.setenv("LAZYTORCH_EAGER", value)
        monkeypatch.setattr(config, "_ENV_EAGER", config._env_eager())
        debug.EAGER_SOMEWHERE[0] = int(config._ENV_EAGER is not None)

    saved = debug.EAGER_SOMEWHERE[0]
    try:
        set_env("1")
        assert debug.eager_mode() == "interp"
        x = torch.tensor([1.0, 2.0])
        y = x * 3
        assert y.node.op is Op.BUFFER or y.node in realize.REALIZED
        set_env("compiled")
        assert debug.eager_mode() == "c"
        set_env("0")
        assert debug.eager_mode() is None
        z = torch.tensor([1.0, 2.0]) * 3
        assert z.node.op is Op.MUL and z.node not in realize.REALIZED
    finally:
        debug.EAGER_SOMEWHERE[0] = saved


def _corrupt_mul(monkeypatch):
    """Make the C renderer emit invalid C for every multiplication."""
    monkeypatch.setitem(CRenderer.EXPR, Op.MUL, lambda r, d, a, b: f"({a} @@ {b})")


def test_lazy_compile_failure_names_the_user_line(monkeypatch, fresh_plans):
    _corrupt_mul(monkeypatch)
    x = torch.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    y = (x + 1.5).exp()
    line = here() + 1
    z = y * 2.25  # the op whose code fails to compile
    with pytest.raises(realize.RealizeError) as info:
        z.sum().item()
    msg = str(info.value)
    assert f"{HERE}:{line}" in msg
    assert "CompileError" in msg and "@@" in msg      # the compiler's own complaint
    assert info.value.sites and f"{HERE}:{line}" in info.value.sites


def test_eager_compiled_failure_raises_at_the_op(monkeypatch, fresh_plans):
    """In eager compiled mode the same failure surfaces at the op's line, not at print."""
    _corrupt_mul(monkeypatch)
    x = torch.tensor([1.0, 2.0, 3.0])
    with debug.eager("compiled"), pytest.raises(realize.RealizeError) as info:
        y = x + 1
        line = here() + 1
        z = y * 4
        z.sum().item()
    assert _last_frame_in(info.value, __file__) == line
    assert f"{HERE}:{line}" in str(info.value)


def test_realize_error_in_script_names_script_line(tmp_path, monkeypatch, fresh_plans):
    """Lazy mode: the failure is raised at print, but its message names the op's line."""
    _corrupt_mul(monkeypatch)
    src = ("import lazytorch as torch\n"
           "x = torch.randn(3, 4)\n"
           "y = x.exp() * 3  # @op\n"
           "print(y.sum())  # @print\n")
    path = tmp_path / "lazy_script.py"
    path.write_text(src)
    marks = _marked_lines(src)
    with pytest.raises(realize.RealizeError) as info:
        runpy.run_path(str(path), run_name="__main__")
    assert _last_frame_in(info.value, str(path)) == marks["print"]
    assert f"lazy_script.py:{marks['op']}" in str(info.value)


# ------------------------------------------------------------------ anomaly detection
def _mlp_params(rng):
    w1 = torch.tensor(rng.standard_normal((4, 8)).astype(np.float32), requires_grad=True)
    w2 = torch.tensor(rng.standard_normal((8, 1)).astype(np.float32), requires_grad=True)
    return w1, w2


def test_anomaly_forward_nan_names_op_and_line(rng):
    w1, w2 = _mlp_params(rng)
    x = torch.tensor(rng.standard_normal((5, 4)).astype(np.float32))
    with torch.autograd.detect_anomaly(), pytest.raises(RuntimeError) as info:
        h = x @ w1
        line = here() + 1
        h = (h - 100.0).log()          # log of negatives: nan, in the middle of the model
        out = (h @ w2).tanh().sum()
        out.backward()
        out.item()
    msg = str(info.value)
    assert "forward" in msg and "'log'" in msg and "nan" in msg
    assert f"{HERE}:{line}" in msg


def test_anomaly_zero_over_zero(rng):
    x = torch.tensor([0.0, 1.0, 2.0])
    torch.autograd.set_detect_anomaly(True)
    try:
        assert torch.autograd.is_anomaly_enabled()
        y = x * 2
        line = here() + 1
        r = y / x
        with pytest.raises(RuntimeError) as info:
            (r + 1).sum().item()
    finally:
        torch.autograd.set_detect_anomaly(False)
    assert not torch.autograd.is_anomaly_enabled()
    assert "'div'" in str(info.value) and f"{HERE}:{line}" in str(info.value)


def test_anomaly_backward_inf_names_backward_op():
    w = torch.tensor([0.0, 1.0, 4.0], requires_grad=True)
    with torch.autograd.detect_anomaly(), pytest.raises(RuntimeError) as info:
        line = here() + 1
        s = w.sqrt()                   # finite forward; d/dw sqrt at 0 is inf
        loss = (s * 3).sum()
        loss.backward()
        w.grad.numpy()
    msg = str(info.value)
    assert "backward" in msg and "sqrt" in msg and "inf" in msg
    assert f"{HERE}:{line}" in msg


def test_anomaly_mode_is_silent_on_finite_values(rng):
    w1, w2 = _mlp_params(rng)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    with torch.autograd.detect_anomaly():
        out = (torch.tensor(x) @ w1).relu() @ w2
        loss = (out * out).mean()
        loss.backward()
        w1a, w2a = w1.detach().numpy(), w2.detach().numpy()
        check(loss, ((np.maximum(x @ w1a, 0) @ w2a) ** 2).mean(), rtol=1e-5)
        assert np.isfinite(w1.grad.numpy()).all()


# ------------------------------------------------------------------ check mode
CHECK_OPS = {
    "add_mul": (lambda a, b: a * b + a, lambda a, b: a * b + a),
    "exp_log": (lambda a, b: (a.abs() + 1).log() + b.exp(),
                lambda a, b: np.log(np.abs(a) + 1) + np.exp(b)),
    "relu_sum": (lambda a, b: (a + b).relu().sum(1), lambda a, b: np.maximum(a + b, 0).sum(1)),
    "max_reduce": (lambda a, b: a.amax(0) - b.amin(0), lambda a, b: a.max(0) - b.min(0)),
    "mean": (lambda a, b: (a * b).mean(), lambda a, b: (a * b).mean()),
    "matmul": (lambda a, b: a @ b.T, lambda a, b: a @ b.T),
    "transpose_where": (lambda a, b: torch.where(a.T > 0, a.T, b.T * 2),
                        lambda a, b: np.where(a.T > 0, a.T, b.T * 2)),
    "slice_cat": (lambda a, b: torch.cat([a[:, 1:], b[:, :2]], 1) * 2,
                  lambda a, b: np.concatenate([a[:, 1:], b[:, :2]], 1) * 2),
    "cumsum": (lambda a, b: a.cumsum(1) + b, lambda a, b: a.cumsum(1) + b),
    "gather": (lambda a, b: a[torch.tensor([2, 0])] * b[:2],
               lambda a, b: a[[2, 0]] * b[:2]),
    "softmax": (lambda a, b: (a - a.amax(1, keepdim=True)).exp() /
                (a - a.amax(1, keepdim=True)).exp().sum(1, keepdim=True),
                lambda a, b: np.exp(a - a.max(1, keepdims=True)) /
                np.exp(a - a.max(1, keepdims=True)).sum(1, keepdims=True)),
    "int_ops": (lambda a, b: ((a * 10).long() % 3) * 2 - (b > 0).long(),
                lambda a, b: np.mod((a * 10).astype(np.int64), 3) * 2 - (b > 0)),
}


@pytest.mark.parametrize("name", sorted(CHECK_OPS))
def test_check_mode_passes(name, rng):
    a = rng.standard_normal((3, 5)).astype(np.float32)
    b = rng.standard_normal((3, 5)).astype(np.float32)
    fn, ref = CHECK_OPS[name]
    with debug.check():
        check(fn(torch.tensor(a), torch.tensor(b)), ref(a, b), rtol=1e-5, atol=1e-5)


def test_check_mode_from_environment(monkeypatch, rng, fresh_plans):
    monkeypatch.setenv("LAZYTORCH_CHECK", "1")
    assert debug.check_mode()
    monkeypatch.setitem(CRenderer.EXPR, Op.ADD, lambda r, d, a, b: f"({a} - {b})")
    with pytest.raises(realize.KernelMismatch):
        (torch.tensor([1.0, 2.0]) + torch.tensor([3.0, 4.0])).tolist()


def test_check_mode_catches_corrupted_kernel(monkeypatch, rng, fresh_plans):
    monkeypatch.setitem(CRenderer.EXPR, Op.ADD, lambda r, d, a, b: f"({a} - {b})")
    a = rng.standard_normal((4, 6)).astype(np.float32)
    x = torch.tensor(a)
    line = here() + 1
    y = (x + 2.0).relu().sum(1)
    with debug.check(), pytest.raises(realize.KernelMismatch) as info:
        y.numpy()
    msg = str(info.value)
    assert re.search(r"^kernel_\d+ \([a-z, ]*\badd\b", msg)    # names the kernel and its ops
    assert "differs from the reference interpreter" in msg
    assert "kernel " in msg and "interpreter " in msg        # the differing elements
    assert "void kernel_" in msg                            # its source
    assert f"{HERE}:{line}" in msg                          # the user's line
    # without check mode the corrupted kernel runs silently (which is what check mode is for)
    realize._PLANS.clear()
    wrong = (torch.tensor(a) + 2.0).relu().sum(1).numpy()
    assert not np.allclose(wrong, np.maximum(a + 2, 0).sum(1))


# ------------------------------------------------------------------ debug levels
def _fused(rng):
    a = rng.standard_normal((6, 7)).astype(np.float32)
    b = rng.standard_normal((7,)).astype(np.float32)
    return torch.tensor(a), torch.tensor(b), np.maximum(a + b, 0).sum(1)


def test_level2_names_user_ops_per_kernel(capsys, rng, fresh_plans):
    x, b, ref = _fused(rng)
    with debug.level(2):
        y = (x + b).relu().sum(1)
        check(y, ref)
    out = capsys.readouterr()
    assert out.out == ""                                  # never mixed into stdout
    lines = [ln for ln in out.err.splitlines() if ln.startswith("***")]
    assert len(lines) == 1
    assert re.search(r"kernel_0\s+[\d.]+ us\s+[\d.]+ GB/s\s+", lines[0])
    names = lines[0].split("GB/s")[1].replace(",", " ").split()
    assert {"add", "relu", "sum"} <= set(names)


def test_level2_names_every_kernel_of_a_training_step(capsys, rng, fresh_plans):
    w = torch.tensor(rng.standard_normal((7, 3)).astype(np.float32), requires_grad=True)
    x = torch.tensor(rng.standard_normal((6, 7)).astype(np.float32))
    with debug.level(2):
        loss = (x @ w).tanh().square().mean()
        loss.backward()
        w.grad.numpy()
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("***")]
    assert lines
    for ln in lines:
        assert re.search(r"kernel_\d+ .* GB/s  \w", ln), ln
    text = "\n".join(lines)
    assert "tanh" in text and "matmul" in text


def test_level1_one_line_per_realize(capsys, rng, fresh_plans):
    x, b, _ = _fused(rng)
    with debug.level(1):
        (x * b).sum().item()
        x2, b2, _ = _fused(rng)
        (x2 * b2).sum().item()        # same structure, new data: the plan is reused
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    assert re.fullmatch(r"realize: 1 kernels, built in [\d.]+ ms", err[0])
    assert err[1] == "realize: 1 kernels, plan cache hit"


def test_level3_ir_before_and_after_scheduling(capsys, rng, fresh_plans):
    x, b, _ = _fused(rng)
    with debug.level(3):
        (x + b).relu().sum(1).numpy()
    err = capsys.readouterr().err
    assert "--- IR before passes" in err and "--- scheduled" in err
    assert re.search(r"%\d+: f32\[6,7\] = add %\d+ %\d+", err)
    assert re.search(r"= kernel_0\(%\d+, %\d+\)  # ", err)
    assert "void kernel_0" not in err                       # source is level 4


def test_level4_generated_source(capsys, rng, fresh_plans):
    x, b, _ = _fused(rng)
    with debug.level(4):
        (x + b).relu().sum(1).numpy()
    err = capsys.readouterr().err
    assert "--- kernel_0" in err and "void kernel_0(" in err and "restrict" in err


def test_level5_ir_after_every_pass(capsys, rng, fresh_plans):
    from lazytorch.compiler.passes import PIPELINE
    x, b, _ = _fused(rng)
    with debug.level(5):
        (x * 1.0 + b).relu().sum(1).numpy()
    err = capsys.readouterr().err
    for p in PIPELINE:
        assert f"--- after {p.__name__}" in err
    assert capsys.readouterr().out == ""


def test_level_from_environment(capsys, monkeypatch, rng, fresh_plans):
    monkeypatch.setenv("LAZYTORCH_DEBUG", "1")
    assert debug.get_level() == 1
    x, b, _ = _fused(rng)
    (x - b).sum().item()
    assert capsys.readouterr().err.startswith("realize: ")
    monkeypatch.setenv("LAZYTORCH_DEBUG", "0")
    (x - b).sum().item()
    assert capsys.readouterr().err == ""


# ------------------------------------------------------------------ eager == lazy
def _train(data, steps=4, lr=0.05):
    """A few steps of SGD, by hand, on a 2-layer MLP made of tensor ops."""
    x_np, y_np, w1_np, w2_np = data
    x, y = torch.tensor(x_np), torch.tensor(y_np)
    w1 = torch.tensor(w1_np, requires_grad=True)
    b1 = torch.tensor(np.zeros(8, np.float32), requires_grad=True)
    w2 = torch.tensor(w2_np, requires_grad=True)
    losses = []
    for _ in range(steps):
        h = (x @ w1 + b1).relu()
        loss = ((h @ w2 - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            for p in (w1, b1, w2):
                p -= lr * p.grad
                p.grad.zero_()
        losses.append(loss.item())
    return np.array(losses), [p.detach().numpy().copy() for p in (w1, b1, w2)]


@pytest.fixture
def mlp_data(rng):
    return (rng.standard_normal((16, 4)).astype(np.float32),
            rng.standard_normal((16, 1)).astype(np.float32),
            (rng.standard_normal((4, 8)) * 0.5).astype(np.float32),
            (rng.standard_normal((8, 1)) * 0.5).astype(np.float32))


def _numpy_train(data, steps=4, lr=0.05):
    x, y, w1, w2 = (a.astype(np.float64) for a in data)
    b1 = np.zeros(8)
    losses = []
    for _ in range(steps):
        pre = x @ w1 + b1
        h = np.maximum(pre, 0)
        d = h @ w2 - y
        losses.append((d ** 2).mean())
        g = 2 * d / d.size
        gw2 = h.T @ g
        gh = g @ w2.T * (pre > 0)
        gw1, gb1 = x.T @ gh, gh.sum(0)
        w1, b1, w2 = w1 - lr * gw1, b1 - lr * gb1, w2 - lr * gw2
    return np.array(losses), [w1, b1, w2]


def test_eager_and_lazy_training_agree(mlp_data):
    lazy_losses, lazy_params = _train(mlp_data)
    with debug.eager():
        eager_losses, eager_params = _train(mlp_data)
    with debug.eager("compiled"):
        comp_losses, comp_params = _train(mlp_data)
    ref_losses, ref_params = _numpy_train(mlp_data)
    np.testing.assert_allclose(lazy_losses, ref_losses, rtol=1e-4)
    for got in (eager_losses, comp_losses):
        np.testing.assert_allclose(got, lazy_losses, rtol=1e-5, atol=1e-7)
    for params in (eager_params, comp_params):
        for p, q in zip(params, lazy_params):
            np.testing.assert_allclose(p, q, rtol=1e-5, atol=1e-6)
    for p, r in zip(lazy_params, ref_params):
        np.testing.assert_allclose(p, r, rtol=1e-4, atol=1e-5)


def test_eager_interp_matches_lazy_interp_exactly(mlp_data, monkeypatch):
    monkeypatch.setenv("LAZYTORCH_BACKEND", "interp")
    lazy_losses, lazy_params = _train(mlp_data, steps=2)
    with debug.eager():
        eager_losses, eager_params = _train(mlp_data, steps=2)
    np.testing.assert_array_equal(eager_losses, lazy_losses)
    for p, q in zip(eager_params, lazy_params):
        np.testing.assert_array_equal(p, q)


def test_eager_mode_runs_each_op_when_called():
    debug.reset_stats()
    with debug.eager("compiled"):
        x = torch.tensor([1.0, -2.0, 3.0])
        y = x.relu()
        after_relu = debug.stats()["realizes"]
        z = y * 2
        assert debug.stats()["realizes"] == after_relu + 1
    assert after_relu >= 1
    assert y.node in realize.REALIZED or y.node.op is Op.BUFFER
    assert z.tolist() == [2.0, 0.0, 6.0]


# ------------------------------------------------------------------ graph access
def test_ir_names_user_lines():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    line = here() + 1
    y = (x * 3).exp()
    text = debug.ir(y)
    assert "exp %" in text and f"{HERE}:{line}" in text
    assert text.splitlines()[-1].startswith("return %")


def test_graph_networkx_attributes():
    nx = pytest.importorskip("networkx")
    from lazytorch.compiler import graph, schedule
    w = torch.tensor(np.ones((3, 2), np.float32), requires_grad=True)
    x = torch.tensor(np.arange(12, dtype=np.float32).reshape(4, 3))
    line = here() + 1
    loss = (x @ w).relu().sum()
    loss.backward()
    g = graph(loss, w.grad)
    assert isinstance(g, nx.DiGraph)
    # names and order as the IR printer prints them
    printed = [ln.split(":")[0] for ln in debug.ir(loss, w.grad).splitlines()[:-1]]
    assert list(g.nodes) == printed
    assert nx.is_directed_acyclic_graph(g)
    for name, a in g.nodes(data=True):
        assert {"op", "shape", "dtype", "kernel", "backward", "site", "api"} <= set(a)
        for src in g.predecessors(name):
            assert list(g.nodes).index(src) < list(g.nodes).index(name)
    kernels = [k.name for k in schedule(loss, w.grad)]
    assert list(g.graph["kernels"]) == kernels
    # inputs have no kernel; every kernel has nodes; outputs are computed by a kernel
    for _, a in g.nodes(data=True):
        if a["op"] == "buffer":
            assert a["kernel"] is None and a["shape"] in ((4, 3), (3, 2))
        else:
            assert a["kernel"] in kernels or a["folded"]
    assert set(kernels) == {a["kernel"] for _, a in g.nodes(data=True)} - {None}
    for out in g.graph["outputs"]:
        assert g.nodes[out]["kernel"] in kernels and g.nodes[out]["stored"]
    relu = [a for _, a in g.nodes(data=True) if a["api"] == "relu" and a["shape"] == (4, 2)
            and a["op_class"] == "elementwise"]
    assert relu and relu[0]["site"] == f"{HERE}:{line}" and not relu[0]["backward"]
    assert relu[0]["dtype"] == "f32" and relu[0]["shape"] == (4, 2)
    # backward nodes carry the line of the forward op they differentiate (constants, and
    # views of them, are shared by the whole process: theirs is wherever they were first made)
    buffers = {n for n, a in g.nodes(data=True) if a["op"] == "buffer"}
    back = [a for n, a in g.nodes(data=True) if a["backward"] and nx.ancestors(g, n) & buffers]
    assert back and all(a["site"] == f"{HERE}:{line}" for a in back)
    assert all(a["api"].endswith("(backward)") for a in back)
    assert {"relu (backward)", "matmul (backward)"} <= {a["api"] for a in back}
    # matmul's inner nodes (reshapes, broadcast, multiply) are forward and named matmul
    mm = [a for _, a in g.nodes(data=True) if a["api"] == "matmul"]
    assert {"reshape", "expand", "mul", "sum"} <= {a["op"] for a in mm}
    # the grad (an output) comes from a backward node
    grad_name = g.graph["outputs"][1]
    assert any(g.nodes[n]["backward"] for n in nx.ancestors(g, grad_name) | {grad_name})


def test_graph_kernels_match_the_schedule():
    from lazytorch.compiler import graph, schedule
    a = torch.tensor(np.ones((5, 4), np.float32))
    b = torch.tensor(np.ones((4,), np.float32))
    y = (a + b).relu()
    z = y.sum(1) * 2
    g = graph(z)
    (k,) = schedule(z)
    names = {a["api"]: a["kernel"] for _, a in g.nodes(data=True) if a["api"]}
    assert names["add"] == names["relu"] == names["sum"] == names["mul"] == k.name
    assert g.graph["kernels"][k.name] == list(k.ops)


def test_eager_contexts_are_counted_in_every_thread():
    import threading
    base = debug.EAGER_SOMEWHERE[0]   # (1 under LAZYTORCH_EAGER)
    seen = []

    def other():
        with debug.eager("compiled"):
            seen.append(debug.EAGER_SOMEWHERE[0])
            y = torch.tensor([1.0, 2.0]) * 4
            seen.append(y.node.op is Op.BUFFER or y.node in realize.REALIZED)

    with debug.eager():
        t = threading.Thread(target=other)
        t.start()
        t.join()
        with debug.lazy():
            z = torch.tensor([1.0, 2.0]) * 3
        assert z.node.op is Op.MUL           # lazy inside eager, although one is counted
    assert seen == [base + 2, True] and debug.EAGER_SOMEWHERE[0] == base
