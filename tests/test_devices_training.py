"""Every front-end op on a second device: training steps, indexing, helper data (index buffers,
masks, iotas, random draws, optimizer scalars) on the input's device, PyTorch's 0-d CPU tensor
rule, save/load with map_location, pickling, the default device, and a sweep of the gradient
rules' op list.

The "toy" device type realizes with the C backend's renderer, compiler and runtime on memory
of its own (tests/test_backend_toy.py's allocator, reached only by copies, so a front end that
read a toy buffer as a host array would fail), so a program on toy must give the very numbers
it gives on the CPU: results are compared for equality, and the CPU's are checked against numpy
and finite differences elsewhere (and here where a test computes something of its own)."""
from __future__ import annotations

import io
import pickle

import numpy as np
import pytest

import lazytorch as torch
import lazytorch.nn as nn
import lazytorch.nn.functional as F
import lazytorch.optim as optim
from lazytorch.engine import backends
from tests import test_autograd_rules as rules
from tests.ckpt_files import tensor_pickle, zip_checkpoint
from tests.test_backend_toy import ToyAllocator
from tests.test_devices import BOTH

TOY = "toy:0"     # (a device() of it needs the fixture's registration first)
pytestmark = pytest.mark.usefixtures("toy")


@pytest.fixture
def toy():
    """The device type "toy": the C backend's parts over an allocator of its own."""
    c = backends.get("c")
    backends.register(backends.CompiledBackend("toy-c", "toy", c.renderer, c.compiler, c.runtime,
                                               ToyAllocator()))
    try:
        yield "toy:0"
    finally:
        backends.unregister("toy-c")


def _same(got, want, name: str = "") -> None:
    """got (on toy) holds exactly want's values (on the CPU)."""
    assert got.device == TOY, f"{name}: on {got.device}"
    assert want.device == torch.device("cpu"), name
    g, w = got.detach().cpu().numpy(), want.detach().numpy()
    assert g.dtype == w.dtype and g.shape == w.shape, name
    np.testing.assert_array_equal(g, w, err_msg=name)


def _on_both(build):
    """build(device) run on the CPU and on toy from the same seed: (cpu result, toy result)."""
    out = []
    for where in ("cpu", "toy"):
        torch.manual_seed(0)
        out.append(build(where))
    return out


# ------------------------------------------------------------------------------ training
def _mlp_run(where: str, opt_name: str) -> tuple[list[float], list]:
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3)).to(where)
    make = {"adam": lambda p: optim.Adam(p, lr=1e-2, weight_decay=1e-3),
            "adamw": lambda p: optim.AdamW(p, lr=1e-2, amsgrad=True),
            "sgd": lambda p: optim.SGD(p, lr=5e-2, momentum=0.9, nesterov=True)}
    opt = make[opt_name](model.parameters())
    sched = optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    x, y = torch.randn(8, 6).to(where), torch.randn(8, 3).to(where)
    losses = []
    for _ in range(4):
        opt.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss)
    state = [v for s in opt.state.values() for v in s.values() if isinstance(v, torch.Tensor)]
    return losses, list(model.parameters()) + state


@pytest.mark.parametrize("opt_name", ["adam", "adamw", "sgd"])
def test_mlp_training_on_toy_gives_the_cpus_numbers(opt_name):
    (cpu_losses, cpu_vals), (toy_losses, toy_vals) = _on_both(lambda w: _mlp_run(w, opt_name))
    for i, (a, b) in enumerate(zip(toy_losses, cpu_losses)):
        _same(a, b, f"loss {i}")
    assert len(toy_vals) == len(cpu_vals) > 4
    for i, (a, b) in enumerate(zip(toy_vals, cpu_vals)):
        _same(a, b, f"parameter or state {i}")          # optimizer state lives on toy too
    assert cpu_losses[-1].item() < cpu_losses[0].item()  # (it trained)


