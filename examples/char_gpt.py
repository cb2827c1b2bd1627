"""Train a character-level GPT on the standard library's docstrings, as nanoGPT writes it.

The model, its optimizer groups, the learning-rate schedule and `generate` follow nanoGPT's
model.py and train.py (Andrej Karpathy, MIT licence) with only the import changed: causal
self-attention (F.scaled_dot_product_attention with is_causal, or the masked softmax nanoGPT
falls back to), a GELU MLP, LayerNorm, tied token embedding and output weights, AdamW with weight
decay on the 2-d parameters only, a warm-up and cosine learning rate, gradient clipping, and
sampling with temperature and top-k. The defaults are nanoGPT's "baby GPT on a CPU" settings
(4 layers, 4 heads, 128 wide, block 64, batch 12).

The text ships with Python: lazytorch.text.stdlib_docstrings() reads the documentation strings
of sixty-odd pure-Python standard-library modules from their sources (found through
sysconfig.get_paths()["stdlib"], so nothing is imported and nothing is downloaded), about half a
million characters; the first 90% trains and the rest validates, as nanoGPT splits its data.

Run: python examples/char_gpt.py          (full run; a few minutes on 2 cores)
     python examples/char_gpt.py --quick  (the CI form: asserts the validation loss falls
                                           below the unigram baseline computed from the data)
"""
from __future__ import annotations

import argparse
import inspect
import math
import os
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tqdm import tqdm  # noqa: E402

import lazytorch as torch  # noqa: E402
import lazytorch.debug  # noqa: E402
import lazytorch.nn as nn  # noqa: E402
from lazytorch.nn import functional as F  # noqa: E402
from lazytorch.text import Vocab, stdlib_docstrings  # noqa: E402


# --- The model: nanoGPT's model.py ---------------------------------------------------------------
class LayerNorm(nn.Module):
    """LayerNorm but with an optional bias. PyTorch doesn't support simply bias=False"""

    def __init__(self, ndim, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, input):
        return F.layer_norm(input, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):

    def __init__(self, config):
        super().__init__()
        assert config.n_embd % config.n_head == 0
        # key, query, value projections for all heads, but in a batch
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        # output projection
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        # regularization
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout
        # flash attention: F.scaled_dot_product_attention, else the masked softmax
        self.flash = config.flash and hasattr(F, "scaled_dot_product_attention")
        if not self.flash:
            # causal mask to ensure that attention is only applied to the left in the input
            self.register_buffer("bias", torch.tril(torch.ones(config.block_size,
                                                               config.block_size))
                                 .view(1, 1, config.block_size, config.block_size))

    def forward(self, x):
        B, T, C = x.size()  # batch size, sequence length, embedding dimensionality (n_embd)

        # calculate query, key, values for all heads in batch and move head forward to be the
        # batch dim
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)

        # causal self-attention; Self-attend: (B, nh, T, hs) x (B, nh, hs, T) -> (B, nh, T, T)
        if self.flash:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=None,
                                               dropout_p=self.dropout if self.training else 0,
                                               is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
            att = F.softmax(att, dim=-1)
            att = self.attn_dropout(att)
            y = att @ v  # (B, nh, T, T) x (B, nh, T, hs) -> (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # re-assemble all head outputs

        # output projection
        y = self.resid_dropout(self.c_proj(y))
        return y


