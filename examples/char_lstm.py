"""Train a character-level LSTM language model on the standard library's docstrings.

The recurrent variant of char_gpt.py, written as pytorch/examples' word_language_model writes
its LSTM: nn.Embedding, nn.LSTM and nn.Linear; the text cut into batch_size parallel streams
(batchify) read bptt characters at a time, the hidden state carried from one chunk to the next
and detached between them (truncated back-propagation through time, repackage_hidden); gradient
clipping; validation over the held-out streams with the state carried the same way. Sampling
feeds one character at a time with the state, with temperature and top-k.

The text ships with Python (lazytorch.text.stdlib_docstrings(): the docstrings of the pure-Python
standard-library modules, read from their sources under sysconfig.get_paths()["stdlib"]); the
first 90% trains and the rest validates.

Run: python examples/char_lstm.py          (full run; a few minutes on 2 cores)
     python examples/char_lstm.py --quick  (the CI form: asserts the validation loss falls
                                            below the unigram baseline computed from the data)
"""
from __future__ import annotations

import os
import statistics
import time

import matplotlib

matplotlib.use("Agg")
from char_gpt import docstring_corpus, summarize, text_parser  # noqa: E402  (the data; the run's end)
from tqdm import tqdm  # noqa: E402

import lazytorch as torch  # noqa: E402
import lazytorch.debug  # noqa: E402
import lazytorch.nn as nn  # noqa: E402
import lazytorch.nn.functional as F  # noqa: E402

# --quick passes when the val loss is this far below the unigram baseline (a model that knows only
# the letter frequencies): the model has learnt which letters follow which. PyTorch's eager run of
# the same configuration reaches 2.61 against a baseline of 3.26.
QUICK_MARGIN = 0.4


class CharLSTM(nn.Module):
    """Embedding -> LSTM -> Linear over the vocabulary, as word_language_model's RNNModel."""

    def __init__(self, ntoken, ninp, nhid, nlayers, dropout=0.0):
        super().__init__()
        self.ntoken = ntoken
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.Embedding(ntoken, ninp)
        self.rnn = nn.LSTM(ninp, nhid, nlayers, dropout=dropout)
        self.decoder = nn.Linear(nhid, ntoken)
        self.nhid = nhid
        self.nlayers = nlayers
        self.init_weights()

    def init_weights(self):
        initrange = 0.1
        nn.init.uniform_(self.encoder.weight, -initrange, initrange)
        nn.init.zeros_(self.decoder.bias)
        nn.init.uniform_(self.decoder.weight, -initrange, initrange)

    def forward(self, input, hidden):
        emb = self.drop(self.encoder(input))
        output, hidden = self.rnn(emb, hidden)
        output = self.drop(output)
        return self.decoder(output), hidden

    def init_hidden(self, bsz):
        weight = next(self.parameters())
        return (weight.new_zeros(self.nlayers, bsz, self.nhid),
                weight.new_zeros(self.nlayers, bsz, self.nhid))


def batchify(data, bsz):
    """The 1-d token stream cut into bsz parallel streams: a (n // bsz, bsz) tensor, each column
    a contiguous piece of the text."""
    # Work out how cleanly we can divide the dataset into bsz parts.
    nbatch = data.size(0) // bsz
    # Trim off any extra elements that wouldn't cleanly fit (remainders).
    data = data.narrow(0, 0, nbatch * bsz)
    # Evenly divide the data across the bsz batches.
    return data.view(bsz, -1).t().contiguous()


def get_batch(source, i, bptt):
    """bptt characters of every stream from position i, (bptt, bsz), and the characters that
    follow them, flattened as the loss wants them."""
    seq_len = min(bptt, len(source) - 1 - i)
    data = source[i:i + seq_len]
    target = source[i + 1:i + 1 + seq_len].view(-1)
    return data, target


def repackage_hidden(h):
    """Wraps hidden states in new Tensors, to detach them from their history."""
    if isinstance(h, torch.Tensor):
        return h.detach()
    return tuple(repackage_hidden(v) for v in h)


@torch.no_grad()
def generate(model, idx, max_new_tokens, temperature=1.0, top_k=None):
    """Continue the prompt idx (a (t, 1) LongTensor) by max_new_tokens characters, feeding one
    character at a time with the LSTM state."""
    model.eval()
    hidden = model.init_hidden(idx.size(1))
    logits, hidden = model(idx, hidden)
    out = [idx]
    for _ in range(max_new_tokens):
        logits = logits[-1] / temperature
        if top_k is not None:
            v, _ = torch.topk(logits, min(top_k, logits.size(-1)))
            logits[logits < v[:, [-1]]] = -float("Inf")
        probs = F.softmax(logits, dim=-1)
        idx_next = torch.multinomial(probs, num_samples=1).t()   # (1, 1): one step of one stream
        out.append(idx_next)
        logits, hidden = model(idx_next, hidden)
    model.train()
    return torch.cat(out, dim=0)


