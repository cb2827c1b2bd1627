"""Norms and distances: torch.linalg.vector_norm / matrix_norm / norm, torch.norm, dist, cdist.

Built from reductions and elementwise ops. Where a norm is 0 its gradient is 0, as PyTorch's
(the root of a zero sum would otherwise give 0/0 = NaN): the root is taken of a sum that is
replaced by 1 where it is 0, and the result put back to 0 there.
"""
from __future__ import annotations

import math

from ..ir import dtypes as dt
from . import elementwise as ew
from . import reduce as rd
from .tensor import Tensor, _canon_dim

__all__ = ["vector_norm", "matrix_norm", "linalg_norm", "norm", "dist", "cdist", "renorm"]


def _input(x, name: str, dtype) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(x).__name__}")
    if dtype is not None:
        x = x.to(dt.to_dtype(dtype))
    if not x.dtype.is_floating_point:
        raise RuntimeError(f"{name}: Expected a floating point or complex tensor as input. Got "
                           f"{dt.scalar_type_name(x.dtype)}")
    return x


def _root(s: Tensor, p: float) -> Tensor:
    """s ** (1/p), with a zero gradient where s is 0."""
    zero = s == 0
    r = ew.where_nodes(zero, 1.0, s)
    r = r.sqrt() if p == 2 else r ** (1.0 / p)
    return ew.where_nodes(zero, 0.0, r)


def vector_norm(x: Tensor, ord=2, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """The ord-norm of x over dim (all dims when None) as a vector: (sum |x|^ord)^(1/ord);
    inf/-inf: the largest/smallest |x|; 0: the number of nonzero elements."""
    x = _input(x, "linalg.vector_norm", dtype)
    if isinstance(ord, str):
        raise TypeError(f"linalg_vector_norm(): argument 'ord' (position 2) must be Number, "
                        f"not {type(ord).__name__}")
    ord = float(ord)
    if isinstance(dim, int):
        dim = (dim,)
    if ord == math.inf:
        return rd.amax(x.abs(), dim if dim is not None else (), keepdim)
    if ord == -math.inf:
        return rd.amin(x.abs(), dim if dim is not None else (), keepdim)
    if ord == 0:
        return rd.sum((x != 0).to(x.dtype), dim, keepdim)
    if ord == 1:
        return rd.sum(x.abs(), dim, keepdim)
    if ord == 2:
        return _root(rd.sum(x.abs().square(), dim, keepdim), 2)
    return _root(rd.sum(x.abs() ** ord, dim, keepdim), ord)


def matrix_norm(A: Tensor, ord="fro", dim=(-2, -1), keepdim: bool = False, *,
                dtype=None) -> Tensor:
    """The ord-norm of the matrices over dims `dim`: "fro" (Frobenius), 1/-1 (largest/
    smallest column sum of |A|), inf/-inf (largest/smallest row sum)."""
    A = _input(A, "linalg.matrix_norm", dtype)
    if A.ndim < 2:
        raise RuntimeError("linalg.matrix_norm: The input tensor A must have at least 2 "
                           "dimensions.")
    dim = tuple(dim)
    if len(dim) != 2:
        raise RuntimeError(f"linalg.matrix_norm: dim must be a 2-tuple. Got "
                           f"{' '.join(map(str, dim))}")
    d0, d1 = (_canon_dim(d, A.ndim) for d in dim)
    if d0 == d1:
        raise RuntimeError(f"linalg.matrix_norm: dims must be different. Got ({dim[0]}, "
                           f"{dim[1]})")
    if ord == "fro":
        return vector_norm(A, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2, 2.0, -2.0):
        raise NotImplementedError(f"linalg.matrix_norm: ord={ord!r} needs the singular values "
                                  f"(an SVD), which lazytorch does not compute")
    if not isinstance(ord, (int, float)) or abs(ord) not in (1, math.inf):
        raise RuntimeError(f"linalg.matrix_norm: Order {ord} not supported.")
    # 1: sum over rows (d0), then the max over columns (d1); inf: the other way round
    inner, outer = (d0, d1) if abs(ord) == 1 else (d1, d0)
    sums = rd.sum(A.abs(), inner, keepdim=True)
    pick = rd.amax if ord > 0 else rd.amin
    out = pick(sums, outer, keepdim=True)
    return out if keepdim else out.squeeze((d0, d1))


def linalg_norm(A: Tensor, ord=None, dim=None, keepdim: bool = False, *, dtype=None) -> Tensor:
    """torch.linalg.norm: a vector norm over one dim (or of the flattened tensor when neither
    ord nor dim is given), a matrix norm over two (or of a 2-D tensor given only ord)."""
    if not isinstance(A, Tensor):
        raise TypeError(f"linalg_norm(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(A).__name__}")
    if isinstance(dim, int):
        dim = (dim,)
    if dim is None:
        if ord is None:
            return vector_norm(A, 2, None, keepdim, dtype=dtype)
        if A.ndim not in (1, 2):
            raise RuntimeError(f"linalg.norm: If dim is not specified but ord is, the input must "
                               f"be 1D or 2D. Got {A.ndim}D.")
        dim = tuple(range(A.ndim))
    if len(dim) == 1 and not isinstance(ord, str):
        return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
    if len(dim) == 2 or isinstance(ord, str):
        return matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)
    raise RuntimeError(f"linalg.norm: If dim is specified, it must be of length 1 or 2. Got "
                       f"{list(dim)}")


