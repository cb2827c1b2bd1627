"""Whole training runs: parity with PyTorch, checkpoints, worker data loading, the plan cache.

The parity tests (PyTorch importable) build the same model in both libraries from identical
weights, train 20 steps with the same data, optimizer and LR scheduler, and compare every loss
and the final weights. The training code is written once and run with either module as `torch`,
which is itself the check that a PyTorch script runs unchanged. The other tests need no PyTorch.
"""
from __future__ import annotations

import io
import os
import re
import runpy
from pathlib import Path

import numpy as np
import pytest

import lazytorch
import lazytorch.nn  # noqa: F401  (binds lazytorch.nn, as `import torch` binds torch.nn)
import lazytorch.optim  # noqa: F401
import lazytorch.utils.data  # noqa: F401
from lazytorch import debug

STEPS = 20


def train(torch, model, optimizer, scheduler, batches, criterion, steps: int = STEPS) -> list:
    """A standard training loop, for `torch` = PyTorch or lazytorch: the loss at each step."""
    losses = []
    model.train()
    for step in range(steps):
        x, y = batches[step % len(batches)]
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return losses


def copy_weights(src, dst) -> None:
    """Load a PyTorch module's state (parameters and buffers) into a lazytorch module."""
    state = {k: lazytorch.tensor(v.detach().cpu().numpy()) for k, v in src.state_dict().items()}
    dst.load_state_dict(state)


def to_batches(torch, xs, ys, dtype: str):
    """numpy arrays -> list of (input, target) tensors; integer targets stay int64."""
    fdt = getattr(torch, dtype)
    return [(torch.tensor(x, dtype=fdt), torch.tensor(y) if y.dtype.kind == "i" else
             torch.tensor(y, dtype=fdt)) for x, y in zip(xs, ys)]


def assert_losses_close(got, want, dtype: str, base: float | None = None) -> None:
    """Per-step relative tolerance that grows with the step (rounding differences compound)."""
    got, want = np.asarray(got), np.asarray(want)
    base = base if base is not None else (1e-10 if dtype == "float64" else 1e-5)
    rtol = base * (1 + np.arange(len(want)) / 2)
    err = np.abs(got - want) / np.maximum(np.abs(want), 1e-12)
    assert np.all(err <= rtol), f"step {int(np.argmax(err > rtol))}: {got} vs {want}"


def assert_state_close(tmodel, lmodel, rtol: float, atol: float) -> None:
    want = {k: v.detach().numpy() for k, v in tmodel.state_dict().items()}
    got = {k: v.detach().numpy() for k, v in lmodel.state_dict().items()}
    assert list(got) == list(want)
    for k in want:
        assert got[k].shape == want[k].shape, k
        np.testing.assert_allclose(got[k], want[k], rtol=rtol, atol=atol, err_msg=k)


def mlp(torch):
    nn = torch.nn
    return nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(),
                         nn.Linear(32, 5))


def cnn(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(16 * 2 * 2, 10))


def lstm_regressor(torch):
    class Regressor(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(4, 16, batch_first=True)
            self.head = torch.nn.Linear(16, 1)

        def forward(self, x):
            out, (h, c) = self.lstm(x)
            return self.head(out[:, -1])
    return Regressor()


# (optimizer, its options, scheduler, its options): each combination is one parity run
OPTIMIZERS = {
    "sgd": ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
            "StepLR", dict(step_size=5, gamma=0.5)),
    "adam": ("Adam", dict(lr=1e-2, betas=(0.9, 0.99)),
             "OneCycleLR", dict(max_lr=0.02, total_steps=STEPS)),
    "adamw": ("AdamW", dict(lr=1e-2, weight_decay=0.1, amsgrad=True),
              "CosineAnnealingLR", dict(T_max=STEPS, eta_min=1e-4)),
    "rmsprop": ("RMSprop", dict(lr=1e-3, alpha=0.9, centered=True, momentum=0.5,
                                weight_decay=1e-4), "StepLR", dict(step_size=7, gamma=0.3)),
    "adagrad": ("Adagrad", dict(lr=0.05, lr_decay=1e-2, weight_decay=1e-3,
                                initial_accumulator_value=0.1),
                "CosineAnnealingLR", dict(T_max=10)),
}