def test_mlp_step_against_a_numpy_sgd_step(rng):
    """One SGD step with momentum on toy against the update written in numpy."""
    w0, x, y = rng.standard_normal((3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)
    w = torch.tensor(w0, device="toy", requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.5)
    for _ in range(2):
        opt.zero_grad()
        ((torch.tensor(x, device="toy") @ w.t()).sum(1) - torch.tensor(y, device="toy")) \
            .pow(2).mean().backward()
        opt.step()
    want, buf = w0.copy(), None
    for _ in range(2):
        r = (x @ want.T).sum(1) - y
        g = np.outer(2 * r / 5, np.ones(3)).T @ x
        buf = g if buf is None else 0.5 * buf + g
        want = want - 0.1 * buf
    assert w.device == TOY
    np.testing.assert_allclose(w.detach().numpy(), want, rtol=1e-12)


def _cnn_run(where: str):
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"), nn.AvgPool2d(2),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Dropout(0.0), nn.Linear(4, 5)).to(where)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.randn(3, 2, 8, 8).to(where), torch.tensor([0, 4, 2]).to(where)
    losses = []
    for _ in range(2):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        loss.backward()
        opt.step()
        losses.append(loss)
    model.eval()
    return losses + [model(x)] + list(model.parameters()) + list(model.buffers())


def test_cnn_training_on_toy_gives_the_cpus_numbers():
    cpu, on_toy = _on_both(_cnn_run)
    for i, (a, b) in enumerate(zip(on_toy, cpu)):
        _same(a, b, f"value {i}")                         # batchnorm's running stats too


def _lstm_run(where: str):
    emb, lstm, head = nn.Embedding(11, 5), nn.LSTM(5, 6, num_layers=2, batch_first=True), \
        nn.Linear(6, 11)
    for m in (emb, lstm, head):
        m.to(where)
    params = [*emb.parameters(), *lstm.parameters(), *head.parameters()]
    opt = optim.SGD(params, lr=0.5)
    tokens = torch.randint(0, 11, (3, 4)).to(where)
    opt.zero_grad()
    out, (h, c) = lstm(emb(tokens))
    loss = F.cross_entropy(head(out).reshape(-1, 11), tokens.roll(1, 1).reshape(-1),
                           ignore_index=3)
    loss.backward()
    grads = [p.grad for p in params]
    opt.step()
    return [loss, h, c] + grads + params


def test_embedding_lstm_cross_entropy_step_on_toy_gives_the_cpus_numbers():
    cpu, on_toy = _on_both(_lstm_run)
    for i, (a, b) in enumerate(zip(on_toy, cpu)):
        _same(a, b, f"value {i}")


def test_dropout_and_random_fills_draw_on_the_inputs_device():
    def run(where):
        x = torch.ones(4, 50, device=where)
        return [F.dropout(x, 0.5), F.alpha_dropout(x, 0.3, training=True),
                F.rrelu(-x, training=True), torch.bernoulli(x * 0.5),
                torch.multinomial(x[0], 5), torch.empty(3, device=where).uniform_(),
                torch.rand_like(x), torch.normal(torch.zeros(3, device=where), 1.0)]
    cpu, on_toy = _on_both(run)
    for i, (a, b) in enumerate(zip(on_toy, cpu)):
        _same(a, b, f"draw {i}")
    kept = on_toy[0].cpu().numpy()
    assert set(np.unique(kept)) <= {0.0, 2.0} and 0.2 < (kept == 0).mean() < 0.8


# ------------------------------------------------------------------------------ indexing
def _index_ops(where: str):
    a = torch.arange(24.0, device=where).reshape(4, 6).sin()
    i = torch.tensor([3, 0, 3], device=where)
    j = torch.tensor([[0, 2], [1, 1], [3, 0], [2, 3]], device=where)
    m = a > 0
    v = torch.arange(6.0, device=where)
    out = {
        "getitem": a[i], "getitem_2d": a[i, 1:4], "getitem_pair": a[i, i + 1],
        "getitem_negative": a[torch.tensor([-1, 0], device=where)], "mask": a[m],
        "gather": a.gather(1, j), "take": a.take(torch.tensor([[5, -1]], device=where)),
        "take_along_dim": torch.take_along_dim(a, j, 1),
        "scatter": torch.zeros(4, 6, device=where).scatter(1, j, a[:, :2]),
        "scatter_add": a.scatter_add(1, j, a[:, :2]),
        "scatter_reduce_like": a.scatter(1, j, 2.0, reduce="multiply"),
        "index_select": a.index_select(1, i), "index_add": a.index_add(0, i, a[:3]),
        "index_copy": a.index_copy(0, torch.tensor([1, 2], device=where), a[:2] * 2),
        "index_fill": a.index_fill(1, i, -1.0), "masked_fill": a.masked_fill(m, 0.5),
        "masked_select": a.masked_select(m), "masked_scatter": a.masked_scatter(~m, a * 10),
        "put": a.put(torch.tensor([0, 23], device=where), torch.tensor([7.0, 8.0],
                                                                       device=where)),
        "nonzero": m.nonzero(), "argwhere": torch.argwhere(m),
        "tril": a.tril(-1), "triu": a.triu(1), "diag_embed": torch.diag_embed(v[:3], 1),
        "diag": torch.diag(v), "sort_values": a.sort(1).values, "sort_indices": a.sort(1)[1],
        "topk": a.topk(2, 0)[1], "argmax": a.argmax(1), "kthvalue": a.kthvalue(2, 1)[1],
        "median": a.median(1)[1], "mode": a.round().mode(1)[1], "cummax": a.cummax(1)[1],
        "unique": torch.unique(a.round(), return_inverse=True, return_counts=True)[2],
        "searchsorted": torch.searchsorted(v, a), "bucketize": torch.bucketize(a, v[:3]),
        "one_hot": F.one_hot(i, 5), "repeat_interleave": v.repeat_interleave(2),
        "repeat_interleave_tensor": torch.repeat_interleave(v[:3], i.abs()),
        "combinations": torch.combinations(v[:4], 2), "vander": torch.vander(v[:3], 4),
        "histc": torch.histc(a, 5), "bincount": torch.bincount(i),
        "quantile": torch.quantile(a, 0.3, dim=1),
        "embedding_bag": F.embedding_bag(i, a, torch.tensor([0, 1], device=where),
                                         mode="max"),
        "pad_reflect": F.pad(a.reshape(1, 4, 6), (2, 1), mode="reflect"),
        "interpolate_nearest": F.interpolate(a.reshape(1, 1, 4, 6), scale_factor=2),
        "interpolate_bilinear": F.interpolate(a.reshape(1, 1, 4, 6), size=(5, 7),
                                              mode="bilinear"),
        "adaptive_avg": F.adaptive_avg_pool2d(a.reshape(1, 1, 4, 6), (3, 4)),
        "adaptive_max": F.adaptive_max_pool2d(a.reshape(1, 1, 4, 6), (3, 4),
                                              return_indices=True)[1],
        "max_pool_indices": F.max_pool2d(a.reshape(1, 1, 4, 6), 2, return_indices=True)[1],
        "nll_loss": F.nll_loss(a.log_softmax(1), j[:, 0]),
        "multi_margin": F.multi_margin_loss(a, j[:, 1]),
        "multilabel_margin": F.multilabel_margin_loss(a, torch.tensor(
            [[1, 3, -1, 0, 0, 0]] * 4, device=where)),
        "gaussian_nll": F.gaussian_nll_loss(a, a * 0.5, 1.0),
        "sdpa_causal": F.scaled_dot_product_attention(a[None], a[None], a[None],
                                                      is_causal=True),
        "tril_indices": torch.tril_indices(3, 4, device=where),
        "matrix_power_0": torch.linalg.matrix_power(a[:3, :3], 0),
        "square_mask": nn.Transformer.generate_square_subsequent_mask(4, device=where),
    }
    b = a.clone()
    b[i] = 1.5
    b[m] += 2.0
    b[:, torch.tensor([1, 4], device=where)] = torch.tensor([9.0, 8.0], device=where)
    b.fill_diagonal_(0.25)
    out["setitem"] = b
    c = torch.zeros(3, 4, device=where)
    c.index_put_((torch.tensor([0, 2, 0], device=where), torch.tensor([1, 3, 1], device=where)),
                 torch.tensor([1.0, 2.0, 4.0], device=where), accumulate=True)
    out["index_put_accumulate"] = c
    packed = nn.utils.rnn.pack_padded_sequence(a.reshape(4, 3, 2), [3, 1, 2, 2],
                                               batch_first=True, enforce_sorted=False)
    out["packed"] = nn.utils.rnn.pad_packed_sequence(packed, batch_first=True)[0]
    return out


def test_indexing_and_helper_data_ops_on_toy_give_the_cpus_values():
    cpu, on_toy = _on_both(_index_ops)
    failed = []
    for name in cpu:
        try:
            _same(on_toy[name], cpu[name], name)
        except AssertionError as e:
            failed.append(f"{name}: {str(e).splitlines()[0]}")
    assert not failed, "\n".join(failed)


def test_index_results_against_numpy_on_toy(rng):
    x = rng.standard_normal((4, 5)).astype(np.float32)
    t = torch.tensor(x, device="toy")
    idx = np.array([2, 0, 3])
    np.testing.assert_array_equal(t[torch.tensor(idx, device="toy")].cpu().numpy(), x[idx])
    np.testing.assert_array_equal(t[torch.tensor(idx)].cpu().numpy(), x[idx])  # a CPU index
    np.testing.assert_array_equal(t.tril().cpu().numpy(), np.tril(x))
    np.testing.assert_array_equal(t.sort(1)[1].cpu().numpy(), np.argsort(x, 1, kind="stable"))
    np.testing.assert_array_equal(t[t > 0].cpu().numpy(), x[x > 0])
    np.testing.assert_array_equal(torch.nonzero(t > 0).cpu().numpy(), np.argwhere(x > 0))
    g = t.gather(1, torch.tensor([[4], [0], [1], [2]], device="toy"))
    np.testing.assert_array_equal(g.cpu().numpy(), x[np.arange(4), [4, 0, 1, 2]][:, None])


def test_index_devices_follow_pytorch():
    t, c = torch.ones(3, 3, device="toy"), torch.ones(3, 3)
    assert t[torch.tensor([0, 2])].device == TOY          # CPU indices index any device
    with pytest.raises(RuntimeError, match=r"indices should be either on cpu or on the same "
                                           r"device as the indexed tensor \(cpu\)"):
        c[torch.tensor([0, 2], device="toy")]
    with pytest.raises(RuntimeError, match=BOTH):
        c.gather(0, torch.zeros(1, 3, dtype=torch.int64, device="toy"))
    with pytest.raises(RuntimeError, match=BOTH):
        torch.take_along_dim(t, torch.zeros(1, 3, dtype=torch.int64), 0)
    with pytest.raises(RuntimeError, match=BOTH):
        torch.take(c, torch.tensor([1], device="toy"))
    with pytest.raises(RuntimeError, match=BOTH):
        c.masked_select(torch.ones(3, 3, dtype=torch.bool, device="toy"))


def test_writes_through_indices_take_values_from_the_cpu_as_pytorch(toy):
    t = torch.zeros(2, 3, device="toy")
    t[0] = [1.0, 2.0, 3.0]                                   # a list: made on t's device
    t[1, 1:] = torch.tensor([5.0, 6.0])                      # a basic index copies across
    t[torch.tensor([1]), 0] = torch.tensor(4.0)              # a 0-d CPU value is a scalar
    t[t > 5] = torch.tensor(-1.0)
    t.index_put_((torch.tensor([0]),), torch.tensor(0.5), accumulate=True)
    assert t.device == TOY
    np.testing.assert_array_equal(t.cpu().numpy(), [[1.5, 2.5, 3.5], [4.0, 5.0, -1.0]])
    with pytest.raises(RuntimeError, match=BOTH):
        t[torch.tensor([0, 1]), 0] = torch.tensor([7.0, 8.0])   # index_put_: no copy


# ------------------------------------------------------------------------------ in place
def test_in_place_writes_keep_the_tensors_device():
    t = torch.arange(4.0, device="toy")
    t.zero_()
    assert t.device == TOY
    t.fill_(2.5)
    assert t.device == TOY
    t.fill_(torch.tensor(1.5))                           # a 0-d CPU value
    assert t.device == TOY and t.tolist() == [1.5] * 4
    t.copy_(torch.tensor([1.0, 2.0, 3.0, 4.0]))          # copy_ across devices, as PyTorch's
    assert t.device == TOY and t.tolist() == [1.0, 2.0, 3.0, 4.0]
    c = torch.zeros(4)
    c.copy_(t * 2)
    assert c.device == torch.device("cpu") and c.tolist() == [2.0, 4.0, 6.0, 8.0]
    w = torch.empty(3, 4, device="toy")
    nn.init.xavier_uniform_(w)
    assert w.device == TOY and np.isfinite(w.cpu().numpy()).all()


def test_gradients_of_a_copy_reach_the_source_device():
    x = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    t = torch.zeros(3, device="toy")
    t.copy_(x)
    (t * t).sum().backward()
    assert x.grad.device == torch.device("cpu")
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, -4.0, 6.0])


