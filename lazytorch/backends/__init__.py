"""torch.backends for this CPU-only build: the switches scripts set at start-up.

Each backend module answers as PyTorch's CPU-only build does (`cudnn.is_available()` and
`mps.is_available()` are False) and keeps the flags scripts set (`cudnn.benchmark = True`,
`cuda.matmul.allow_tf32 = True`), which change nothing here: lazytorch's kernels are its own
generated C, computed in the tensors' dtypes.
"""
from __future__ import annotations

from . import cpu, cuda, cudnn, mkl, mkldnn, mps, openmp

__all__ = ["cpu", "cuda", "cudnn", "mkl", "mkldnn", "mps", "openmp"]
