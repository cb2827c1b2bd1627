"""Small reductions (a pooling window) written out element by element, so that the loop over
the outputs vectorizes instead of the short reduce loop."""
from __future__ import annotations

import itertools
import math

from ....ir.ops import Op
from ...kernel import Kernel
from ...symbolic import sizes_vary

# reductions over at most this many elements per output (a pooling window) are written out
# in full, so the loop over the outputs vectorizes instead
SMALL_WINDOW = 16


def is_small_window(r, k: Kernel) -> bool:
    """Is k's reduction a window small enough to write out (for renderer r)? Not where sizes
    vary (a written-out window is a new kernel per size)."""
    if sizes_vary():
        return False
    if k.red_op in (Op.ARGMAX, Op.ARGMIN):
        if len(k.red_loops) != 1 or k.red_val.dtype in r.ROUND:
            return False
    elif k.red_op not in (Op.SUM, Op.PROD, Op.RMAX, Op.RMIN) or k.acc.dtype in r.ROUND:
        return False
    return (bool(k.red_loops) and math.prod(k.red_loops) <= SMALL_WINDOW and bool(k.loops)
            and math.prod(k.loops) >= 8 and k.scatter is None)


def _argbest_window(r, k: Kernel, pname) -> list[str]:
    """argmax/argmin of a small window, in selects the compiler vectorizes: every element,
    then the best (NaN wins), then the first position holding it (or the first NaN)."""
    n, v, t = k.red_loops[0], k.red_val.name, r.compute_type(k.red_val.dtype)
    cmp = ">" if k.red_op is Op.ARGMAX else "<"
    isf = k.red_val.dtype.kind == "f"
    lines = []
    for i in range(n):
        lines.append(f"{t} e{i}; {{ const long r0 = {i};")
        lines.extend("  " + line for line in r.statements(k, pname, (1,)))
        lines.append(f"  e{i} = {v}; }}")
    lines.append(f"{t} best = {r.argbest_start(k) if isf else r.red_init(k)};")
    for i in range(n):
        lines.append(f"best = e{i} {cmp} best ? e{i} : best;"
                     + (f" best = e{i} != e{i} ? e{i} : best;" if isf else ""))
    lines.append(f"long long acc = {n - 1};")
    lines.extend(f"acc = e{i} == best ? {i} : acc;" for i in reversed(range(n - 1)))
    if isf:
        lines.append(f"long long nan_at = {n - 1};")
        lines.extend(f"nan_at = e{i} != e{i} ? {i} : nan_at;" for i in reversed(range(n - 1)))
        lines.append("acc = best != best ? nan_at : acc;")
    return lines


def window_lines(r, k: Kernel, pname) -> list[str]:
    """A small reduction written out element by element (each with its reduce variables as
    constants, which the compiler folds into the indices), then the statements after it.
    max/min propagate NaN by a select after each step: vectorizable, unlike a flag."""
    if k.red_op in (Op.ARGMAX, Op.ARGMIN):
        return _argbest_window(r, k, pname) + r.statements(k, pname, (2,))
    lines = [f"{r.compute_type(k.acc.dtype)} acc = {r.red_init(k)};"]
    body = r.statements(k, pname, (1,))
    v = k.red_val.name
    if k.red_op in (Op.RMAX, Op.RMIN):
        cmp = ">" if k.red_op is Op.RMAX else "<"
        update = f"acc = {v} {cmp} acc ? {v} : acc;"
        if k.acc.dtype.kind == "f":
            update += f" acc = {v} != {v} ? {v} : acc;"
    else:
        update = r.red_update(k, v)
    for rs in itertools.product(*(range(n) for n in k.red_loops)):
        consts = ", ".join(f"r{i} = {j}" for i, j in enumerate(rs))
        lines.append(f"{{ const long {consts};")
        lines.extend("  " + line for line in body)
        lines.append(f"  {update} }}")
    lines.extend(r.statements(k, pname, (2,)))
    return lines
