"""examples/quickstart.py --quick, the README's main command in its CI form: it trains, writes a
loadable checkpoint and a PNG, and reaches the accuracy it asserts (85% after 3 epochs)."""
from __future__ import annotations

import re

import pytest

import lazytorch as torch
from tests.example_runner import PNG_MAGIC, run_example


def test_quickstart_quick(tmp_path):
    r = run_example("quickstart", tmp_path, "--quick")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    acc = float(re.search(r"^test accuracy ([\d.]+)% after 3 epochs", r.stdout, re.M).group(1))
    assert acc >= 85.0
    assert re.search(r"time per step [\d.]+ ms \(median\)", r.stdout)
    assert re.search(r"plan-cache hits \d+ of \d+ realizes", r.stdout)
    assert "epoch  3" in r.stderr            # the progress bar, on stderr as tqdm writes it
    png = tmp_path / "quickstart.png"
    assert png.read_bytes()[:8] == PNG_MAGIC
    state = torch.load(tmp_path / "digits_cnn.pt")
    assert set(state) == {"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
                          "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
    assert tuple(state["conv2.weight"].shape) == (32, 16, 3, 3)


def test_quickstart_cuda_fails_clearly_without_a_gpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    r = run_example("quickstart", tmp_path, "--quick", "--device", "cuda", timeout=120)
    assert r.returncode != 0
    assert "Torch not compiled with CUDA enabled" in r.stderr
