"""Constructors beyond creation.py: torch.logspace, range, asarray, scalar_tensor, empty_strided,
fill, zero_, and the Tensor.new_* family (new tensors with the source's dtype by default)."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..ir import dtypes as dt
from . import creation as cr
from .size import Size
from .tensor import Tensor, check_device

__all__ = ["logspace", "range", "asarray", "scalar_tensor", "empty_strided", "fill", "zero_"]

_range = range


def logspace(start, end, steps: int, base: float = 10.0, *, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """base ** linspace(start, end, steps)."""
    where = check_device(device)
    d = cr._dtype(dtype)
    if steps < 0:
        raise RuntimeError("number of steps must be non-negative")
    exps = np.linspace(float(start), float(end), steps, dtype=np.float64)
    arr = np.power(float(base), exps)
    return cr._finish(cr.from_array(np.ascontiguousarray(arr.astype(d.np)), d, where),
                      requires_grad)


def range(start, end=None, step=1, *, dtype=None, device=None,
          requires_grad: bool = False) -> Tensor:
    """start, start + step, ... up to and including end (deprecated in PyTorch for arange)."""
    warnings.warn("torch.range is deprecated and will be removed in a future release because "
                  "its behavior is inconsistent with Python's range builtin. Instead, use "
                  "torch.arange, which produces values in [start, end).", UserWarning,
                  stacklevel=2)
    where = check_device(device)
    if end is None:
        start, end = 0, start
    if step == 0:
        raise RuntimeError("step must be nonzero")
    if (end - start) * step < 0:
        raise RuntimeError("upper bound and larger bound inconsistent with step sign")
    d = cr._dtype(dtype)
    n = int((end - start) / step) + 1
    arr = start + np.arange(n, dtype=np.float64) * step
    return cr._finish(cr.from_array(arr.astype(d.np), d, where), requires_grad)


def asarray(obj: Any, *, dtype=None, device=None, copy: bool | None = None,
            requires_grad: bool = False) -> Tensor:
    """obj as a tensor: a tensor or a numpy array is shared when dtype allows (copy=True
    always copies), other data is converted."""
    if isinstance(obj, Tensor):
        out = obj if dtype is None else obj.to(dt.to_dtype(dtype))
        out = out if device is None else out.to(device)
        out = out.clone() if copy and out is obj else out
    elif isinstance(obj, np.ndarray) and not copy:
        out = cr.as_tensor(obj, dtype=dtype, device=device)
    else:
        out = cr.tensor(obj, dtype=dtype, device=device)
    if copy is False and out is not obj and isinstance(obj, (Tensor, np.ndarray)) and \
            dtype is not None:
        raise ValueError("can't alias tensor from input with dtype conversion (copy=False)")
    return cr._finish(out, requires_grad) if requires_grad else out


def scalar_tensor(s, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A 0-d tensor holding s, in the default float dtype unless dtype is given."""
    return cr.full((), s, dtype=cr._dtype(dtype), device=device, requires_grad=requires_grad)


def empty_strided(size, stride, *, dtype=None, device=None, requires_grad: bool = False,
                  **_: Any) -> Tensor:
    """An uninitialized tensor of `size` (strides describe storage, which tensors here do not
    expose; the result is contiguous)."""
    if len(size) != len(stride):
        raise RuntimeError("mismatch in length of strides and shape")
    return cr.empty(tuple(size), dtype=dtype, device=device, requires_grad=requires_grad)


def fill(input: Tensor, value) -> Tensor:
    """A new tensor like input filled with value."""
    return input.clone().fill_(value)


def zero_(input: Tensor) -> Tensor:
    return input.zero_()


# ------------------------------------------------------------------------------ Tensor.new_*
def _size(size) -> tuple:
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (list, tuple)) else size


