"""examples/char_gpt.py --quick: the character-level GPT trains in a subprocess, its validation
loss falls below the unigram baseline less the script's margin, and it writes a PNG plot and a
checkpoint holding the model's parameters."""
from __future__ import annotations

import lazytorch as torch
from tests.example_runner import run_text_example


def test_char_gpt_quick(tmp_path):
    gpt = run_text_example("char_gpt", tmp_path)
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
