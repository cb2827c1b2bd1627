"""Distances between vectors: cosine similarity, pairwise p-norm distance, and pdist (all
pairs of rows), as functions and as CosineSimilarity / PairwiseDistance layers."""
from __future__ import annotations

import numpy as np

from ..frontend.creation import tensor as _tensor
from ..frontend.tensor import Tensor, broadcast_shapes
from .module import Module


def _clamped_norm(x: Tensor, dim: int, eps: float) -> Tensor:
    """||x|| along dim (kept), at least eps; the gradient is the norm's (PyTorch clamps the
    norm in place, outside autograd)."""
    n = x.norm(2, dim, keepdim=True)
    return n + (n.clamp(min=eps) - n).detach()


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1 x2) / (max(||x1||, eps) max(||x2||, eps)) along dim, after broadcasting."""
    shape = broadcast_shapes(tuple(x1.shape), tuple(x2.shape))
    a, b = x1.expand(shape), x2.expand(shape)
    return ((a / _clamped_norm(a, dim, eps)) * (b / _clamped_norm(b, dim, eps))).sum(dim)


def pairwise_distance(x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6,
                      keepdim: bool = False) -> Tensor:
    """||x1 - x2 + eps||_p over the last dim (rows of two batches of vectors)."""
    ndim = max(x1.ndim, x2.ndim)
    if ndim == 0:
        return (x1 - x2 + eps).abs()
    return (x1 - x2 + eps).norm(p, ndim - 1, keepdim=keepdim)


def pdist(input: Tensor, p: float = 2.0) -> Tensor:
    """The p-norm distances between all pairs of rows i < j of an (N, M) input, in row-major
    order of the pairs (N (N - 1) / 2 values)."""
    if input.ndim != 2:
        raise RuntimeError(f"pdist only supports 2D tensors, got: {input.ndim}D")
    if p < 0:
        raise RuntimeError("pdist only supports non-negative p values")
    i, j = np.triu_indices(input.shape[0], 1)
    rows_i = input.index_select(0, _tensor(i.astype(np.int64)))
    rows_j = input.index_select(0, _tensor(j.astype(np.int64)))
    return (rows_i - rows_j).norm(p, 1)


class CosineSimilarity(Module):
    """Cosine similarity along dim."""

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """p-norm distance between rows, with eps added to the difference."""

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        return pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
