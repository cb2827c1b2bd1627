"""The CUDA backend on a GPU (marked cuda: skipped without one; `pytest -m cuda` runs them).

The op, autograd and nn suites run again with CUDA as the default device (their tensors made
there, their numpy references and finite differences checking what the GPU computed); the
gradient rules' op list, training loops (MLP with three optimizers, CNN with batch norm, an
embedding and LSTM), and the seed document's `.to('cuda')` snippet are compared with the CPU
backend; the device's memory API, pinned copies and the integer-division fault are checked
through pycuda itself.

Kernels on the GPU sum in other orders than the CPU's (warp shuffles, blocks), so values are
compared with tolerances (float32: rtol 1e-4 after a few training steps), not bit for bit.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import lazytorch as torch
from tests import suites
from tests import test_autograd_rules as rules
from tests import test_devices_training as dtrain

pytestmark = pytest.mark.cuda
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# the suites run on the GPU, and how long each may take (compiling every kernel with nvcc
# on an empty cache is most of it)
SUITES = suites.ALL
SUITE_TIMEOUT_S = int(os.environ.get("LT_CUDA_SUITE_TIMEOUT", "240"))


def _close(got, want, name: str, rtol: float = 1e-4, atol: float = 1e-5) -> None:
    """got (on cuda) holds want's values (on the CPU), within float tolerance."""
    assert got.device.type == "cuda", f"{name}: on {got.device}"
    assert want.device == torch.device("cpu"), name
    g, w = got.detach().cpu(), want.detach()
    assert g.dtype == w.dtype and tuple(g.shape) == tuple(w.shape), name
    g = g.float().numpy() if g.dtype == torch.bfloat16 else g.numpy()
    w = w.float().numpy() if w.dtype == torch.bfloat16 else w.numpy()
    if g.dtype.kind in "biu":
        np.testing.assert_array_equal(g, w, err_msg=name)
    else:
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol,
                                   atol=atol, equal_nan=True, err_msg=name)


def _on_both(build):
    out = []
    for where in ("cpu", "cuda"):
        torch.manual_seed(0)
        out.append(build(where))
    return out


@pytest.mark.parametrize("suite", SUITES)
def test_suite_on_cuda(suite):
    """The suite's tests with CUDA as the default device (conftest's LAZYTORCH_TEST_DEVICE)."""
    path = os.path.join(ROOT, suite)
    if not os.path.exists(path):
        pytest.skip(f"{suite} is not in this tree")
    env = dict(os.environ, LAZYTORCH_TEST_DEVICE="cuda")
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "-m", "not cuda", path], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=SUITE_TIMEOUT_S)
    tail = "\n".join(out.stdout.splitlines()[-40:])
    assert out.returncode == 0, f"{suite} on cuda:\n{tail}\n{out.stderr[-2000:]}"


def test_every_op_of_the_gradient_rules_list_matches_the_cpu():
    failed = []
    for name, fn, inputs in rules.CASES:
        try:
            cpu = dtrain._rule_case(fn, inputs, "cpu")
            gpu = dtrain._rule_case(fn, inputs, "cuda")
            assert len(cpu) == len(gpu)
            for a, b in zip(gpu, cpu):
                _close(a, b, name, rtol=1e-6, atol=1e-9)      # (the cases are float64)
        except Exception as e:   # noqa: BLE001 - every failure is listed by name
            failed.append(f"{name}: {type(e).__name__}: {str(e).splitlines()[0][:150]}")
    assert not failed, f"{len(failed)} of {len(rules.CASES)} ops fail on cuda:\n" + \
        "\n".join(failed)


@pytest.mark.parametrize("opt_name", ["adam", "adamw", "sgd"])
def test_mlp_training_matches_the_cpu(opt_name):
    (cpu_losses, cpu_vals), (gpu_losses, gpu_vals) = _on_both(
        lambda w: dtrain._mlp_run(w, opt_name))
    for i, (a, b) in enumerate(zip(gpu_losses, cpu_losses)):
        _close(a, b, f"loss {i}")
    assert len(gpu_vals) == len(cpu_vals) > 4
    for i, (a, b) in enumerate(zip(gpu_vals, cpu_vals)):
        _close(a, b, f"parameter or state {i}")


def test_cnn_training_matches_the_cpu():
    cpu, gpu = _on_both(dtrain._cnn_run)
    for i, (a, b) in enumerate(zip(gpu, cpu)):
        _close(a, b, f"value {i}", rtol=1e-3, atol=1e-4)


def test_embedding_lstm_step_matches_the_cpu():
    cpu, gpu = _on_both(dtrain._lstm_run)
    for i, (a, b) in enumerate(zip(gpu, cpu)):
        _close(a, b, f"value {i}", rtol=1e-4, atol=1e-5)


def test_the_seed_snippet_moves_a_tensor_to_the_gpu():
    from tests.test_seed import TENSORS, run_snippet
    ns, lines, _ = run_snippet(TENSORS)
    assert lines == ["tensor([5, 7, 9])", "tensor([1, 2, 3], device='cuda:0')"]
    assert ns["x_gpu"].is_cuda


def test_a_seed_training_loop_with_to_cuda():
    """The README's loop, moved to the GPU as a PyTorch user moves it: the loss falls and the
    final loss matches the same loop on the CPU."""
    def run(where):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(),
                                    torch.nn.Linear(32, 1)).to(where)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        data = torch.utils.data.TensorDataset(torch.randn(100, 10), torch.randn(100, 1))
        loader = torch.utils.data.DataLoader(data, batch_size=10, shuffle=True,
                                             pin_memory=where == "cuda")
        losses = []
        for _ in range(3):
            for x, y in loader:
                x, y = x.to(where, non_blocking=True), y.to(where, non_blocking=True)
                opt.zero_grad()
                loss = torch.nn.functional.mse_loss(model(x), y)
                loss.backward()
                opt.step()
            losses.append(loss)
        return losses
    cpu, gpu = run("cpu"), run("cuda")
    for i, (a, b) in enumerate(zip(gpu, cpu)):
        _close(a, b, f"epoch {i}", rtol=1e-3, atol=1e-5)


def test_device_queries_and_memory_on_the_gpu():
    import pycuda.driver as drv
    assert torch.cuda.is_available() and torch.cuda.device_count() >= 1
    name = torch.cuda.get_device_name()
    assert name == drv.Device(0).name()
    assert torch.cuda.get_device_capability() == drv.Device(0).compute_capability()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    a = torch.tensor(np.ones(1 << 20, np.float32), device="cuda")       # 4 MiB
    assert torch.cuda.memory_allocated() == base + 4 * 2 ** 20
    free_before = torch.cuda.mem_get_info()[0]
    del a
    assert torch.cuda.memory_allocated() == base
    torch.cuda.empty_cache()
    assert torch.cuda.mem_get_info()[0] > free_before        # the block went back to the driver


def test_pinned_copies_and_the_division_fault_on_the_gpu():
    x = torch.arange(1 << 16, dtype=torch.float32)
    p = x.pin_memory()
    assert p.is_pinned()
    np.testing.assert_array_equal(p.cuda().cpu().numpy(), x.numpy())
    a = torch.tensor([4, 5, 6], device="cuda")
    b = torch.tensor([2, 0, 3], device="cuda")
    with pytest.raises(Exception) as gpu_err:
        (a // b).tolist()
    with pytest.raises(Exception) as cpu_err:
        (a.cpu() // b.cpu()).tolist()
    assert type(gpu_err.value) is type(cpu_err.value)
    assert (a // torch.tensor([2, 1, 3], device="cuda")).tolist() == [2, 5, 2]   # cleared