def new_tensor(self: Tensor, data, *, dtype=None, device=None, requires_grad: bool = False,
               **_: Any) -> Tensor:
    """A tensor holding a copy of data, in self's dtype unless dtype is given."""
    if isinstance(data, Tensor):
        warnings.warn("To copy construct from a tensor, it is recommended to use sourceTensor."
                      "detach().clone() or sourceTensor.detach().clone().requires_grad_(True), "
                      "rather than tensor.new_tensor(sourceTensor).", UserWarning, stacklevel=2)
        data = data.detach()
    return cr.tensor(data, dtype=dtype or self.dtype, device=device or self.device,
                     requires_grad=requires_grad)


def new_zeros(self: Tensor, *size, dtype=None, device=None, requires_grad: bool = False,
              **_: Any) -> Tensor:
    return cr.zeros(*_size(size), dtype=dtype or self.dtype, device=device or self.device,
                    requires_grad=requires_grad)


def new_ones(self: Tensor, *size, dtype=None, device=None, requires_grad: bool = False,
             **_: Any) -> Tensor:
    return cr.ones(*_size(size), dtype=dtype or self.dtype, device=device or self.device,
                   requires_grad=requires_grad)


def new_empty(self: Tensor, *size, dtype=None, device=None, requires_grad: bool = False,
              **_: Any) -> Tensor:
    return cr.empty(*_size(size), dtype=dtype or self.dtype, device=device or self.device,
                    requires_grad=requires_grad)


def new_full(self: Tensor, size, fill_value, *, dtype=None, device=None,
             requires_grad: bool = False, **_: Any) -> Tensor:
    return cr.full(tuple(size), fill_value, dtype=dtype or self.dtype, device=device or self.device,
                   requires_grad=requires_grad)


def new(self: Tensor, *args, **kwargs) -> Tensor:
    """The legacy constructor: new() is empty, new(2, 3) uninitialized, new(data) holds data,
    all in self's dtype."""
    if not args:
        return cr.empty(0, dtype=self.dtype, device=self.device)
    if all(isinstance(a, int) for a in args) or (len(args) == 1 and isinstance(args[0], Size)):
        return cr.empty(*args, dtype=self.dtype, device=self.device)
    return cr.tensor(args[0], dtype=self.dtype, device=self.device)


def fill_diagonal_(self: Tensor, fill_value, wrap: bool = False) -> Tensor:
    """Write fill_value on the main diagonal (all dims equal, or a matrix; a tall matrix's
    diagonal restarts after every N + 1 rows with wrap=True)."""
    if self.ndim < 2:
        raise RuntimeError("dimensions must larger than 1")
    n = self.shape[0]
    if self.ndim > 2 and any(s != n for s in self.shape):
        raise RuntimeError("all dimensions of input must be of equal length")
    strides = np.cumprod((1,) + tuple(self.shape[:0:-1]))[::-1]
    step = int(strides.sum())
    total = int(np.prod(self.shape))
    count = -(-total // step) if self.ndim == 2 and wrap else min(self.shape)
    mask = np.zeros(total, bool)
    mask[np.arange(count) * step] = True
    keep = cr.from_array(mask.reshape(tuple(self.shape)), dt.bool_, self.node.device or "cpu")
    from .elementwise import where_nodes
    self._assign(where_nodes(keep, fill_value, self).to(self.dtype).node)
    return self


def sum_to_size(self: Tensor, *size) -> Tensor:
    """self summed over the dims that broadcasting `size` to self's shape would expand."""
    size = tuple(_size(size))
    shape = tuple(self.shape)
    lead = len(shape) - len(size)
    ok = lead >= 0 and all(s == t or s == 1 for s, t in zip(size, shape[lead:]))
    if not ok:
        raise RuntimeError(f"size {{{list(size)}}} is not expandable to size "
                           f"{{{list(shape)}}}.")
    out = self.sum(tuple(_range(lead))) if lead else self
    dims = tuple(i for i, (s, t) in enumerate(zip(size, out.shape)) if s == 1 and t != 1)
    return out.sum(dims, keepdim=True) if dims else out


METHODS = {"new_tensor": new_tensor, "new_zeros": new_zeros, "new_ones": new_ones,
           "new_empty": new_empty, "new_full": new_full, "new": new,
           "fill_diagonal_": fill_diagonal_, "sum_to_size": sum_to_size}
