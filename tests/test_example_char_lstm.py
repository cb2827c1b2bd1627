"""examples/char_lstm.py --quick: the character-level LSTM trains in a subprocess, its validation
loss falls below the unigram baseline less the script's margin, and it writes a PNG plot and a
checkpoint holding the model's parameters."""
from __future__ import annotations

import lazytorch as torch
from tests.example_runner import run_text_example


def test_char_lstm_quick(tmp_path):
    lstm = run_text_example("char_lstm", tmp_path)
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
