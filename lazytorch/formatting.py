"""repr/str of tensors, in PyTorch's format."""
from __future__ import annotations

import numpy as np

from . import dtypes as dt

_HIDDEN = {dt.float32, dt.int64, dt.bool_}


def _fmt_floats(a: np.ndarray):
    finite = a[np.isfinite(a)].astype(np.float64)
    if finite.size == 0:
        return lambda v: _special(v) or f"{v:.4f}", False
    if np.all(finite == np.round(finite)):
        if np.abs(finite).max() >= 1e8:
            return lambda v: _special(v) or f"{v:.4e}", True
        return lambda v: _special(v) or f"{v:.0f}.", False
    amax, amin = np.abs(finite).max(), np.abs(finite).min()
    if amax / max(amin, 1e-300) > 1000 or amax > 1e8 or amin < 1e-4:
        return lambda v: _special(v) or f"{v:.4e}", True
    return lambda v: _special(v) or f"{v:.4f}", False


def _special(v) -> str | None:
    if np.isnan(v):
        return "nan"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return None


def _formatter(a: np.ndarray, d: dt.DType):
    if d == dt.bool_:
        return lambda v: "True" if v else "False"
    if d.kind in "iu":
        return lambda v: str(int(v))
    return _fmt_floats(a)[0]


def _summarize(a: np.ndarray, edge: int = 3) -> np.ndarray:
    """The elements shown when summarizing (for choosing the number format)."""
    if a.ndim == 0:
        return a.reshape(1)
    if a.shape[0] > 2 * edge:
        a = np.concatenate([a[:edge], a[-edge:]])
    return np.concatenate([_summarize(x, edge).ravel() for x in a]) if a.ndim > 1 else a


def format_array(a: np.ndarray, d: dt.DType, indent: int = 7) -> str:
    summarize = a.size > 1000
    shown = _summarize(a) if summarize else a.ravel()
    fmt = _formatter(shown, d)
    width = max((len(fmt(v)) for v in shown), default=0)

    def cell(v) -> str:
        return fmt(v).rjust(width)

    per_line = max(1, (80 - indent) // (width + 2))

    def rec(x: np.ndarray, depth: int) -> str:
        if x.ndim == 0:
            return cell(x.item())
        n = x.shape[0]
        idx = list(range(n))
        if summarize and n > 6:
            idx = [0, 1, 2, None, n - 3, n - 2, n - 1]
        if x.ndim == 1:
            items = ["..." if i is None else cell(x[i]) for i in idx]
            lines, cur = [], []
            for it in items:
                cur.append(it)
                if len(cur) == per_line:
                    lines.append(", ".join(cur))
                    cur = []
            if cur:
                lines.append(", ".join(cur))
            return "[" + (",\n" + " " * (indent + depth + 1)).join(lines) + "]"
        sep = "," + "\n" * (x.ndim - 1) + " " * (indent + depth + 1)
        parts = ["..." if i is None else rec(x[i], depth + 1) for i in idx]
        return "[" + sep.join(parts) + "]"

    return rec(a, 0)


def format_tensor(t) -> str:
    a = np.asarray(t.numpy())
    d = t.dtype
    extras = []
    if a.size == 0:
        body = "[]"
        if a.ndim != 1:
            extras.append(f"size={tuple(a.shape)}")
    else:
        body = format_array(a, d)
    if d not in _HIDDEN:
        extras.append(f"dtype={d!r}")
    if getattr(t, "grad_fn", None) is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    if extras:
        sep = ", " if "\n" not in body else ",\n       "
        body += sep + ", ".join(extras)
    return f"tensor({body})"