# ------------------------------------------------------------------------------ the 0-d rule
def test_a_0d_cpu_tensor_combines_with_a_toy_tensor_as_a_scalar():
    x = np.array([1.0, -2.0, 3.0], np.float32)
    t = torch.tensor(x, device="toy")
    s = torch.tensor(2.0)
    cases = [(t + s, x + 2), (s * t, 2 * x), (s - t, 2 - x), (t / s, x / 2), (t ** s, x ** 2),
             (torch.maximum(t, s), np.maximum(x, 2)), (torch.where(t > 0, t, s),
                                                       np.where(x > 0, x, 2)),
             (torch.where(torch.tensor(True), t, 0.0), x), (t > s, x > 2),
             (t.lerp(t * 3, s * 0.25), x + 0.5 * (3 * x - x)),
             (t + torch.tensor(1, dtype=torch.int64), x + 1)]
    for got, want in cases:
        assert got.device == TOY
        np.testing.assert_array_equal(got.numpy(), want)
    # promotion as a 0-d tensor's: a float one lifts an int64 tensor to the default float
    ints = torch.tensor([1, 2], device="toy") + torch.tensor(1.5)
    assert (t + s).dtype == torch.float32 and ints.dtype == torch.float32
    assert ints.cpu().tolist() == [2.5, 3.5]