class MLP(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        x = self.c_fc(x)
        x = self.gelu(x)
        x = self.c_proj(x)
        x = self.dropout(x)
        return x


class Block(nn.Module):

    def __init__(self, config):
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


@dataclass
class GPTConfig:
    block_size: int = 64
    vocab_size: int = 101
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True  # True: bias in Linears and LayerNorms, like GPT-2. False: a bit better
    flash: bool = True  # F.scaled_dot_product_attention; False: the masked softmax


class GPT(nn.Module):

    def __init__(self, config):
        super().__init__()
        assert config.vocab_size is not None
        assert config.block_size is not None
        self.config = config

        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=LayerNorm(config.n_embd, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # with weight tying when using torch.compile() some warnings get generated:
        # "UserWarning: functional_call was passed multiple values for tied weights.
        # This behavior is deprecated and will be an error in future versions"
        # not 100% sure what this is, so far seems to be harmless. TODO investigate
        self.transformer.wte.weight = self.lm_head.weight  # https://paperswithcode.com/method/weight-tying

        # init all weights
        self.apply(self._init_weights)
        # apply special scaled init to the residual projections, per GPT-2 paper
        for pn, p in self.named_parameters():
            if pn.endswith("c_proj.weight"):
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def get_num_params(self, non_embedding=True):
        """
        Return the number of parameters in the model.
        For non-embedding count (default), the position embeddings get subtracted.
        The token embeddings would too, except due to the parameter sharing these
        params are actually used as weights in the final layer, so we include them.
        """
        n_params = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n_params -= self.transformer.wpe.weight.numel()
        return n_params

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx, targets=None):
        device = idx.device
        b, t = idx.size()
        assert t <= self.config.block_size, (f"Cannot forward sequence of length {t}, block "
                                             f"size is only {self.config.block_size}")
        pos = torch.arange(0, t, dtype=torch.long, device=device)  # shape (t)

        # forward the GPT model itself
        tok_emb = self.transformer.wte(idx)  # token embeddings of shape (b, t, n_embd)
        pos_emb = self.transformer.wpe(pos)  # position embeddings of shape (t, n_embd)
        x = self.transformer.drop(tok_emb + pos_emb)
        for block in self.transformer.h:
            x = block(x)
        x = self.transformer.ln_f(x)

        if targets is not None:
            # if we are given some desired targets also calculate the loss
            logits = self.lm_head(x)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1),
                                   ignore_index=-1)
        else:
            # inference-time mini-optimization: only forward the lm_head on the very last
            # position
            logits = self.lm_head(x[:, [-1], :])  # note: using list [-1] to preserve the time dim
            loss = None

        return logits, loss

    def configure_optimizers(self, weight_decay, learning_rate, betas, device_type):
        # start with all of the candidate parameters
        param_dict = {pn: p for pn, p in self.named_parameters()}
        # filter out those that do not require grad
        param_dict = {pn: p for pn, p in param_dict.items() if p.requires_grad}
        # create optim groups. Any parameters that is 2D will be weight decayed, otherwise no.
        # i.e. all weight tensors in matmuls + embeddings decay, all biases and layernorms don't.
        decay_params = [p for n, p in param_dict.items() if p.dim() >= 2]
        nodecay_params = [p for n, p in param_dict.items() if p.dim() < 2]
        optim_groups = [
            {"params": decay_params, "weight_decay": weight_decay},
            {"params": nodecay_params, "weight_decay": 0.0},
        ]
        num_decay_params = sum(p.numel() for p in decay_params)
        num_nodecay_params = sum(p.numel() for p in nodecay_params)
        print(f"num decayed parameter tensors: {len(decay_params)}, with "
              f"{num_decay_params:,} parameters")
        print(f"num non-decayed parameter tensors: {len(nodecay_params)}, with "
              f"{num_nodecay_params:,} parameters")
        # Create AdamW optimizer and use the fused version if it is available
        fused_available = "fused" in inspect.signature(torch.optim.AdamW).parameters
        use_fused = fused_available and device_type == "cuda"
        extra_args = dict(fused=True) if use_fused else dict()
        optimizer = torch.optim.AdamW(optim_groups, lr=learning_rate, betas=betas, **extra_args)
        print(f"using fused AdamW: {use_fused}")
        return optimizer

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
        """
        Take a conditioning sequence of indices idx (LongTensor of shape (b,t)) and complete
        the sequence max_new_tokens times, feeding the predictions back into the model each time.
        Most likely you'll want to make sure to be in model.eval() mode of operation for this.
        """
        for _ in range(max_new_tokens):
            # if the sequence context is growing too long we must crop it at block_size
            idx_cond = (idx if idx.size(1) <= self.config.block_size
                        else idx[:, -self.config.block_size:])
            # forward the model to get the logits for the index in the sequence
            logits, _ = self(idx_cond)
            # pluck the logits at the final step and scale by desired temperature
            logits = logits[:, -1, :] / temperature
            # optionally crop the logits to only the top k options
            if top_k is not None:
                v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
                logits[logits < v[:, [-1]]] = -float("Inf")
            # apply softmax to convert logits to (normalized) probabilities
            probs = F.softmax(logits, dim=-1)
            # sample from the distribution
            idx_next = torch.multinomial(probs, num_samples=1)
            # append sampled index to the running sequence and continue
            idx = torch.cat((idx, idx_next), dim=1)

        return idx


