"""Devices in the IR: every node's device, ops refusing two devices at the user's call, the plan
key per device, realizes grouped by device, and the front end's placement (`device=`, `.to`,
`.cpu()`, `Module.to`), on a second device type registered by the test."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import lazytorch as torch
from lazytorch import config
from lazytorch.engine import backends, realize
from lazytorch.ir import graph
from lazytorch.ir.graph import Graph, Node, const, format_graph
from lazytorch.ir.ops import Op
from lazytorch.runtime import memory
from tests.conftest import no_gpu

MIXED = r"Expected all tensors to be on the same device, but found at least two devices, "
BOTH = MIXED + r"(toy:0 and cpu|cpu and toy:0)!"


@pytest.fixture
def toy():
    """A second device type, "toy", served by a backend named "toy-c": the C backend's parts
    under another name, unregistered afterwards."""
    c = backends.get("c")
    backends.register(backends.CompiledBackend("toy-c", "toy", c.renderer, c.compiler, c.runtime,
                                               c.allocator))
    try:
        yield "toy:0"
    finally:
        backends.unregister("toy-c")


def _x(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


# ------------------------------------------------------------------------------ the IR
def test_sources_keep_their_device_and_ops_take_their_sources(toy):
    f32 = torch.float32
    b = memory.buffer_node(np.zeros(3, np.float32), device=toy)
    assert b.device == toy and memory.buffer_node(np.zeros(3, np.float32)).device == "cpu"
    scalar = const(2.0, f32)
    assert scalar.device is None                                 # a Python scalar: unplaced
    placed = Node(Op.CONST, (), 2.0, (), f32, toy)
    assert placed is not Node(Op.CONST, (), 2.0, (), f32)        # the key has a source's device
    assert placed is Node(Op.CONST, (), 2.0, (), f32, toy)
    assert const(2.0, f32, (3,), toy).device == toy
    exp = Node(Op.EXP, (b,), None, (3,), f32)
    assert exp.device == toy
    assert Node(Op.ADD, (exp, graph.new_node(Op.EXPAND, (Node(Op.RESHAPE, (scalar,), (1,), (1,),
                                                                  f32),), (3,), (3,), f32)),
                None, (3,), f32).device == toy
    assert Node(Op.ADD, (scalar, scalar), None, (), f32).device is None
    assert pickle.loads(pickle.dumps(placed)) is placed           # __reduce__ keeps the device


@pytest.mark.parametrize("make", ["python", "native"])
def test_two_devices_raise_in_both_constructors(toy, mod, make):
    new_node = graph.new_node_py if make == "python" else mod.new_node
    f32 = torch.float32
    on_toy = memory.buffer_node(np.ones(3, np.float32), device=toy)
    on_cpu = memory.buffer_node(np.ones(3, np.float32))
    with pytest.raises(RuntimeError, match=MIXED + "toy:0 and cpu!"):
        new_node(Op.ADD, (on_toy, on_cpu), None, (3,), f32)
    with pytest.raises(RuntimeError, match=MIXED + "cpu and toy:0!"):
        new_node(Op.WHERE, (on_cpu, const(1.0, f32, (3,)), on_toy), None, (3,), f32)
    made = new_node(Op.MUL, (on_toy, const(2.0, f32, (3,))), None, (3,), f32)
    assert made.device == toy and made is graph.new_node_py(Op.MUL, made.srcs, None, (3,), f32)
    placed = new_node(Op.CONST, (), 1.5, (), f32, toy)
    assert placed.device == toy and placed is graph.new_node_py(Op.CONST, (), 1.5, (), f32, toy)
    # a custom Function's node is its value's: its other sources are autograd's edges
    fn = new_node(Op.FUNCTION, (on_toy, on_cpu), 12345, (3,), f32)
    assert fn.device == toy


def test_the_ir_printer_shows_devices_off_the_cpu(toy):
    a = torch.ones(2, device="toy")
    text = format_graph(Graph([(a * 2 + torch.ones(2).to("toy")).node]))
    assert "@toy:0" in text and "@cpu" not in text
    assert "@" not in format_graph(Graph([(torch.ones(2) * 2).node]))


# ------------------------------------------------------------------------------ realize
def test_ops_on_toy_tensors_match_numpy(toy, backend, rng):
    a, b, w = _x(rng, 4, 5), _x(rng, 4, 5), _x(rng, 5, 3)
    ta, tb, tw = (torch.tensor(v, device="toy") for v in (a, b, w))
    idx = torch.tensor([3, 0, 2], device="toy")
    cases = [
        ((ta * tb + 1).exp().sum(1), np.exp(a.astype(np.float64) * b + 1).sum(1)),
        (ta @ tw, a.astype(np.float64) @ w),
        (torch.cat([ta, tb], 1), np.concatenate([a, b], 1)),
        (torch.cat([ta * 2, tb], 0), np.concatenate([a * 2, b], 0)),
        (torch.where(ta > tb, ta, tb), np.maximum(a, b)),
        (torch.index_select(ta, 0, idx), a[[3, 0, 2]]),
        (ta[1:3, ::2].relu(), np.maximum(a[1:3, ::2], 0)),
        (ta[2], a[2]),
        (torch.softmax(ta, 1), np.exp(a) / np.exp(a).sum(1, keepdims=True)),
    ]
    for got, want in cases:
        assert got.device == torch.device("toy", 0)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-5)
        assert got.device == torch.device("toy", 0)    # (its buffer is on toy too)


@pytest.mark.parametrize("op", ["add", "mul", "maximum", "matmul", "cat", "where", "where_cond",
                                "index_select", "index_select_index"])
def test_mixing_devices_raises_at_the_op(toy, op):
    t = torch.randn(3, 3, device="toy")
    c = torch.randn(3, 3)
    i_toy, i_cpu = torch.tensor([2, 0], device="toy"), torch.tensor([2, 0])
    calls = {"add": lambda: t + c, "mul": lambda: c * t, "maximum": lambda: torch.maximum(t, c),
             "matmul": lambda: t @ c, "cat": lambda: torch.cat([t, c]),
             "where": lambda: torch.where(t > 0, t, c),
             "where_cond": lambda: torch.where(c > 0, t, t),
             "index_select": lambda: torch.index_select(c, 0, i_toy),
             "index_select_index": lambda: torch.index_select(t, 0, i_cpu)}
    before = config.STATS["realizes"]
    with pytest.raises(RuntimeError, match=BOTH):
        calls[op]()
    assert config.STATS["realizes"] == before          # refused at the op, nothing realized


def test_scalars_combine_with_either_device(toy):
    x = np.array([1.0, -2.0, 3.0], np.float32)
    for where in ("toy", "cpu"):
        t = torch.tensor(x, device=where)
        for got, want in [(t + 2, x + 2), (2 * t, 2 * x), (t ** 2.0, x ** 2),
                          (torch.where(t > 0, t, 0.0), np.maximum(x, 0)),
                          (t.clamp(min=-1.0), np.maximum(x, -1))]:
            assert got.device.type == where
            np.testing.assert_allclose(got.numpy(), want)


def test_a_graph_of_unplaced_scalars_realizes_on_the_cpu():
    f32 = torch.float32
    n = Node(Op.CAST, (Node(Op.ADD, (const(2.0, f32), const(3.5, f32)), None, (), f32),),
             torch.float64, (), torch.float64)
    assert n.device is None
    (b,) = realize.realize([n])
    assert b.device == "cpu" and memory.data(b).item() == 5.5


def test_one_realize_groups_its_nodes_by_device(toy, monkeypatch):
    ran = []
    real = realize._run

    def run(outputs, inputs, key, todo, device="cpu"):
        ran.append((device, len(outputs)))
        return real(outputs, inputs, key, todo, device)
    monkeypatch.setattr(realize, "_run", run)
    a, b = np.arange(6, dtype=np.float32), np.ones(6, np.float32)
    on_toy = torch.tensor(a, device="toy") * 3 + 1
    on_cpu = torch.tensor(b) - 5
    also_toy = on_toy.exp()
    from lazytorch.frontend.tensor import realize_tensors
    bufs = realize_tensors([on_toy, on_cpu, also_toy])
    assert sorted(ran) == [("cpu", 1), (toy, 2)]
    assert [b.device for b in bufs] == [toy, "cpu", toy]
    np.testing.assert_allclose(memory.data(bufs[0]), a * 3 + 1)
    np.testing.assert_allclose(memory.data(bufs[1]), b - 5)
    np.testing.assert_allclose(memory.data(bufs[2]), np.exp(a * 3 + 1), rtol=1e-6)


def test_the_same_graph_on_two_devices_has_two_keys_and_two_plans(toy, mod):
    def graph_on(where):
        x = torch.tensor(np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4), device=where)
        return ((x * torch.full((3, 4), 0.25, device=where)).tanh() + 1.5).sum(0)

    keys = {}
    for where in ("cpu", "toy"):
        out = [graph_on(where).node]
        key = realize.prepare_py(out)[2]
        assert mod.prepare(out)[2] == key             # the compiled walk's key is the same
        keys[where] = key
    assert keys["cpu"] != keys["toy"]
    before = {id(p) for p in realize._PLANS.values()}
    built = config.STATS["plan_cache_hits"]
    with config.use_backend("c"):
        got = [graph_on(w).numpy() for w in ("cpu", "toy", "cpu", "toy")]
    new = {(key[0], id(p)) for key, p in realize._PLANS.items() if id(p) not in before}
    assert sorted(name for name, _ in new) == ["c", "toy-c"]    # one plan each...
    assert config.STATS["plan_cache_hits"] - built == 2        # ...the second of each replays
    want = (np.tanh(np.linspace(-1, 1, 12).reshape(3, 4) * 0.25) + 1.5).sum(0)
    for g in got:
        np.testing.assert_allclose(g, want, rtol=1e-6)


# ------------------------------------------------------------------------------ front end
def test_creation_places_tensors_on_the_device_asked(toy):
    dev = torch.device("toy", 0)
    made = [torch.zeros(2, device="toy"), torch.ones(2, 3, device=torch.device("toy")),
            torch.full((2,), 7.0, device="toy:0"), torch.empty(3, device="toy"),
            torch.arange(4, device="toy"), torch.linspace(0, 1, 5, device="toy"),
            torch.eye(3, device="toy"), torch.rand(2, device="toy"),
            torch.randn(2, device="toy"), torch.randint(0, 5, (3,), device="toy"),
            torch.randperm(4, device="toy"), torch.tensor([1.0, 2.0], device="toy"),
            torch.as_tensor(np.ones(3), device="toy"), torch.as_tensor([1, 2], device="toy"),
            torch.logspace(0, 1, 3, device="toy"), torch.scalar_tensor(3.0, device="toy"),
            torch.Tensor(2, 2, device="toy")]
    for t in made:
        assert t.device == dev and str(t.device) == "toy:0"
    base = torch.randn(2, 3, device="toy")
    for t in [torch.zeros_like(base), torch.ones_like(base), torch.empty_like(base),
              torch.full_like(base, 3.0), torch.rand_like(base), torch.randn_like(base),
              torch.randint_like(base, 4), base.new_zeros(2), base.new_ones(2),
              base.new_full((2,), 1.0), base.new_tensor([1.0]), base.new_empty(3)]:
        assert t.device == dev                           # *_like and new_* keep the input's
    assert torch.zeros_like(base, device="cpu").device == torch.device("cpu")
    np.testing.assert_allclose(torch.full((2,), 7.0, device="toy").numpy(), [7.0, 7.0])
    np.testing.assert_allclose(torch.arange(4, device="toy").numpy(), np.arange(4))
    assert torch.zeros(2).device == torch.device("cpu") and not torch.zeros(2).is_cuda
    assert "device='toy:0'" in repr(torch.ones(2, device="toy"))


def test_to_and_back_round_trips_values(toy):
    x = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    t = torch.tensor(x)
    on_toy = t.to("toy")
    assert on_toy.device == torch.device("toy", 0) and t.to("cpu") is t
    assert on_toy.to(torch.device("toy")) is on_toy
    back = (on_toy * 2).cpu()
    assert back.device == torch.device("cpu")
    np.testing.assert_array_equal(back.numpy(), x * 2)
    np.testing.assert_array_equal(on_toy.to("cpu", torch.float64).numpy(), x.astype(np.float64))
    assert t.to(on_toy).device == on_toy.device           # to(other): its device and dtype


def test_gradients_flow_across_to_against_central_differences(toy):
    rng = np.random.default_rng(2)
    x0, w0 = rng.standard_normal(5), rng.standard_normal(5)

    def f(x: np.ndarray) -> float:
        return float((np.sin(x) * w0).sum() + (x ** 2).sum())

    x = torch.tensor(x0, requires_grad=True)
    w = torch.tensor(w0, device="toy")
    y = x.to("toy")
    assert y.grad_fn is not None and y.device.type == "toy"
    loss = (y.sin() * w).sum().cpu() + (x * x).sum()
    loss.backward()
    assert x.grad.device == torch.device("cpu")
    eps = 1e-6
    fd = np.array([(f(x0 + eps * e) - f(x0 - eps * e)) / (2 * eps) for e in np.eye(5)])
    np.testing.assert_allclose(x.grad.numpy(), fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(loss.item(), f(x0), rtol=1e-12)


def test_module_to_moves_parameters(toy):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh(), torch.nn.Linear(3, 2))
    x = torch.randn(5, 4)
    want = net(x).detach().numpy()
    params = list(net.parameters())
    assert net.to("toy") is net
    assert [p is q for p, q in zip(net.parameters(), params)] == [True] * 4   # the same objects
    assert all(p.device == torch.device("toy", 0) and p.requires_grad for p in net.parameters())
    out = net(x.to("toy"))
    assert out.device.type == "toy"
    np.testing.assert_allclose(out.detach().numpy(), want, rtol=1e-6)
    out.sum().backward()
    assert all(p.grad is not None and p.grad.device.type == "toy" for p in net.parameters())
    net.cpu()
    assert all(p.device == torch.device("cpu") for p in net.parameters())


@no_gpu
def test_cuda_tensors_raise_at_creation():
    assert torch.device("cuda").type == "cuda"            # a device spec is only a name
    x = torch.ones(2)
    for make in (lambda: torch.zeros(2, device="cuda"),
                 lambda: torch.tensor([1.0], device="cuda:0"),
                 lambda: torch.randn(2, device=torch.device("cuda")),
                 lambda: torch.ones_like(x, device="cuda"), lambda: x.to("cuda"),
                 lambda: x.cuda(), lambda: torch.arange(3, device="cuda")):
        with pytest.raises(RuntimeError, match="Torch not compiled with CUDA enabled"):
            make()


def test_unknown_device_types_are_refused_by_name(toy):
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda, toy device type at start "
                                           "of device string: tpu"):
        torch.zeros(2, device="tpu")
    assert torch.device("toy:1").index == 1