def parity_run(torch_mod, build, opt_key: str, xs, ys, criterion: str, dtype: str):
    """Train the same model in both libraries; return (pytorch model, lazytorch model, losses)."""
    opt_name, opt_kw, sched_name, sched_kw = OPTIMIZERS[opt_key]
    torch_mod.manual_seed(0)
    models = [build(mod).to(getattr(mod, dtype)) for mod in (torch_mod, lazytorch)]
    copy_weights(*models)
    runs = []
    for mod, model in zip((torch_mod, lazytorch), models):
        opt = getattr(mod.optim, opt_name)(model.parameters(), **opt_kw)
        sched = getattr(mod.optim.lr_scheduler, sched_name)(opt, **sched_kw)
        losses = train(mod, model, opt, sched, to_batches(mod, xs, ys, dtype),
                       getattr(mod.nn, criterion)())
        runs.append((model, losses, [g["lr"] for g in opt.param_groups]))
    (tm, tl, tlr), (lm, ll, llr) = runs
    np.testing.assert_allclose(llr, tlr, rtol=1e-12)     # the schedulers agree
    n = len(xs)
    assert all(np.isfinite(ll)) and np.mean(ll[-n:]) < np.mean(ll[:n])    # it trains
    return tm, lm, tl, ll


@pytest.fixture(scope="module")
def classification_data():
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((4, 16, 8))
    ys = np.argmax(xs @ rng.standard_normal((8, 5)), axis=-1)     # learnable labels
    return xs, ys


@pytest.mark.parametrize("opt_key", list(OPTIMIZERS))
def test_mlp_parity(opt_key, classification_data):
    torch = pytest.importorskip("torch")
    tm, lm, tl, ll = parity_run(torch, mlp, opt_key, *classification_data, "CrossEntropyLoss",
                                "float64")
    assert_losses_close(ll, tl, "float64")
    assert_state_close(tm, lm, rtol=1e-9, atol=1e-12)


def test_mlp_parity_float32(classification_data):
    torch = pytest.importorskip("torch")
    tm, lm, tl, ll = parity_run(torch, mlp, "adam", *classification_data, "CrossEntropyLoss",
                                "float32")
    assert lm[0].weight.dtype == lazytorch.float32
    assert_losses_close(ll, tl, "float32")
    assert_state_close(tm, lm, rtol=1e-4, atol=1e-5)


def test_cnn_parity():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((2, 8, 3, 12, 12))
    ys = rng.integers(0, 10, (2, 8))
    tm, lm, tl, ll = parity_run(torch, cnn, "adam", xs, ys, "CrossEntropyLoss", "float32")
    assert_losses_close(ll, tl, "float32", base=1e-4)
    # BatchNorm's running statistics and step count followed the same 20 batches
    assert_state_close(tm, lm, rtol=1e-3, atol=1e-4)
    assert int(lm[1].num_batches_tracked.item()) == STEPS
    # eval mode normalizes with the running statistics in both
    tm.eval()
    lm.eval()
    x = xs[0]
    want = tm(torch.tensor(x, dtype=torch.float32)).detach().numpy()
    got = lm(lazytorch.tensor(x, dtype=lazytorch.float32)).detach().numpy()
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


def test_lstm_parity():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    xs = rng.standard_normal((2, 6, 4, 4))            # batches of 6 sequences of length 4
    ys = xs.sum(axis=(2, 3))[..., None] / 4            # a learnable target
    tm, lm, tl, ll = parity_run(torch, lstm_regressor, "adamw", xs, ys, "MSELoss", "float64")
    assert_losses_close(ll, tl, "float64")
    assert_state_close(tm, lm, rtol=1e-9, atol=1e-12)


# --- without PyTorch ------------------------------------------------------------------------

def _checkpoint_model(torch):
    nn = torch.nn
    return nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.0),
                         nn.Linear(16, 3))


