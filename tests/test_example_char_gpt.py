"""examples/char_gpt.py --quick: the character-level GPT trains in a subprocess, its validation
loss falls below the unigram baseline less the script's margin, and it writes a PNG plot and a
checkpoint holding the model's parameters."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import lazytorch as torch

ROOT = Path(__file__).resolve().parent.parent


def _example(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod   # dataclasses look the module up
    try:
        spec.loader.exec_module(mod)
    finally:
        del sys.modules[name]
    return mod


def test_char_gpt_quick(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "examples/char_gpt.py", "--quick", "--out",
                        str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    m = re.search(r"final train loss ([\d.]+) val loss ([\d.]+) \(unigram ([\d.]+), "
                  r"uniform ([\d.]+)\)", r.stdout)
    assert m, r.stdout[-3000:]
    train, val, unigram, uniform = map(float, m.groups())
    gpt = _example("char_gpt")
    assert val < unigram - gpt.QUICK_MARGIN < uniform
    assert train < unigram - gpt.QUICK_MARGIN
    assert re.search(r"time per step [\d.]+ ms \(median\)", r.stdout)
    assert re.search(r"kernels compiled \d+, plan-cache hits \d+", r.stdout)
    assert r.stdout.count("sample: ") >= 2    # samples printed as it learns

    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    state = torch.load(tmp_path / "ckpt.pt")
    args = gpt.parse_args(["--quick"])
    vocab_size = state["lm_head.weight"].shape[0]
    model = gpt.GPT(gpt.GPTConfig(block_size=args.block_size, vocab_size=vocab_size,
                                  n_layer=args.n_layer, n_head=args.n_head,
                                  n_embd=args.n_embd))
    assert set(state) == set(model.state_dict())
    model.load_state_dict(state)
    # the token embedding and the output layer share one weight
    assert model.transformer.wte.weight is model.lm_head.weight
