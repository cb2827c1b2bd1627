"""ReduceOp, and how each reduction and dtype travels over MPI."""
from __future__ import annotations

import enum

import numpy as np

from ..ir import dtypes as dt


class ReduceOp(enum.Enum):
    """The reductions a collective applies across ranks (`dist.ReduceOp.SUM`, ...)."""

    SUM = 0
    AVG = 1
    PRODUCT = 2
    MIN = 3
    MAX = 4

    def __repr__(self) -> str:
        return f"<RedOpType.{self.name}: {self.value}>"


# ReduceOp -> the MPI operation's name in mpi4py's MPI module (AVG is a SUM, divided after)
MPI_OPS = {ReduceOp.SUM: "SUM", ReduceOp.PRODUCT: "PROD", ReduceOp.MIN: "MIN",
           ReduceOp.MAX: "MAX", ReduceOp.AVG: "SUM"}
# on bool tensors a sum is a logical or and a product a logical and, as in PyTorch
BOOL_OPS = {ReduceOp.SUM: "MAX", ReduceOp.PRODUCT: "MIN", ReduceOp.MIN: "MIN",
            ReduceOp.MAX: "MAX"}


def check_op(op, d: dt.DType, what: str) -> ReduceOp:
    """`op` as a ReduceOp that `what` can apply to tensors of dtype `d`."""
    if not isinstance(op, ReduceOp):
        raise TypeError(f"{what}(): op must be a torch.distributed.ReduceOp, not {op!r}")
    if op is ReduceOp.AVG and not d.is_floating_point:
        raise RuntimeError(f"{what}(): ReduceOp.AVG needs a floating-point tensor, got "
                           f"{d!r}")
    return op


def wire(arr: np.ndarray, d: dt.DType) -> np.ndarray:
    """`arr` (of dtype `d`) as an array MPI has a datatype for: bool as uint8 and float16 as
    uint16 reinterpreted without a copy where they only move; see `wire_reduce` for sums."""
    if d is dt.bool_:
        return arr.view(np.uint8)
    if d is dt.float16 or d is dt.bfloat16:
        return arr.view(np.uint16)
    return arr


def wire_reduce(arr: np.ndarray, d: dt.DType) -> np.ndarray:
    """`arr` as an array MPI can reduce: half-precision values widened to float32 (MPI has no
    16-bit float type; the result is rounded back, as one float32 sum then a cast)."""
    if d is dt.float16 or d is dt.bfloat16:
        return arr.astype(np.float32)
    return wire(arr, d)


def from_wire(arr: np.ndarray, d: dt.DType) -> np.ndarray:
    """The inverse of wire/wire_reduce: `arr` as an array of dtype `d`."""
    if arr.dtype == np.float32 and d is not dt.float32:
        return arr.astype(d.np)
    if arr.dtype != d.np:
        return arr.view(d.np)
    return arr