def _fixed_batches(n: int = 3):
    rng = np.random.default_rng(3)
    return [(lazytorch.tensor(rng.standard_normal((8, 6)), dtype=lazytorch.float32),
             lazytorch.tensor(rng.integers(0, 3, 8))) for _ in range(n)]


@pytest.mark.parametrize("target", ["path", "file"])
def test_checkpoint_round_trip(target, tmp_path):
    torch = lazytorch
    batches = _fixed_batches()
    criterion = torch.nn.CrossEntropyLoss()
    torch.manual_seed(0)
    model = _checkpoint_model(torch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2, amsgrad=True)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    train(torch, model, opt, sched, batches, criterion, steps=3)

    ckpt = {"model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "epoch": 3, "note": "after 3 steps"}
    f = tmp_path / "ckpt.pt" if target == "path" else io.BytesIO()
    torch.save(ckpt, f)
    if target == "file":
        f.seek(0)

    torch.manual_seed(1)                                  # different initial weights
    model2 = _checkpoint_model(torch)
    assert not np.array_equal(model2[0].weight.detach().numpy(), model[0].weight.detach().numpy())
    opt2 = torch.optim.Adam(model2.parameters(), lr=1e-2, amsgrad=True)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, step_size=2, gamma=0.5)
    loaded = torch.load(f, map_location="cpu")
    assert loaded["epoch"] == 3 and loaded["note"] == "after 3 steps"
    model2.load_state_dict(loaded["model"])
    opt2.load_state_dict(loaded["optimizer"])
    sched2.load_state_dict(loaded["scheduler"])
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]

    # bit for bit: every tensor of the state, and the outputs in both modes
    for (k, a), (k2, b) in zip(model.state_dict().items(), model2.state_dict().items()):
        assert k == k2 and a.dtype == b.dtype
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    x = batches[0][0]
    for mode in ("train", "eval"):
        getattr(model, mode)()
        getattr(model2, mode)()
        np.testing.assert_array_equal(model(x).detach().numpy(), model2(x).detach().numpy())

    # training goes on identically: same losses, same weights, same optimizer state
    more = _fixed_batches(4)[1:]
    la = train(torch, model, opt, sched, more, criterion, steps=4)
    lb = train(torch, model2, opt2, sched2, more, criterion, steps=4)
    assert la == lb
    for a, b in zip(model.state_dict().values(), model2.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    sa, sb = opt.state_dict()["state"], opt2.state_dict()["state"]
    assert sa.keys() == sb.keys()
    for i in sa:
        assert sa[i].keys() == sb[i].keys()
        for key in sa[i]:
            np.testing.assert_array_equal(_value(sa[i][key]), _value(sb[i][key]), err_msg=key)


def _value(v):
    return v.numpy() if isinstance(v, lazytorch.Tensor) else np.asarray(v)


class SquaresDataset(lazytorch.utils.data.Dataset):
    """Samples computed on access (as a real dataset decoding files would be), as dicts."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        return {"x": np.full(3, i, dtype=np.float32), "y": i * i, "name": f"s{i}"}


def test_dataloader_workers_match_single_process():
    from lazytorch.utils.data import DataLoader, TensorDataset
    data = lazytorch.arange(60, dtype=lazytorch.float32).reshape(30, 2)
    labels = lazytorch.arange(30)
    for dataset in (TensorDataset(data, labels), SquaresDataset(30)):
        runs = []
        for workers in (0, 2):
            g = lazytorch.Generator().manual_seed(1234)
            loader = DataLoader(dataset, batch_size=4, shuffle=True, drop_last=True,
                                num_workers=workers, generator=g)
            runs.append([_as_numpy(b) for epoch in range(2) for b in loader])
        single, multi = runs
        assert len(single) == 2 * (30 // 4)
        assert _equal(single, multi)
        # seeded shuffling: not the identity order, the two epochs differ
        first = single[0][0] if isinstance(single[0], list) else single[0]["x"][:, 0]
        assert not np.array_equal(np.asarray(first).ravel()[:4], np.arange(4))
        assert not _equal(single[:7], single[7:])


class WhoLoads(lazytorch.utils.data.Dataset):
    """Each sample says which process and worker produced it."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int):
        info = lazytorch.utils.data.get_worker_info()
        return [i, os.getpid(), -1 if info is None else info.id]


class ComputesInWorker(lazytorch.utils.data.Dataset):
    """Samples that run kernels big enough for OpenMP threads (as augmentations would)."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        x = lazytorch.arange(256 * 256, dtype=lazytorch.float64).reshape(256, 256) + i
        return float((x * 3 + 1).sqrt().numpy().sum())        # an elementwise kernel, realized


def test_dataloader_workers_run_kernels_after_parent_threads():
    """Kernels in forked workers work after the parent used its OpenMP threads (a forked child
    cannot use the parent's thread pool: the workers run single-threaded, as PyTorch's do)."""
    from lazytorch.utils.data import DataLoader
    big = lazytorch.arange(512 * 512, dtype=lazytorch.float64).reshape(512, 512)
    (big * 2 + 1).sqrt().numpy()                              # a parallel kernel in the parent
    loader = DataLoader(ComputesInWorker(), batch_size=2, num_workers=2, timeout=60)
    got = np.concatenate([b.numpy() for b in loader])
    x = np.arange(256 * 256, dtype=np.float64)
    want = [np.sqrt((x + i) * 3 + 1).sum() for i in range(4)]
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_dataloader_workers_are_processes():
    from lazytorch.utils.data import DataLoader
    rows = [b for b in DataLoader(WhoLoads(), batch_size=2, num_workers=2)]
    idx = np.concatenate([r[0].numpy() for r in rows])
    pids = {int(p) for r in rows for p in r[1].numpy()}
    workers = {int(w) for r in rows for w in r[2].numpy()}
    assert idx.tolist() == list(range(8))
    assert os.getpid() not in pids and len(pids) == 2 and workers == {0, 1}


def _as_numpy(batch):
    if isinstance(batch, dict):
        return {k: _as_numpy(v) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return [_as_numpy(v) for v in batch]
    return batch.numpy() if isinstance(batch, lazytorch.Tensor) else batch


def _equal(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


@pytest.mark.parametrize("opt_key", ["sgd", "adamw"])
def test_training_steps_reuse_the_plan(opt_key):
    torch = lazytorch
    opt_name, opt_kw, sched_name, sched_kw = OPTIMIZERS[opt_key]
    torch.manual_seed(0)
    model = mlp(torch)
    opt = getattr(torch.optim, opt_name)(model.parameters(), **opt_kw)
    sched = getattr(torch.optim.lr_scheduler, sched_name)(opt, **sched_kw)
    rng = np.random.default_rng(4)
    criterion = torch.nn.CrossEntropyLoss()
    compiled = []
    debug.reset_stats()
    for _ in range(STEPS):
        # fresh data each step, as from a DataLoader; the lr changes (scheduler)
        x = torch.tensor(rng.standard_normal((16, 8)), dtype=torch.float32)
        y = torch.tensor(rng.integers(0, 5, 16))
        opt.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        opt.step()
        sched.step()
        loss.item()
        compiled.append(debug.stats()["kernels_compiled"])
    assert compiled[2:] == [compiled[1]] * (STEPS - 2), compiled
    assert debug.stats()["plan_cache_hits"] >= STEPS - 2


def test_example_train_mlp_runs(capsys):
    """examples/train_mlp.py, a complete training script, runs and learns."""
    path = Path(__file__).resolve().parent.parent / "examples" / "train_mlp.py"
    runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out.splitlines()
    rows = [re.match(r"epoch +(\d+) +train loss ([\d.]+) +val loss ([\d.]+) +val acc ([\d.]+)",
                     line) for line in out[:-1]]
    assert all(rows), out
    train_losses = [float(m.group(2)) for m in rows]
    assert train_losses[-1] < 0.5 * train_losses[0]
    assert float(rows[-1].group(4)) >= 0.9
    assert out[-1].endswith("identical predictions: True")