def test_a_0d_cpu_tensors_gradient_comes_back_to_the_cpu():
    x = np.array([1.0, -2.0, 3.0])
    t = torch.tensor(x, device="toy", requires_grad=True)
    s = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    (t * s).sin().sum().backward()                     # d/ds = sum(x cos(x s))
    assert s.grad.device == torch.device("cpu") and t.grad.device == TOY
    np.testing.assert_allclose(s.grad.item(), (x * np.cos(x * 0.5)).sum(), rtol=1e-14)
    np.testing.assert_allclose(t.grad.numpy(), 0.5 * np.cos(x * 0.5), rtol=1e-14)


@pytest.mark.parametrize("make", [
    lambda: torch.ones(3, device="toy") + torch.ones(1),             # 1-d, one element
    lambda: torch.ones(3, device="toy") * torch.ones(3),
    lambda: torch.tensor(1.0, device="toy") + torch.ones(3),         # a 0-d toy tensor
    lambda: torch.where(torch.ones(3, dtype=torch.bool), torch.ones(3, device="toy"), 0.0),
    lambda: torch.ones(2, device="toy") @ torch.ones(2),
], ids=["one_element", "same_shape", "0d_toy", "where_cond", "matmul"])
def test_other_mixes_still_raise_at_the_op(make):
    with pytest.raises(RuntimeError, match=BOTH):
        make()


