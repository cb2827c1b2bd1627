"""repr/str of tensors, character for character as PyTorch prints them.

The rules are PyTorch's (torch/_tensor_str.py): one number format per tensor, chosen from its
nonzero finite values (integer-valued floats print as `1.`; scientific notation when the
largest/smallest magnitude ratio exceeds 1000, the largest exceeds 1e8 or the smallest is below
1e-4); every element padded to one width; rows wrapped at `linewidth`; tensors with more than
`threshold` elements summarized to `edgeitems` per edge; suffixes for a non-default dtype, the
size of an empty tensor, and autograd state.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass
from typing import Any, Iterator

import numpy as np

from ..ir import dtypes as dt


@dataclass
class PrintOptions:
    """The current print options (torch._tensor_str.PRINT_OPTS)."""

    precision: int = 4
    threshold: float = 1000
    edgeitems: int = 3
    linewidth: int = 80
    sci_mode: bool | None = None


PRINT_OPTS = PrintOptions()

_PROFILES = {
    "default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
    "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
    "full": dict(precision=4, threshold=math.inf, edgeitems=3, linewidth=80),
}


def set_printoptions(precision: int | None = None, threshold: float | None = None,
                     edgeitems: int | None = None, linewidth: int | None = None,
                     profile: str | None = None, sci_mode: bool | None = None) -> None:
    """torch.set_printoptions: options for printing tensors.

    `profile` ("default", "short" or "full") sets precision, threshold, edgeitems and linewidth,
    then the explicit arguments override it. As in PyTorch, `sci_mode` is reset to automatic
    (None) by any call that does not pass it.
    """
    for k, v in _PROFILES.get(profile, {}).items():   # an unknown profile is ignored, as in torch
        setattr(PRINT_OPTS, k, v)
    if precision is not None:
        PRINT_OPTS.precision = precision
    if threshold is not None:
        PRINT_OPTS.threshold = threshold
    if edgeitems is not None:
        PRINT_OPTS.edgeitems = edgeitems
    if linewidth is not None:
        PRINT_OPTS.linewidth = linewidth
    PRINT_OPTS.sci_mode = sci_mode


def get_printoptions() -> dict[str, Any]:
    """The current print options, as keyword arguments for set_printoptions."""
    return asdict(PRINT_OPTS)


@contextlib.contextmanager
def printoptions(**kwargs) -> Iterator[None]:
    """Change the print options inside a `with` block only."""
    old = get_printoptions()
    set_printoptions(**kwargs)
    try:
        yield
    finally:
        set_printoptions(**old)


# --------------------------------------------------------------------------- number format
class _Formatter:
    """One number format for all elements of a tensor, and the width they are padded to."""

    def __init__(self, values: np.ndarray, d: dt.DType):
        self.floating = d.is_floating_point
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        flat = values.reshape(-1)
        if not self.floating:
            for v in flat.tolist():
                self.max_width = max(self.max_width, len(f"{v}"))
            return
        nz = flat[np.isfinite(flat) & (flat != 0)]
        if nz.size == 0:
            return
        mags = np.abs(nz).astype(np.float64)
        lo, hi = float(mags.min()), float(mags.max())
        self.int_mode = bool(np.all(nz == np.ceil(nz)))
        if PRINT_OPTS.sci_mode is None:
            self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
        else:
            self.sci_mode = PRINT_OPTS.sci_mode
        p = PRINT_OPTS.precision
        for v in nz.tolist():
            if self.sci_mode:
                n = len(f"{v:.{p}e}")
            elif self.int_mode:
                n = len(f"{v:.0f}") + 1
            else:
                n = len(f"{v:.{p}f}")
            self.max_width = max(self.max_width, n)

    def format(self, v) -> str:
        if self.floating:
            p = PRINT_OPTS.precision
            if self.sci_mode:
                s = f"{v:{self.max_width}.{p}e}"
            elif self.int_mode:
                s = f"{v:.0f}"
                if not (math.isinf(v) or math.isnan(v)):
                    s += "."
            else:
                s = f"{v:.{p}f}"
        else:
            s = f"{v}"
        return s.rjust(self.max_width)


def _summarized(a: np.ndarray) -> np.ndarray:
    """The elements a summarized print shows (they alone choose the number format)."""
    e = PRINT_OPTS.edgeitems
    if a.ndim == 0:
        return a
    if a.ndim == 1:
        return np.concatenate([a[:e], a[-e:]]) if a.shape[0] > 2 * e else a
    if not e:
        return a[:0].reshape(-1)
    rows = list(range(e)) + list(range(a.shape[0] - e, a.shape[0])) \
        if a.shape[0] > 2 * e else range(a.shape[0])
    return np.concatenate([_summarized(a[i]).reshape(-1) for i in rows])


# --------------------------------------------------------------------------- layout
def _vector_str(a: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    per_line = max(1, math.floor((PRINT_OPTS.linewidth - indent) / (fmt.max_width + 2)))
    e = PRINT_OPTS.edgeitems
    if summarize and not e:
        data = ["..."]
    elif summarize and a.shape[0] > 2 * e:
        data = ([fmt.format(v) for v in a[:e].tolist()] + [" ..."]
                + [fmt.format(v) for v in a[-e:].tolist()])
    else:
        data = [fmt.format(v) for v in a.tolist()]
    lines = [", ".join(data[i:i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _array_str(a: np.ndarray, indent: int, summarize: bool, fmt: _Formatter) -> str:
    if a.ndim == 0:
        return fmt.format(a.item())
    if a.ndim == 1:
        return _vector_str(a, indent, summarize, fmt)
    e = PRINT_OPTS.edgeitems
    n = a.shape[0]
    if summarize and n > 2 * e:
        slices = ([_array_str(a[i], indent + 1, summarize, fmt) for i in range(e)] + ["..."]
                  + [_array_str(a[i], indent + 1, summarize, fmt) for i in range(n - e, n)])
    else:
        slices = [_array_str(a[i], indent + 1, summarize, fmt) for i in range(n)]
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(slices) + "]"


def format_array(a: np.ndarray, d: dt.DType, indent: int = 7) -> str:
    """The bracketed body of a tensor's repr (what follows `tensor(`)."""
    if a.size == 0:
        return "[]"
    summarize = a.size > PRINT_OPTS.threshold
    fmt = _Formatter(_summarized(a) if summarize else a, d)
    return _array_str(a, indent, summarize, fmt)