def norm(input: Tensor, p="fro", dim=None, keepdim: bool = False, dtype=None) -> Tensor:
    """torch.norm / Tensor.norm: a vector norm over dim ("fro" is the 2-norm), or "nuc"."""
    if isinstance(dim, int):
        dim = (dim,)
    if p == "nuc":
        return matrix_norm(input, "nuc", dim if dim is not None else (-2, -1), keepdim,
                           dtype=dtype)
    if p in ("fro", None):
        p = 2
    if isinstance(p, str):
        raise RuntimeError(f"norm: unsupported p={p!r}")
    return vector_norm(input, p, dim, keepdim, dtype=dtype)


def dist(input: Tensor, other: Tensor, p=2) -> Tensor:
    """The p-norm of input - other (broadcast)."""
    if not isinstance(other, Tensor):
        raise TypeError(f"dist(): argument 'other' (position 2) must be Tensor, not "
                        f"{type(other).__name__}")
    return vector_norm(input - other, p)


def cdist(x1: Tensor, x2: Tensor, p: float = 2.0, compute_mode: str | None = None) -> Tensor:
    """The p-norm distance between each row of x1 (..., P, M) and each row of x2 (..., R, M):
    (..., P, R). Computed from the differences (exact where PyTorch's matrix-product shortcut
    for p=2 rounds), fused into one reduction."""
    for i, x in enumerate((x1, x2), 1):
        if not isinstance(x, Tensor):
            raise TypeError(f"cdist(): argument 'x{i}' (position {i}) must be Tensor, not "
                            f"{type(x).__name__}")
        if x.ndim < 2:
            raise RuntimeError(f"cdist only supports at least 2D tensors, X{i} got: {x.ndim}D")
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(f"X1 and X2 must have the same number of columns. X1: "
                           f"{x1.shape[-1]} X2: {x2.shape[-1]}")
    if p < 0:
        raise RuntimeError("cdist only supports non-negative p values")
    for x in (x1, x2):
        if not x.is_floating_point():
            raise RuntimeError(f"cdist only supports floating-point dtypes, X{1 if x is x1 else 2}"
                               f" got: {dt.scalar_type_name(x.dtype)}")
    if x1.dtype != x2.dtype:
        raise RuntimeError(f"expected scalar type {dt.scalar_type_name(x1.dtype)} but found "
                           f"{dt.scalar_type_name(x2.dtype)}")
    diff = x1.unsqueeze(-2) - x2.unsqueeze(-3)
    return vector_norm(diff, p, -1)


def renorm(input: Tensor, p: float, dim: int, maxnorm: float) -> Tensor:
    """Each slice along dim whose p-norm exceeds maxnorm scaled down to norm maxnorm."""
    if not isinstance(input, Tensor):
        raise TypeError(f"renorm(): argument 'input' (position 1) must be Tensor, not "
                        f"{type(input).__name__}")
    if p <= 0:
        raise RuntimeError("renorm: non-positive-norm not supported")
    if maxnorm < 0:
        raise RuntimeError(f"renorm: expected maxnorm to be >= 0 but got {maxnorm}")
    d = _canon_dim(dim, input.ndim)
    rest = tuple(i for i in range(input.ndim) if i != d)
    norms = vector_norm(input, p, rest, keepdim=True)
    # PyTorch's factor, maxnorm / (norm + 1e-7) where the norm is too large
    factor = ew.where_nodes(norms > maxnorm, maxnorm / (norms + 1e-7), 1.0).to(input.dtype)
    return input * factor