# ------------------------------------------------------------------------------ save / load
def _roundtrip(obj, **kw):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, **kw), buf


def test_save_keeps_devices_and_load_puts_them_back(rng):
    w = rng.standard_normal((3, 2)).astype(np.float32)
    obj = {"w": torch.tensor(w, device="toy") * 2, "p": nn.Parameter(torch.ones(2, device="toy")),
           "c": torch.arange(3)}
    back, buf = _roundtrip(obj)
    assert [str(back[k].device) for k in "wpc"] == ["toy:0", "toy:0", "cpu"]
    np.testing.assert_array_equal(back["w"].numpy(), w * 2)
    assert isinstance(back["p"], nn.Parameter) and back["p"].requires_grad
    assert back["p"].grad_fn is None                                 # a leaf
    maps = {"cpu": ["cpu"] * 3, torch.device("toy"): ["toy:0"] * 3,
            "toy:0": ["toy:0"] * 3, "toy": ["toy:0"] * 3,
            "dict_to_cpu": ["cpu"] * 3, "dict_to_toy": ["toy:0"] * 3,
            "fn_none": ["toy:0", "toy:0", "cpu"], "fn_tensor": ["cpu"] * 3}
    args = {"dict_to_cpu": {"toy:0": "cpu"}, "dict_to_toy": {"cpu": torch.device("toy")},
            "fn_none": lambda t, loc: None, "fn_tensor": lambda t, loc: t}
    seen = []
    for ml, want in maps.items():
        buf.seek(0)
        m = args.get(ml, ml) if isinstance(ml, str) else ml
        if ml == "fn_tensor":
            m = lambda t, loc: seen.append(loc) or t      # noqa: E731
        got = torch.load(buf, map_location=m)
        assert [str(got[k].device) for k in "wpc"] == want, ml
        np.testing.assert_array_equal(got["w"].cpu().numpy(), w * 2)
        assert got["p"].requires_grad and got["p"].grad_fn is None
    assert sorted(seen) == ["cpu", "toy:0", "toy:0"]


