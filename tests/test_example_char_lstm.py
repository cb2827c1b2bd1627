"""examples/char_lstm.py --quick: the character-level LSTM trains in a subprocess, its validation
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


def test_char_lstm_quick(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "examples/char_lstm.py", "--quick", "--out",
                        str(tmp_path)], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    m = re.search(r"final train loss ([\d.]+) val loss ([\d.]+) \(unigram ([\d.]+), "
                  r"uniform ([\d.]+)\)", r.stdout)
    assert m, r.stdout[-3000:]
    train, val, unigram, uniform = map(float, m.groups())
    lstm = _example("char_lstm")
    assert val < unigram - lstm.QUICK_MARGIN < uniform
    assert train < unigram - lstm.QUICK_MARGIN
    assert re.search(r"time per step [\d.]+ ms \(median\)", r.stdout)
    assert re.search(r"kernels compiled \d+, plan-cache hits \d+", r.stdout)
    assert r.stdout.count("sample: ") >= 2    # samples printed as it learns

    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    state = torch.load(tmp_path / "ckpt.pt")
    args = lstm.parse_args(["--quick"])
    assert args.nlayers == 1
    # PyTorch's names for an Embedding, a one-layer LSTM and a Linear
    assert set(state) == {"encoder.weight", "rnn.weight_ih_l0", "rnn.weight_hh_l0",
                          "rnn.bias_ih_l0", "rnn.bias_hh_l0", "decoder.weight", "decoder.bias"}
    vocab_size = state["decoder.weight"].shape[0]
    assert state["rnn.weight_ih_l0"].shape == (4 * args.nhid, args.emsize)
    model = lstm.CharLSTM(vocab_size, args.emsize, args.nhid, args.nlayers)
    model.load_state_dict(state)
