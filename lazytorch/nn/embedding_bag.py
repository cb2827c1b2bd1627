"""EmbeddingBag: the sum, mean or max of bags of embedding rows, without materializing the
rows of each bag separately. Bags are given as a 2-D batch of equal-length bags or as a flat
index list cut by offsets (host data: they decide shapes). Sum and mean are one product of a
bag-membership matrix with the looked-up rows; max gathers each bag's rows (padded with -inf)
and reduces."""
from __future__ import annotations

import math

import numpy as np

from ..autograd import no_grad
from ..frontend import creation
from ..frontend import elementwise as ew
from ..frontend.creation import from_array
from ..frontend.joining import cat
from ..frontend.tensor import Tensor, device_name
from . import init
from .functional import _padding_idx, embedding
from .module import Module
from .parameter import Parameter

_where = ew.where_nodes


def _bags(input: Tensor, offsets, include_last_offset: bool) -> tuple[Tensor, np.ndarray]:
    """(flat indices, [start, end) of each bag)."""
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None, as input is treated "
                             "is a mini-batch of fixed length sequences. However, found offsets "
                             f"of type {type(offsets)}")
        b, length = input.shape
        starts = np.arange(b) * length
        return input.reshape(-1), np.stack([starts, starts + length], 1)
    if input.ndim != 1:
        raise ValueError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension "
                         f"{input.ndim}")
    if offsets is None:
        raise ValueError("offsets has to be a 1D Tensor but got None")
    from .utils.rnn import _host_ints
    if isinstance(offsets, Tensor) and offsets.ndim != 1:
        raise ValueError("offsets has to be a 1D Tensor")
    off = _host_ints(offsets)
    n = input.shape[0]
    ends = np.append(off[1:], n) if not include_last_offset else off[1:]
    starts = off if not include_last_offset else off[:-1]
    if len(off) and (off[0] != 0):
        raise RuntimeError(f"offsets[0] has to be 0, i.e., the first sequence in the mini-batch "
                           f"has to start from position 0. However, got {off[0]}")
    if len(off) and off[-1] > n:
        raise RuntimeError(f"offsets[-1] can not be greater than input's length {n}, but got "
                           f"offsets[-1] of {off[-1]}")
    return input, np.stack([starts, ends], 1)