def test_a_checkpoint_from_a_device_no_backend_serves_needs_a_map_location():
    raw = zip_checkpoint(tensor_pickle(location="npu:0", numel=2, size=(2,)),
                         {"0": np.ones(2, np.float32).tobytes()})
    with pytest.raises(RuntimeError, match="npu:0.*map_location='cpu'"):
        torch.load(io.BytesIO(raw))
    for ml, where in (("cpu", "cpu"), ("toy", "toy:0"), ({"npu:0": "toy:0"}, "toy:0")):
        got = torch.load(io.BytesIO(raw), map_location=ml)
        assert str(got.device) == where and got.cpu().tolist() == [1.0, 1.0]


def test_pytorch_reads_a_toy_checkpoint_with_map_location_cpu():
    pt = pytest.importorskip("torch")
    if pt is torch:
        pytest.skip("torch is lazytorch here")
    buf = io.BytesIO()
    torch.save({"w": torch.arange(4.0, device="toy") * 0.5}, buf)
    buf.seek(0)
    got = pt.load(buf, map_location="cpu")["w"]
    assert got.tolist() == [0.0, 0.5, 1.0, 1.5] and str(got.device) == "cpu"


def test_state_dicts_round_trip_onto_a_model_on_toy():
    torch.manual_seed(0)
    src = nn.Linear(3, 2)
    dst = nn.Linear(3, 2).to("toy")
    dst.load_state_dict(torch.load(io.BytesIO(_saved(src.state_dict()))))
    assert all(p.device == TOY for p in dst.parameters())
    x = torch.randn(4, 3)
    _same(dst(x.to("toy")), src(x), "output")


def _saved(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_pickling_keeps_the_device():
    t = torch.tensor([1.0, 2.0], device="toy") * 3
    back = pickle.loads(pickle.dumps(t))
    assert back.device == TOY and back.tolist() == [3.0, 6.0]
    p = pickle.loads(pickle.dumps(nn.Parameter(torch.ones(2, device="toy"))))
    assert p.device == TOY and p.requires_grad
    assert pickle.loads(pickle.dumps(torch.ones(2))).device == torch.device("cpu")


# ------------------------------------------------------------------------------ default device
def test_the_default_device_places_creation():
    assert torch.get_default_device() == torch.device("cpu")
    try:
        torch.set_default_device("toy")
        assert torch.get_default_device() == TOY
        made = [torch.zeros(2), torch.ones(2), torch.tensor([1.0]), torch.arange(3),
                torch.randn(2), torch.full((2,), 3.0), torch.eye(2), torch.empty(1),
                torch.linspace(0, 1, 3), torch.tril_indices(2, 2), nn.Linear(2, 2).weight]
        assert all(t.device == TOY for t in made)
        assert torch.zeros(2, device="cpu").device == torch.device("cpu")
    finally:
        torch.set_default_device(None)
    assert torch.get_default_device() == torch.device("cpu")
    assert torch.zeros(2).device == torch.device("cpu")
    with torch.device("toy"):
        assert torch.ones(3).device == TOY
    assert torch.ones(3).device == torch.device("cpu")
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda, toy device type"):
        torch.set_default_device("tpu")
    assert torch.get_default_device() == torch.device("cpu")


# ------------------------------------------------------------------------------ the rest
def test_optimizer_state_scheduler_and_grad_scaler_on_toy():
    w = nn.Parameter(torch.ones(3, device="toy"))
    opt = optim.NAdam([w], lr=0.1)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=5)
    scaler = torch.amp.GradScaler("toy", init_scale=4.0)
    for _ in range(2):
        opt.zero_grad()
        scaler.scale((w * w).sum()).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
    assert w.device == TOY and all(v.device == TOY for v in opt.state[w].values()
                                   if isinstance(v, torch.Tensor))
    lbfgs_w = nn.Parameter(torch.tensor([3.0, -1.0], device="toy"))
    lbfgs = optim.LBFGS([lbfgs_w], lr=1, max_iter=20)

    def closure():
        lbfgs.zero_grad()
        loss = ((lbfgs_w - 1.0) ** 2).sum()
        loss.backward()
        return loss
    lbfgs.step(closure)
    np.testing.assert_allclose(lbfgs_w.detach().numpy(), [1.0, 1.0], atol=1e-5)
    avg = optim.swa_utils.AveragedModel(nn.Linear(2, 1), device="toy")
    assert all(p.device == TOY for p in avg.parameters()) and avg.n_averaged.device == TOY


