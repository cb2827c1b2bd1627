"""The scripts of examples/seed/ (SEED.md's snippets with only the import changed) run as a user
runs them, `python examples/seed/<name>.py` in a fresh process, and print what each snippet
computes: the numbers are checked against numpy references built here from the draws a fresh
process makes (PyTorch's default seed)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np

import lazytorch
from tests.test_seed import DEFAULT_SEED, ROOT, SECTIONS, _numpy_sgd_losses, script

FLOAT = r"-?\d+\.\d*(?:e[-+]?\d+)?"


def run(name: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(script(name).relative_to(ROOT))], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)


def floats(text: str) -> np.ndarray:
    return np.array([float(v) for v in re.findall(FLOAT, text)])


def fresh_draws(*shapes, linear: tuple[int, int] | None = None):
    """The draws of a fresh process: a Linear's init (when given) first, then randn(*shape)s."""
    lazytorch.manual_seed(DEFAULT_SEED)
    out = []
    if linear is not None:
        fc = lazytorch.nn.Linear(*linear)
        out += [fc.weight.detach().numpy().astype(np.float64),
                fc.bias.detach().numpy().astype(np.float64)]
    out += [lazytorch.randn(*s).numpy().astype(np.float64) for s in shapes]
    return out


def test_every_snippet_has_a_test():
    tested = {n[len("test_"):] for n in globals() if n.startswith("test_")}
    assert set(SECTIONS) <= tested


def test_tensors():
    r = run("tensors")
    z = np.array([1, 2, 3]) + np.array([4, 5, 6])
    first = f"tensor({z.tolist()})"
    if lazytorch.cuda.is_available():
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == [first, f"tensor({[1, 2, 3]}, device='cuda:0')"]
    else:
        # the document's `x.to('cuda')` fails as a CUDA-less PyTorch's does, after the first print
        assert r.returncode == 1
        assert r.stdout.splitlines() == [first]
        assert "Torch not compiled with CUDA enabled" in r.stderr.strip().splitlines()[-1], \
            r.stderr
        assert "tensors.py\", line 13" in r.stderr      # the user's line: x_gpu = x.to('cuda')


def test_neural_networks():
    r = run("neural_networks")
    assert r.returncode == 0, r.stderr
    w, b, x = fresh_draws((5, 10), linear=(10, 1))
    ref = x @ w.T + b
    assert r.stdout.startswith("tensor([[") and "grad_fn=<" in r.stdout
    printed = floats(r.stdout.split("grad_fn")[0])
    np.testing.assert_allclose(printed, ref.ravel(), atol=6e-5)     # printed with 4 decimals


def test_training_loop():
    r = run("training_loop")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    m = [re.fullmatch(rf"Epoch (\d+), Loss: ({FLOAT})", ln) for ln in lines]
    assert all(m) and [int(x.group(1)) for x in m] == list(range(0, 100, 10)), lines
    # the script's draws, in its order: X, y, then the Linear's init
    lazytorch.manual_seed(DEFAULT_SEED)
    X, y = lazytorch.randn(100, 10).numpy(), lazytorch.randn(100, 1).numpy()
    fc = lazytorch.nn.Linear(10, 1)
    ref = _numpy_sgd_losses(X.astype(np.float64), y.astype(np.float64),
                            fc.weight.detach().numpy().astype(np.float64),
                            fc.bias.detach().numpy().astype(np.float64))
    np.testing.assert_allclose([float(x.group(2)) for x in m], ref[::10], rtol=1e-5)


def test_autograd():
    r = run("autograd")
    assert r.returncode == 0, r.stderr
    x = 2.0
    assert r.stdout.splitlines() == [f"tensor({2 * x:.0f}.)"]       # d(x^2)/dx = 2x


def test_custom_layers():
    r = run("custom_layers")
    assert r.returncode == 0, r.stderr
    ref = np.array([1.0, 2.0, 3.0]) ** 2
    assert r.stdout.splitlines() == ["tensor([" + ", ".join(f"{v:.0f}." for v in ref) + "])"]


def test_data_loading():
    r = run("data_loading")
    assert r.returncode == 0, r.stderr
    data, labels = fresh_draws((100, 10), (100, 1))
    batches = r.stdout.split("[tensor(")[1:]
    assert len(batches) == 10 and r.stdout.startswith("[tensor([[")
    rows, ys = [], []
    for text in batches:
        values = floats(text)
        assert values.size == 10 * 10 + 10, values.size       # a (10, 10) batch and (10, 1)
        rows.append(values[:100].reshape(10, 10))
        ys.append(values[100:])
    rows, ys = np.concatenate(rows), np.concatenate(ys)
    # every sample once, each printed beside its own label (values printed with 4 decimals)
    order = [int(np.argmin(np.abs(data - row).max(1))) for row in rows]
    assert sorted(order) == list(range(100))
    np.testing.assert_allclose(rows, data[order], atol=6e-5)
    np.testing.assert_allclose(ys, labels[order, 0], atol=6e-5)

