"""Sizes that change between realizes are kernel arguments, not constants (engine/shapes.py):
a step over many sequence lengths, or a last batch smaller than the others, compiles a few
variants per kernel, not one per size, and computes what the reference does at every size."""
from __future__ import annotations

import numpy as np
import pytest

import lazytorch as torch
from lazytorch import debug
from lazytorch.engine import shapes

F32 = np.float32


def _fresh_width() -> int:
    """A width no earlier test used: a structure neither the templates nor the disk cache
    hold."""
    return int(np.random.default_rng().integers(1_000, 2_000))


def _step(emb, head, opt, idx: np.ndarray) -> float:
    opt.zero_grad()
    x = torch.tensor(idx)
    loss = torch.nn.functional.cross_entropy(head(emb(x)).view(-1, head.out_features),
                                             x.view(-1))
    loss.backward()
    opt.step()
    return loss.item()


def _ref_loss(w_emb: np.ndarray, w: np.ndarray, b: np.ndarray, idx: np.ndarray) -> float:
    """The embedding + linear + cross-entropy loss in float64 numpy."""
    logits = w_emb[idx.reshape(-1)] @ w.T + b
    logits = logits - logits.max(1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    return float(-logp[np.arange(idx.size), idx.reshape(-1)].mean())


def test_a_step_over_many_sequence_lengths_compiles_a_few_variants_per_kernel():
    vocab = _fresh_width()
    torch.manual_seed(0)
    emb, head = torch.nn.Embedding(vocab, 16), torch.nn.Linear(16, vocab)
    opt = torch.optim.SGD([*emb.parameters(), *head.parameters()], lr=0.1)
    rng = np.random.default_rng(0)
    debug.reset_stats()
    per_step = []
    for t in range(8, 28):
        idx = rng.integers(0, vocab, (2, t))
        params = [p.detach().numpy().astype(np.float64) for p in
                  (emb.weight, head.weight, head.bias)]
        got = _step(emb, head, opt, idx)
        np.testing.assert_allclose(got, _ref_loss(*params, idx), rtol=1e-4)
        per_step.append(debug.stats()["kernels_compiled"])
    first = per_step[0]
    # the first size compiles every kernel, the second their templates; 18 later sizes
    # compile at most a few more variants (another strategy picked by a size)
    assert per_step[-1] - per_step[1] <= first
    assert per_step[-1] <= 3 * first


def test_an_mlp_with_a_smaller_last_batch_matches_numpy_and_reuses_its_kernels():
    width = _fresh_width() // 50
    rng = np.random.default_rng(1)
    w1 = rng.standard_normal((width, 6)) * 0.3
    w2 = rng.standard_normal((3, width)) * 0.3
    lw1, lw2 = (torch.tensor(w, requires_grad=True) for w in (w1, w2))
    debug.reset_stats()
    compiled = []
    for n in (32, 32, 20, 32, 20, 24, 28):
        x = rng.standard_normal((n, 6))
        loss = ((torch.tensor(x) @ lw1.T).tanh() @ lw2.T).pow(2).mean()
        loss.backward()
        h = np.tanh(x @ w1.T)
        y = h @ w2.T
        np.testing.assert_allclose(loss.item(), (y ** 2).mean(), rtol=1e-10)
        gy = 2 * y / y.size
        g2 = gy.T @ h
        g1 = ((gy @ w2) * (1 - h ** 2)).T @ x
        np.testing.assert_allclose(lw2.grad.numpy(), g2, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(lw1.grad.numpy(), g1, rtol=1e-9, atol=1e-12)
        lw1.grad = lw2.grad = None
        compiled.append(debug.stats()["kernels_compiled"])
    # batch 32 compiled, 20 the templates, 24 and 28 at most a few more variants
    assert compiled[-1] <= 3 * compiled[0]


def test_gradients_at_a_new_size_match_central_differences():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((4, 5))

    def f(wn: np.ndarray, x: np.ndarray) -> float:
        return float((np.tanh(x @ wn.T) ** 2).sum(1).mean())

    for n in (3, 4, 6):
        x = rng.standard_normal((n, 5))
        lw = torch.tensor(w, requires_grad=True)
        (torch.tensor(x) @ lw.T).tanh().pow(2).sum(1).mean().backward()
        num = np.zeros_like(w)
        eps = 1e-6
        for i in np.ndindex(*w.shape):
            d = np.zeros_like(w)
            d[i] = eps
            num[i] = (f(w + d, x) - f(w - d, x)) / (2 * eps)
        np.testing.assert_allclose(lw.grad.numpy(), num, rtol=1e-6, atol=1e-8)


def test_kernels_checked_against_the_interpreter_at_every_size():
    width = _fresh_width()
    w = torch.randn(width % 37 + 8, 12)
    for n in (5, 9, 17, 30):
        x = torch.randn(3, n, 12)
        with debug.check():    # every kernel against the reference interpreter
            y = torch.nn.functional.softmax(x @ w.T, dim=1).sum()
            y.item()


def test_debug_prints_the_size_argument(capsys):
    width = _fresh_width()
    outs = []
    for n in (width, width + 3):
        with debug.level(4):
            (torch.randn(n) * 2 + 1).sum().item()
        outs.append(capsys.readouterr())
    text = outs[1].out + outs[1].err
    assert f"{shapes.PARAM}[0]" in text and f"{shapes.PARAM}[" not in outs[0].out + outs[0].err


def test_the_switch_turns_it_off(monkeypatch):
    monkeypatch.setenv("LAZYTORCH_DYNAMIC_SHAPES", "0")
    width = _fresh_width()
    debug.reset_stats()
    for n in (width, width + 1, width + 2):
        x = np.arange(n, dtype=F32)
        assert (torch.tensor(x) * 3).sum().item() == pytest.approx(float(x.sum() * 3))
    assert debug.stats()["kernels_compiled"] >= 3   # one per size


def test_literals_c_needs_as_constants_are_kept():
    code = ("static void @fn@_epi(float* c) { c[0] = 7; }\n"
            "void @fn@(float* restrict out0) {\n"
            "  #pragma GCC unroll 4\n"
            "  float accs[128];\n"
            "  float v = in0[(o0*65+3)] * 1e+30 + 2.5f;\n"
            "  for (long o0 = 0; o0 < 65; o0++) out0[o0] = 12LL;\n"
            "}\n")
    masked, lits = shapes._literals(code)
    # (an exponent is part of its float literal, a suffix of its literal)
    assert [t for _, _, t in lits] == ["65", "3", "1e+30", "2.5f", "0", "65", "12LL"]
    assert "unroll 4" in masked and "accs[128]" in masked and "c[0] = 7" in masked


def test_a_template_reads_what_the_literals_held():
    code = "void @fn@(float* restrict out0) {\n  out0[0] = 7 * 0.1f + 2.5;\n}\n"
    struct = ("test", _fresh_width())
    assert shapes.specialize(struct, 0, code, "c") == (code, None)
    other = code.replace("7 *", "9 *").replace("0.1f", "0.3f").replace("2.5", "4.5")
    got, values = shapes.specialize(struct, 0, other, "c")
    assert "const long long* restrict lt_sz" in got and "7" not in got and "0.3" not in got
    assert values[0] == 9
    assert values[1:].view(np.float64).tolist() == [0.3, 4.5]
    assert "((float)((const double*)lt_sz)[1])" in got


@pytest.mark.skipif(not __import__("lazytorch.runtime.cuda.nvcc", fromlist=["x"]).available(),
                    reason="no nvcc on this machine")
def test_cuda_templates_compile_with_nvcc():
    from lazytorch.compiler.codegen.cuda import CudaRenderer
    from lazytorch.runtime.cuda import nvcc
    r = CudaRenderer()
    w = torch.randn(64, 32)

    def kernels(n: int) -> list:
        x = torch.randn(n, 32)
        return torch.compiler.schedule(
            (x * 2).exp(), x.sum(1), torch.nn.functional.softmax(x, dim=-1), x @ w.T,
            device="cuda")

    struct = ("cuda test", _fresh_width())
    for n in (300, 301):
        made = [shapes.specialize(struct, i, k.code, r.name) for i, k in enumerate(kernels(n))]
    assert all(values is not None for _, values in made)
    assert all("const long long* __restrict__ lt_sz" in code for code, _ in made)
    src = r.render_module([code.replace("@fn@", f"lt_t{i}") for i, (code, _) in
                           enumerate(made)])
    assert nvcc.cubin(src, 90, [f"lt_t{i}" for i in range(len(made))])[:4] == b"\x7fELF"