def embedding_bag(input: Tensor, weight: Tensor, offsets=None, max_norm: float | None = None,
                  norm_type: float = 2, scale_grad_by_freq: bool = False, mode: str = "mean",
                  sparse: bool = False, per_sample_weights: Tensor | None = None,
                  include_last_offset: bool = False, padding_idx: int | None = None) -> Tensor:
    """(bags, embedding_dim): each bag's rows of weight summed (weighted by
    per_sample_weights), averaged or maxed; entries equal to padding_idx are left out, and an
    empty bag gives zeros."""
    if per_sample_weights is not None and tuple(input.shape) != tuple(per_sample_weights.shape):
        raise ValueError(f"embedding_bag: If per_sample_weights ({per_sample_weights.shape}) "
                         f"is not None, then it must have the same shape as the input "
                         f"({input.shape})")
    if weight.ndim != 2:
        raise ValueError(f"weight has to be a 2D Tensor, but got Tensor of dimension "
                         f"{weight.ndim}")
    flat, bounds = _bags(input, offsets, include_last_offset)
    if mode not in ("sum", "mean", "max"):
        raise ValueError("mode has to be one of sum, mean or max")
    if mode == "max" and scale_grad_by_freq:
        raise ValueError("max mode does not support scaling the gradient by the frequency")
    if mode == "max" and sparse:
        raise ValueError("max mode does not support sparse weights")
    if per_sample_weights is not None and mode != "sum":
        raise NotImplementedError("embedding_bag: per_sample_weights was not None. "
                                  "per_sample_weights is only supported for mode='sum' "
                                  f"(got mode='{mode}'). Please open a feature request on "
                                  "GitHub.")
    padding_idx = _padding_idx(padding_idx, weight.shape[0])
    rows = embedding(flat, weight, None, max_norm, norm_type, scale_grad_by_freq)   # (n, D)
    n, nbags = flat.shape[0], bounds.shape[0]
    valid = (flat != padding_idx) if padding_idx is not None else None
    if mode == "max":
        longest = int((bounds[:, 1] - bounds[:, 0]).max(initial=0))
        table = np.full((nbags, max(longest, 1)), n, np.int64)      # n: the -inf row
        for b, (s, e) in enumerate(bounds):
            table[b, :e - s] = np.arange(s, e)
        if valid is not None:
            rows = _where(valid.unsqueeze(1), rows, -math.inf)
        pad_row = creation.full((1, rows.shape[1]), -math.inf, dtype=rows.dtype,
                                device=rows.device)
        picked = cat([rows, pad_row], 0).index_select(
            0, from_array(table.reshape(-1), device=device_name(rows)))
        out = picked.reshape(nbags, table.shape[1], rows.shape[1]).amax(1)
        return _where(out == -math.inf, 0.0, out)
    member = np.zeros((nbags, n), dtype=weight.dtype.np)
    for b, (s, e) in enumerate(bounds):
        member[b, s:e] = 1
    m = from_array(member, device=device_name(rows))
    w = None
    if valid is not None:
        w = valid.to(weight.dtype)
    if per_sample_weights is not None:
        psw = per_sample_weights.reshape(-1).to(weight.dtype)
        w = psw if w is None else w * psw
    total = (m * w.unsqueeze(0) if w is not None else m) @ rows
    if mode == "sum":
        return total
    count = m @ (w.unsqueeze(1) if w is not None else creation.ones(n, 1, dtype=weight.dtype,
                                                                 device=rows.device))
    return total / count.clamp(min=1)


class EmbeddingBag(Module):
    """Sums, means or maxima of bags of embeddings (weight from N(0, 1); the padding_idx row
    starts at zero and is left out of every bag)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, max_norm: float | None = None,
                 norm_type: float = 2.0, scale_grad_by_freq: bool = False, mode: str = "mean",
                 sparse: bool = False, _weight: Tensor | None = None,
                 include_last_offset: bool = False, padding_idx: int | None = None,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.padding_idx = _padding_idx(padding_idx, num_embeddings)
        if _weight is None:
            self.weight = Parameter(creation.empty(num_embeddings, embedding_dim, dtype=dtype))
            self.reset_parameters()
        else:
            if list(_weight.shape) != [num_embeddings, embedding_dim]:
                raise AssertionError("Shape of weight does not match num_embeddings and "
                                     "embedding_dim")
            self.weight = Parameter(_weight)
        self.mode, self.sparse = mode, sparse
        self.include_last_offset = include_last_offset

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight.select(0, self.padding_idx).fill_(0)

    def forward(self, input: Tensor, offsets=None,
                per_sample_weights: Tensor | None = None) -> Tensor:
        return embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type,
                             self.scale_grad_by_freq, self.mode, self.sparse,
                             per_sample_weights, self.include_last_offset, self.padding_idx)

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        s += f", mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True,
                        max_norm: float | None = None, norm_type: float = 2.0,
                        scale_grad_by_freq: bool = False, mode: str = "mean",
                        sparse: bool = False, include_last_offset: bool = False,
                        padding_idx: int | None = None) -> EmbeddingBag:
        """An EmbeddingBag whose weight is `embeddings` (frozen unless freeze=False)."""
        if embeddings.ndim != 2:
            raise AssertionError("Embeddings parameter is expected to be 2-dimensional")
        rows, cols = embeddings.shape
        bag = cls(rows, cols, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                  embeddings, include_last_offset, padding_idx)
        bag.weight.requires_grad = not freeze
        return bag
