"""Conversions between probabilities and logits, as torch.distributions.utils has them."""
from __future__ import annotations

from ..frontend.tensor import Tensor
from ..ir import dtypes as dt


def clamp_probs(probs: Tensor) -> Tensor:
    """probs clamped into [eps, 1 - eps] of its dtype, so that their logs are finite."""
    eps = dt.finfo(probs.dtype).eps
    return probs.clamp(min=eps, max=1 - eps)


def probs_to_logits(probs: Tensor, is_binary: bool = False) -> Tensor:
    """log p of the categories (or the log-odds log p - log(1 - p) when is_binary)."""
    ps_clamped = clamp_probs(probs)
    if is_binary:
        return ps_clamped.log() - (-ps_clamped).log1p()
    return ps_clamped.log()


def logits_to_probs(logits: Tensor, is_binary: bool = False) -> Tensor:
    """softmax over the last dim (or the sigmoid when is_binary)."""
    if is_binary:
        return logits.sigmoid()
    return logits.softmax(dim=-1)
