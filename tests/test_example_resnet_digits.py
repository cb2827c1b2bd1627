"""examples/resnet_digits.py --quick: a BasicBlock ResNet trained on Digits with RandomCrop
augmentation reaches the accuracy it asserts (70% after 2 epochs) and writes a checkpoint with
the ResNet's keys and a PNG."""
from __future__ import annotations

import re

import lazytorch as torch
from lazytorch.vision import models
from tests.example_runner import PNG_MAGIC, run_example


def test_resnet_digits_quick(tmp_path):
    r = run_example("resnet_digits", tmp_path, "--quick", timeout=400)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    acc = float(re.search(r"^test accuracy ([\d.]+)% after 2 epochs", r.stdout, re.M).group(1))
    assert acc >= 70.0
    assert re.search(r"kernels compiled \d+ .*plan-cache hits \d+ of \d+ realizes", r.stdout)
    assert (tmp_path / "resnet_digits.png").read_bytes()[:8] == PNG_MAGIC
    state = torch.load(tmp_path / "resnet8_digits.pt")
    fresh = models.ResNet(models.BasicBlock, [1, 1, 1], num_classes=10, in_channels=1, width=16,
                          small_input=True)
    assert set(state) == set(fresh.state_dict())
    fresh.load_state_dict(state)      # shapes agree too
    assert int(state["bn1.num_batches_tracked"]) > 0
