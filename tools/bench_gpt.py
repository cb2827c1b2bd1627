"""The transformer workload of tools/bench.py: a small GPT as nanoGPT's model.py writes it
(token and position embeddings, causal self-attention, GELU MLP, LayerNorm, tied output
weights, AdamW with weight decay on the matrices only), built with either library's nn."""
from __future__ import annotations

import math

# nanoGPT's character-level configuration, made small: 2 layers, 4 heads, width 128,
# context 64, batch 16, 65 symbols
VOCAB, BLOCK, EMBD, HEADS, LAYERS, BATCH = 65, 64, 128, 4, 2, 16


def make_gpt(lib, sdpa: bool):
    """The model (its forward returns the loss) and its AdamW optimizer, built with `lib`
    (lazytorch or torch). `sdpa`: attention through F.scaled_dot_product_attention, else
    written out with masking and softmax."""
    nn, F = lib.nn, lib.nn.functional

    class CausalSelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(EMBD, 3 * EMBD)
            self.c_proj = nn.Linear(EMBD, EMBD)
            self.register_buffer("bias", lib.tril(lib.ones(BLOCK, BLOCK))
                                 .view(1, 1, BLOCK, BLOCK))

        def forward(self, x):
            B, T, C = x.size()
            q, k, v = self.c_attn(x).split(EMBD, dim=2)
            k = k.view(B, T, HEADS, C // HEADS).transpose(1, 2)
            q = q.view(B, T, HEADS, C // HEADS).transpose(1, 2)
            v = v.view(B, T, HEADS, C // HEADS).transpose(1, 2)
            if sdpa:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
                att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
                att = F.softmax(att, dim=-1)
                y = att @ v
            y = y.transpose(1, 2).contiguous().view(B, T, C)
            return self.c_proj(y)

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc = nn.Linear(EMBD, 4 * EMBD)
            self.gelu = nn.GELU()
            self.c_proj = nn.Linear(4 * EMBD, EMBD)

        def forward(self, x):
            return self.c_proj(self.gelu(self.c_fc(x)))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = nn.LayerNorm(EMBD)
            self.attn = CausalSelfAttention()
            self.ln_2 = nn.LayerNorm(EMBD)
            self.mlp = MLP()

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(VOCAB, EMBD)
            self.wpe = nn.Embedding(BLOCK, EMBD)
            self.h = nn.ModuleList([Block() for _ in range(LAYERS)])
            self.ln_f = nn.LayerNorm(EMBD)
            self.lm_head = nn.Linear(EMBD, VOCAB, bias=False)
            self.wte.weight = self.lm_head.weight   # tied, as nanoGPT does

        def forward(self, idx, targets):
            b, t = idx.size()
            pos = lib.arange(0, t, dtype=lib.long)
            x = self.wte(idx) + self.wpe(pos)
            for block in self.h:
                x = block(x)
            logits = self.lm_head(self.ln_f(x))
            return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    lib.manual_seed(0)
    model = GPT()
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = lib.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.95))
    return model, opt


def gpt_step(lib, sdpa: bool, idx, targets):
    """One training step (forward, backward, AdamW) returning the loss as a float."""
    model, opt = make_gpt(lib, sdpa)
    x, y = lib.tensor(idx), lib.tensor(targets)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = model(x, y)
        loss.backward()
        opt.step()
        return loss.item()
    return step