def parse_args(argv=None):
    p = text_parser(__doc__, "char_lstm", seed=1111, max_iters=800, eval_interval=200)
    p.add_argument("--eval-batches", type=int, default=10,
                   help="bptt chunks of the validation streams per evaluation")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--bptt", type=int, default=32)
    p.add_argument("--emsize", type=int, default=64)
    p.add_argument("--nhid", type=int, default=192)
    p.add_argument("--nlayers", type=int, default=2)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--clip", type=float, default=1.0)
    args = p.parse_args(argv)
    if args.quick:   # small enough for CI: about 10 s with a warm compile cache
        args.max_iters, args.eval_interval, args.eval_batches = 150, 75, 4
        args.nhid, args.nlayers, args.dropout, args.bptt, args.lr = 128, 1, 0.0, 16, 1e-2
        args.sample_chars = 40
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)
    device = args.device

    # --- Data: characters of the standard library's docstrings, 90% train, 10% val ----------
    text, vocab, data, n, uniform, unigram = docstring_corpus()
    train_data = batchify(data[:n], args.batch_size).to(device)
    val_data = batchify(data[n:], args.batch_size).to(device)

    model = CharLSTM(len(vocab), args.emsize, args.nhid, args.nlayers, args.dropout).to(device)
    print(f"number of parameters: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M")
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.max_iters,
                                                           eta_min=args.lr / 10)

    def evaluate(source, batches):
        model.eval()
        total, count = 0.0, 0
        hidden = model.init_hidden(args.batch_size)
        with torch.no_grad():
            for k, i in enumerate(range(0, source.size(0) - 1, args.bptt)):
                if k == batches:
                    break
                x, y = get_batch(source, i, args.bptt)
                if x.size(0) < args.bptt:   # a short last chunk would be a graph of its own
                    break
                output, hidden = model(x, hidden)
                total += criterion(output.view(-1, len(vocab)), y).item()
                count += 1
        model.train()
        return total / count

    prompt_text = text[n:n + 32]
    prompt = torch.tensor(vocab.encode(prompt_text), dtype=torch.long, device=device)[:, None]

    def sample(max_new_tokens, temperature=0.8, top_k=10):
        y = generate(model, prompt, max_new_tokens, temperature=temperature, top_k=top_k)
        return vocab.decode(y[len(prompt_text):, 0])

    torch.debug.reset_stats()
    history = {"iter": [], "train": [], "val": []}
    step_times, recent = [], []
    tokens_per_step = args.batch_size * args.bptt
    hidden = model.init_hidden(args.batch_size)
    pos = 0
    t_start = time.perf_counter()
    bar = tqdm(range(args.max_iters + 1), desc="char_lstm", unit="step", mininterval=0.5)
    for it in bar:
        if it % args.eval_interval == 0 or it == args.max_iters:
            val_loss = evaluate(val_data, args.eval_batches)
            train_loss = statistics.mean(recent) if recent else val_loss
            recent = []
            history["iter"].append(it)
            history["train"].append(train_loss)
            history["val"].append(val_loss)
            bar.write(f"step {it}: train loss {train_loss:.4f}, val loss {val_loss:.4f}")
            bar.write("  sample: " + repr(prompt_text[-20:]) + " -> "
                      + repr(sample(args.sample_chars)))
        if it == args.max_iters:
            break
        t0 = time.perf_counter()
        if pos + args.bptt + 1 > train_data.size(0):   # a new pass over the streams
            pos, hidden = 0, model.init_hidden(args.batch_size)
        x, y = get_batch(train_data, pos, args.bptt)
        pos += args.bptt
        # Starting each batch, we detach the hidden state from how it was previously produced.
        # If we didn't, the model would try backpropagating all the way to start of the dataset.
        hidden = repackage_hidden(hidden)
        optimizer.zero_grad()
        output, hidden = model(x, hidden)
        loss = criterion(output.view(-1, len(vocab)), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        optimizer.step()
        scheduler.step()
        lossf = loss.item()
        recent.append(lossf)
        dt = time.perf_counter() - t0
        step_times.append(dt)
        bar.set_postfix(loss=f"{lossf:.3f}", tok_s=f"{tokens_per_step / dt:,.0f}")
    bar.close()
    wall = time.perf_counter() - t_start

    summarize(args, model, history, step_times, wall, tokens_per_step, unigram, uniform,
              sample, prompt_text, "char_lstm on the standard library's docstrings",
              "train (mean since last eval)", QUICK_MARGIN)


if __name__ == "__main__":
    main()
