"""C for reductions whose reduced axis is strided while the outputs are contiguous (a column
sum): the loops are interchanged so that a block of outputs accumulates in a vector of
accumulators, each reduce step streaming a contiguous row ("vertical" reduction)."""
from __future__ import annotations

import math

from ..ops import Op
from ..runtime import cpu
from .kernel import Kernel

# outputs accumulated together: long contiguous runs of each row keep the prefetchers
# streaming (2048 ran sum(0) of 4096x4096 in 4 ms against 6 ms for 512), while the
# accumulators stay in L1; narrower when that leaves a thread without a block
BLOCK = 2048
MIN_BLOCK = 128


def block_size(k: Kernel) -> int:
    """Outputs per block: BLOCK, or fewer so that every core gets a block."""
    outer, n = math.prod(k.loops[:-1]), k.loops[-1]
    want = max(1, -(-cpu.cores() // outer))          # blocks each outer iteration should have
    b = min(BLOCK, -(-n // want))
    return max(MIN_BLOCK, -(-b // 16) * 16)

_MONOID = {Op.SUM: ("+", "0"), Op.PROD: ("*", "1")}


def is_vertical(k: Kernel) -> bool:
    """A SUM/PROD over one strided axis whose innermost output loop reads contiguously."""
    if k.red_op not in _MONOID or len(k.red_loops) != 1 or not k.loops or k.acc is None:
        return False
    if getattr(k, "scatter", None) is not None or k.loops[-1] < 16:
        return False
    inner = f"o{len(k.loops) - 1}"
    body = [v for v in k.vals if v.kind == "load" and k.level[id(v)] == 1]
    if not body:
        return False
    for v in body:
        idx = v.arg[1]
        if idx.nonlinear_vars() or v.arg[2]:
            return False
    strided = all(v.arg[1].coef("r0") not in (0, 1) for v in body)
    contiguous = any(v.arg[1].coef(inner) == 1 for v in body)
    return strided and contiguous


def render_vertical(k: Kernel, fname: str, args: str, decl, store) -> str:
    """`decl(level)` returns the statements of a level; `store` the store line."""
    op, init = _MONOID[k.red_op]
    t = decl.ctype(k.acc.dtype)
    outer, n_inner = k.loops[:-1], k.loops[-1]
    inner = f"o{len(k.loops) - 1}"
    bs = block_size(k)
    blocks = -(-n_inner // bs)
    lines = [f"void {fname}({args}) {{"]
    loops = [(f"o{i}", n) for i, n in enumerate(outer)] + [("blk", blocks)]
    work = math.prod(k.loops) * k.red_loops[0]
    if work >= (1 << 15) and math.prod(n for _, n in loops) > 1:
        c = f" collapse({len(loops)})" if len(loops) > 1 else ""
        lines.append(f"  #pragma omp parallel for{c} schedule(static)")
    ind = "  "
    for name, n in loops:
        lines.append(f"{ind}for (long {name} = 0; {name} < {n}; {name}++) {{")
        ind += "  "
    lines.append(f"{ind}long lo = blk * {bs}, hi = lo + {bs} < {n_inner} ? lo + {bs} "
                 f": {n_inner};")
    lines.append(f"{ind}{t} accs[{bs}];")
    lines.append(f"{ind}for (long j = 0; j < hi - lo; j++) accs[j] = {init};")
    lines.append(f"{ind}for (long r0 = 0; r0 < {k.red_loops[0]}; r0++) {{")
    lines.append(f"{ind}  #pragma omp simd")
    lines.append(f"{ind}  for (long {inner} = lo; {inner} < hi; {inner}++) {{")
    for s in decl(0) + decl(1):
        lines.append(f"{ind}    {s}")
    lines.append(f"{ind}    accs[{inner} - lo] = accs[{inner} - lo] {op} {k.red_val.name};")
    lines.append(f"{ind}  }}")
    lines.append(f"{ind}}}")
    lines.append(f"{ind}for (long {inner} = lo; {inner} < hi; {inner}++) {{")
    lines.append(f"{ind}  {t} acc = accs[{inner} - lo];")
    for s in decl(0) + decl(2):
        lines.append(f"{ind}  {s}")
    lines.append(f"{ind}  {store}")
    lines.append(f"{ind}}}")
    for _ in loops:
        ind = ind[:-2]
        lines.append(f"{ind}}}")
    lines.append("}")
    return "\n".join(lines)