def _add_suffixes(body: str, suffixes: list[str], indent: int) -> str:
    out = [body]
    last_line_len = len(body) - body.rfind("\n") + 1
    for s in suffixes:
        if last_line_len + len(s) + 2 > PRINT_OPTS.linewidth:
            out.append(",\n" + " " * indent + s)
            last_line_len = indent + len(s)
        else:
            out.append(", " + s)
            last_line_len += len(s) + 2
    out.append(")")
    return "".join(out)


def _grad_fn_name(gf) -> str:
    name = getattr(gf, "name", None)
    return name() if callable(name) else type(gf).__name__


def format_tensor(t) -> str:
    """repr(t) exactly as PyTorch prints it."""
    from .tensor import Tensor
    prefix = "tensor(" if type(t) is Tensor or type(t).__name__ == "Parameter" \
        else f"{type(t).__name__}("
    indent = len(prefix)
    a = np.asarray(t._array())
    d = t.dtype
    if d == dt.bfloat16:   # printed from its float values, as PyTorch prints it
        a = a.astype(np.float32)
    # a tensor off the CPU names its device first, as PyTorch's does
    suffixes = [] if t.device.type == "cpu" else [f"device='{t.device}'"]
    if a.size == 0:
        if a.ndim != 1:
            suffixes.append(f"size={tuple(a.shape)}")
        if d != dt.get_default_dtype():
            suffixes.append(f"dtype={d!r}")
        body = "[]"
    else:
        if not PRINT_OPTS.edgeitems:
            suffixes.append(f"size={tuple(a.shape)}")
        if d not in (dt.get_default_dtype(), dt.int64, dt.bool_):
            suffixes.append(f"dtype={d!r}")
        body = format_array(a, d, indent)
    gf = getattr(t, "grad_fn", None)
    if gf is not None:
        suffixes.append(f"grad_fn=<{_grad_fn_name(gf)}>")
    elif getattr(t, "requires_grad", False):
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + body, suffixes, indent)
