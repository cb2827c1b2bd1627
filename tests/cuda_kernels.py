"""CUDA kernels of workloads the op, autograd and nn suites leave out (their own kernels are
tests/cuda_collect.py's), collected without a GPU: every dtype through every elementwise op,
reduction and scan (float16 and the small integers, which the suites touch little), training
steps with each optimizer, a transformer layer, and sizes that take each CUDA strategy (128 x
128 matmul tiles, rows of 10,000). While a workload realizes its graphs on the reference
interpreter, every graph is also scheduled and rendered for CUDA."""
from __future__ import annotations

import contextlib

import numpy as np

import lazytorch as torch
import lazytorch.nn as nn
import lazytorch.nn.functional as F
from lazytorch import config
from lazytorch.compiler.codegen.cuda import CudaRenderer
from lazytorch.engine import backends
from lazytorch.engine import plan as plans
from lazytorch.frontend.tensor import realize_tensors

FLOATS = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
INTS = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64]
UNARY = ["exp", "exp2", "expm1", "log", "log2", "log1p", "sqrt", "rsqrt", "sin", "cos", "tan",
         "tanh", "asin", "acos", "atan", "sinh", "cosh", "asinh", "atanh", "sigmoid", "erf",
         "floor", "ceil", "round", "trunc", "abs", "neg", "sign", "reciprocal", "relu",
         "isnan", "isinf"]
BINARY = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b,
          lambda a, b: torch.maximum(a, b), lambda a, b: torch.minimum(a, b),
          lambda a, b: a < b, lambda a, b: a == b, lambda a, b: a >= b,
          lambda a, b: torch.where(a > b, a, b)]


@contextlib.contextmanager
def recording(renderer: CudaRenderer | None = None):
    """Inside, realizes run on the reference interpreter (no C compiled), and every graph
    they realize is also scheduled and rendered for CUDA; yields the dict (kernel code ->
    kernel) that fills up."""
    renderer = renderer or CudaRenderer()
    found: dict[str, object] = {}
    interp = backends.get("interp")
    original = interp.run

    def run(outputs, inputs, key, todo):
        for k in plans.compile_graph(outputs, renderer)[1].kernels:
            found.setdefault(k.code, k)
        return original(outputs, inputs, key, todo)

    interp.run = run
    try:
        with config.use_backend("interp"):
            yield found
    finally:
        del interp.run


def _realize(*ts) -> None:
    flat = []
    for t in ts:
        if isinstance(t, (list, tuple)):
            flat += [x for x in t if isinstance(x, torch.Tensor)]
        elif isinstance(t, torch.Tensor):
            flat.append(t)
    realize_tensors(flat)


def op_sweep(rng) -> None:
    """Elementwise ops over every dtype, reductions and scans over dims."""
    x = rng.standard_normal((3, 5, 7)).astype(np.float32)
    y = rng.standard_normal((3, 5, 7)).astype(np.float32)
    for d in FLOATS:
        a, b = torch.tensor(x).to(d), torch.tensor(y).to(d)
        _realize([getattr(a.abs() + 0.5, op)() for op in UNARY])
        _realize([f(a, b) for f in BINARY], a / b, a ** b.abs(), a // b, a % b, a.atan2(b))
        _realize([a.sum(dim), a.prod(dim), a.amax(dim), a.amin(dim), a.argmax(dim),
                  a.mean(dim), a.var(dim)] for dim in (0, 1, 2, (0, 2)))
        _realize(a.cumsum(1), a.cumprod(2), a.sum(), a.argmin(), a.to(torch.int32),
                 a.to(torch.float16), a.to(torch.float64), a.to(torch.bool))
    long = rng.standard_normal((3, 100)).astype(np.float32)   # rows a block reduces
    for d in FLOATS + INTS + [torch.bool]:
        a = torch.tensor(long).to(d)
        _realize(a.sum(1), a.amax(1), a.amin(1), a.sum(), (a != 0).any(1), (a > 0).all(1))
        if d.is_floating_point:
            _realize(a.prod(1), a.mean(1), F.softmax(a, 1), F.layer_norm(a, (100,)))
    for d in INTS + [torch.bool]:
        a = torch.tensor(rng.integers(1, 9, (4, 6))).to(d)
        b = torch.tensor(rng.integers(1, 9, (4, 6))).to(d)
        _realize(a.sum(1), a.amax(0), a.cumsum(0), a.float(), a & b, a | b)
        if d is not torch.bool:
            _realize([f(a, b) for f in BINARY])
            _realize(a // b, a % b, a ^ b, a.abs(), a.prod(1))


def nn_workloads() -> None:
    """The device tests' training steps, and layers at sizes that take each CUDA strategy:
    long rows (blocks of 1024), a long full sum, a column sum, products (on tensor cores for
    half types), convolutions, attention."""
    from tests import test_devices_training as training
    for opt in ("adam", "adamw", "sgd"):
        _realize(training._mlp_run("cpu", opt))
    _realize(training._cnn_run("cpu"))
    _realize(training._lstm_run("cpu"))
    _realize(training._index_ops("cpu"))
    torch.manual_seed(0)
    x = torch.randn(4, 10000, requires_grad=True)
    loss = F.log_softmax(x, -1).sum() + F.layer_norm(x, (10000,)).square().mean()
    loss.backward()
    _realize(loss, x.grad, torch.randn(200_000).sum(), torch.randn(64, 2048).sum(0))
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    opt = torch.optim.AdamW(layer.parameters(), lr=1e-3)
    src = torch.randn(2, 10, 32)
    loss = layer(src).square().mean()
    loss.backward()
    opt.step()
    _realize(loss, list(layer.parameters()))
    conv = nn.Conv2d(3, 8, 3, padding=1)
    img = torch.randn(2, 3, 16, 16)
    loss = F.cross_entropy(conv(img).mean((2, 3)), torch.tensor([1, 5]))
    loss.backward()
    _realize(loss, conv.weight.grad, conv.bias.grad)
    a, b = torch.randn(64, 96), torch.randn(96, 80)
    _realize(a @ b, (a @ b).relu() + 1, torch.randn(3, 16, 24) @ torch.randn(3, 24, 40),
             (a.half() @ b.half()), torch.zeros(5, 4).scatter_add(0, torch.tensor(
                 [[0, 1, 2, 0], [4, 4, 4, 4]]), torch.ones(2, 4)))
    # tensor cores (mma.py): bfloat16 with a bias and relu, transposed, batched, 128 x 128
    # tiles; a float16 linear layer's step
    h, g = a.bfloat16(), b.bfloat16()
    _realize((h @ g + torch.randn(80).bfloat16()).relu(), g.t() @ h.t(),
             torch.randn(3, 17, 40).bfloat16() @ torch.randn(3, 40, 65).bfloat16(),
             torch.randn(1030, 64).bfloat16() @ torch.randn(64, 1030).bfloat16())
    lin = nn.Linear(96, 80).half()
    hx = torch.randn(64, 96).half().requires_grad_()
    hloss = lin(hx).float().square().mean()
    hloss.backward()
    _realize(hloss, hx.grad, lin.weight.grad, lin.bias.grad)


def collect() -> list:
    """The distinct CUDA kernels of all the workloads above."""
    torch.manual_seed(0)    # (some shapes follow the data: masked_select, nonzero)
    with recording() as found:
        op_sweep(np.random.default_rng(0))
        nn_workloads()
    return list(found.values())