def test_a_param_group_on_two_devices_updates_each_on_its_own():
    a, b = nn.Parameter(torch.ones(2, device="toy")), nn.Parameter(torch.ones(2))
    opt = optim.Adam([a, b], lr=0.1)
    ((a * 2).sum() + (b * 2).cpu().sum()).backward()
    opt.step()
    assert a.device == TOY and b.device == torch.device("cpu")
    np.testing.assert_allclose(a.detach().numpy(), [0.9, 0.9], rtol=1e-6)
    np.testing.assert_allclose(b.detach().numpy(), [0.9, 0.9], rtol=1e-6)


def test_packed_sequences_follow_their_data():
    x = torch.arange(12.0).reshape(3, 2, 2)
    packed = nn.utils.rnn.pack_padded_sequence(x, [2, 1, 2], batch_first=True,
                                               enforce_sorted=False).to("toy")
    assert packed.data.device == TOY and packed.sorted_indices.device == TOY
    assert packed.batch_sizes.device == torch.device("cpu")      # as in PyTorch
    out, lengths = nn.utils.rnn.pad_packed_sequence(packed, batch_first=True)
    assert out.device == TOY and lengths.device == torch.device("cpu")
    want = x.numpy().copy()
    want[1, 1] = 0
    np.testing.assert_array_equal(out.cpu().numpy(), want)
    back = packed.cpu()
    assert back.data.device == torch.device("cpu") == back.unsorted_indices.device


# ------------------------------------------------------------------------------ the sweep
def _rule_case(fn, inputs, where: str):
    """fn's outputs and the gradients of their weighted sum, computed with inputs on `where`
    (and every tensor fn makes there: the default device)."""
    try:
        torch.set_default_device(where)
        ts = [torch.tensor(a, requires_grad=True) for a in inputs]
        out = fn(*ts)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        total = sum((o * (i + 1.5)).sum() for i, o in enumerate(outs))
        grads = torch.autograd.grad(total, ts)
        return outs + list(grads)
    finally:
        torch.set_default_device(None)


def test_every_op_of_the_gradient_rules_list_on_toy():
    """tests/test_autograd_rules.py's CASES (every differentiable op, with broadcasting, views
    and matmul) run on toy: values and gradients equal to the CPU's. Lists what fails."""
    failed = []
    for name, fn, inputs in rules.CASES:
        try:
            cpu = _rule_case(fn, inputs, "cpu")
            on_toy = _rule_case(fn, inputs, "toy")
            assert len(cpu) == len(on_toy)
            for a, b in zip(on_toy, cpu):
                _same(a, b, name)
        except Exception as e:   # noqa: BLE001 - every failure is listed by name
            failed.append(f"{name}: {type(e).__name__}: {str(e).splitlines()[0][:150]}")
    assert not failed, f"{len(failed)} of {len(rules.CASES)} ops fail on toy:\n" + \
        "\n".join(failed)
    assert len(rules.CASES) > 100