# --- Training: nanoGPT's train.py, trimmed to one process ----------------------------------------
# --quick passes when the val loss is this far below the unigram baseline (a model that knows only
# the letter frequencies): the model has learnt which letters follow which. PyTorch's eager run of
# the same configuration reaches 2.82-2.83 against a baseline of 3.26 (seeds 0 and 1).
QUICK_MARGIN = 0.25


def docstring_corpus():
    """The characters of the standard library's docstrings, their vocabulary and codes, the
    length n of the 90% that trains, and two baselines: the loss of a model that knows nothing
    (uniform) and of one that knows the letter frequencies of the training text (unigram); a
    model's loss must fall well below both."""
    text = stdlib_docstrings()
    vocab = Vocab.build(text)
    data = torch.tensor(vocab.encode(text), dtype=torch.long)
    n = int(0.9 * len(data))
    counts = Counter(text[:n])
    uniform = math.log(len(vocab))
    unigram = -sum(c / n * math.log(c / n) for c in counts.values())
    print(f"text: {len(text):,} characters of docstrings from {sys.prefix}, vocab "
          f"{len(vocab)}; uniform loss {uniform:.3f}, unigram loss {unigram:.3f}")
    return text, vocab, data, n, uniform, unigram


def text_parser(doc, name, seed, max_iters, eval_interval):
    """The flags both text examples take: --quick, --device, --out, --seed, --max-iters,
    --eval-interval, --sample-chars."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="the CI form: a small model for a few steps; asserts the val loss")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=os.path.join("runs", name))
    p.add_argument("--seed", type=int, default=seed)
    p.add_argument("--max-iters", type=int, default=max_iters)
    p.add_argument("--eval-interval", type=int, default=eval_interval)
    p.add_argument("--sample-chars", type=int, default=200)
    return p


def parse_args(argv=None):
    p = text_parser(__doc__, "char_gpt", seed=1337, max_iters=2000, eval_interval=250)
    p.add_argument("--eval-iters", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=12)
    p.add_argument("--block-size", type=int, default=64)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-1)
    p.add_argument("--warmup-iters", type=int, default=100)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--no-flash", action="store_true",
                   help="attention as the masked softmax instead of scaled_dot_product_attention")
    args = p.parse_args(argv)
    if args.quick:   # small enough for CI: about 10 s with a warm compile cache
        args.max_iters, args.eval_interval, args.eval_iters = 150, 75, 4
        args.n_layer, args.n_head, args.n_embd, args.block_size = 2, 2, 64, 32
        args.batch_size, args.learning_rate, args.warmup_iters = 32, 3e-3, 10
        args.sample_chars = 40
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    device = args.device
    device_type = "cuda" if "cuda" in device else "cpu"

    # --- Data: characters of the standard library's docstrings, 90% train, 10% val ----------
    text, vocab, data, n, uniform, unigram = docstring_corpus()
    train_data, val_data = data[:n].to(device), data[n:].to(device)

    def get_batch(split):
        data = train_data if split == "train" else val_data
        ix = torch.randint(len(data) - args.block_size - 1, (args.batch_size,), device=device)
        offsets = ix[:, None] + torch.arange(args.block_size, device=device)
        x, y = data[offsets], data[offsets + 1]
        return x, y

    config = GPTConfig(block_size=args.block_size, vocab_size=len(vocab), n_layer=args.n_layer,
                       n_head=args.n_head, n_embd=args.n_embd, dropout=args.dropout,
                       flash=not args.no_flash)
    model = GPT(config).to(device)
    print(f"number of parameters: {model.get_num_params() / 1e6:.2f}M")
    optimizer = model.configure_optimizers(args.weight_decay, args.learning_rate, (0.9, 0.99),
                                           device_type)

    # learning rate decay scheduler (cosine with warmup)
    def get_lr(it):
        min_lr = args.learning_rate / 10
        if it < args.warmup_iters:
            return args.learning_rate * (it + 1) / (args.warmup_iters + 1)
        decay_ratio = (it - args.warmup_iters) / max(1, args.max_iters - args.warmup_iters)
        coeff = 0.5 * (1.0 + math.cos(math.pi * min(decay_ratio, 1.0)))
        return min_lr + coeff * (args.learning_rate - min_lr)

    @torch.no_grad()
    def estimate_loss():
        out = {}
        model.eval()
        for split in ["train", "val"]:
            losses = torch.zeros(args.eval_iters)
            for k in range(args.eval_iters):
                X, Y = get_batch(split)
                _, loss = model(X, Y)
                losses[k] = loss.item()
            out[split] = losses.mean().item()
        model.train()
        return out

    # a prompt as long as the context: every sampling step then runs the same graph
    prompt_text = text[n:n + args.block_size]
    prompt = torch.tensor([vocab.encode(prompt_text)], dtype=torch.long, device=device)

    def sample(max_new_tokens, temperature=0.8, top_k=10):
        model.eval()
        y = model.generate(prompt, max_new_tokens, temperature=temperature, top_k=top_k)
        model.train()
        return vocab.decode(y[0, args.block_size:])

    torch.debug.reset_stats()
    history = {"iter": [], "train": [], "val": []}
    step_times = []
    t_start = time.perf_counter()
    bar = tqdm(range(args.max_iters + 1), desc="char_gpt", unit="step", mininterval=0.5)
    tokens_per_step = args.batch_size * args.block_size
    for it in bar:
        if it % args.eval_interval == 0 or it == args.max_iters:
            losses = estimate_loss()
            history["iter"].append(it)
            history["train"].append(losses["train"])
            history["val"].append(losses["val"])
            bar.write(f"step {it}: train loss {losses['train']:.4f}, val loss "
                      f"{losses['val']:.4f}")
            bar.write("  sample: " + repr(prompt_text[-20:]) + " -> "
                      + repr(sample(args.sample_chars)))
        if it == args.max_iters:
            break
        t0 = time.perf_counter()
        lr = get_lr(it)
        for param_group in optimizer.param_groups:
            param_group["lr"] = lr
        X, Y = get_batch("train")
        logits, loss = model(X, Y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if args.grad_clip != 0.0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        lossf = loss.item()
        dt = time.perf_counter() - t0
        step_times.append(dt)
        bar.set_postfix(loss=f"{lossf:.3f}", tok_s=f"{tokens_per_step / dt:,.0f}")
    bar.close()
    wall = time.perf_counter() - t_start

    summarize(args, model, history, step_times, wall, tokens_per_step, unigram, uniform,
              sample, prompt_text, "char_gpt on the standard library's docstrings", "train",
              QUICK_MARGIN)


def summarize(args, model, history, step_times, wall, tokens_per_step, unigram, uniform, sample,
              prompt_text, title, train_label, margin):
    """The end of a run: checkpoint, loss plot, time per step, a sample, and in --quick form
    the check that the validation loss fell `margin` below the unigram baseline."""
    stats = torch.debug.stats()
    ckpt_path = os.path.join(args.out, "ckpt.pt")
    torch.save(model.state_dict(), ckpt_path)
    plot_path = os.path.join(args.out, "loss.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(history["iter"], history["train"], label=train_label)
    ax.plot(history["iter"], history["val"], label="val")
    ax.axhline(unigram, color="gray", linestyle="--", label="unigram baseline")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats / char)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(plot_path, dpi=100)
    plt.close(fig)

    warm = step_times[len(step_times) // 10:] or step_times
    print(f"time per step {statistics.median(warm) * 1000:.1f} ms (median), "
          f"{tokens_per_step / statistics.median(warm):,.0f} tokens/s, total {wall:.1f} s")
    print(f"kernels compiled {stats['kernels_compiled']}, plan-cache hits "
          f"{stats['plan_cache_hits']}")
    print(f"checkpoint {ckpt_path}, plot {plot_path}")
    print("sample:\n" + prompt_text + sample(args.sample_chars * 2))
    final = history["val"][-1]
    print(f"final train loss {history['train'][-1]:.4f} val loss {final:.4f} "
          f"(unigram {unigram:.4f}, uniform {uniform:.4f})")
    if args.quick:
        threshold = unigram - margin
        if not final < threshold:
            sys.exit(f"FAILED: val loss {final:.4f} is not below {threshold:.4f} "
                     f"(the unigram baseline {unigram:.4f} less {margin})")
        print(f"OK: val loss {final:.4f} < {threshold:.4f} (unigram baseline less "
              f"{margin})")


if __name__ == "__main__":
    main()
