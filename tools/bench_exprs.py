"""The elementwise workloads of tools/bench.py and tools/bench_cuda.py, written once for any
library with PyTorch's API (`lib` is lazytorch or torch)."""
from __future__ import annotations


def gelu_t(x, lib):
    return 0.5 * x * (1 + lib.tanh(0.7978845608 * (x + 0.044715 * x * x * x)))


def chain_t(a, b, lib):
    y = (a + b) * 1.5
    y = lib.exp(y * 0.1)
    y = lib.maximum(y, a)
    y = lib.where(y > b, y, b) - 0.5
    return lib.sqrt(lib.abs(y) + 1.0) * a
