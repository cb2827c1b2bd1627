"""C for reductions: the cascade that float sums add up in, and the reductions whose reduced
axis is strided while the outputs are contiguous (a column sum), where the loops are
interchanged so that a block of outputs accumulates in a vector of accumulators, each reduce
step streaming a contiguous row ("vertical" reduction)."""
from __future__ import annotations

import math

from ..ops import Op
from ..runtime import cpu
from .kernel import Kernel

# Float sums add up in a cascade, as PyTorch's CPU sums do: a vectorized loop sums a chunk of
# at most CHUNK elements, its sum is added into the first of a few levels, and a level that has
# taken its count of entries is added into the next and cleared. Each rounding then happens in
# a sum of like-sized parts and the error grows with log(n), not n (one accumulator summed
# 3e8 copies of 0.1 to 28.7M, not 30M). The vectorized loop is the same as without levels:
# the levels cost a few scalar adds per chunk, and the chunk's sum one horizontal add of the
# vector accumulator. Each vector lane adds a chunk's elements one after another (gcc uses
# 8-float vectors here): 3e8 copies of 0.1 summed 1.3e-6 high with 128 per lane, 9.5e-7 low
# with 64 and 1.2e-7 high with 32 (PyTorch: 1.1e-6, its cascade's levels take 128 there). A
# sum the threads split takes 32 per lane, a reduce loop inside a kernel 64; but loops of up
# to WHOLE elements are not cut (chunks of 512 made softmax over rows of 1024 cost 1.035x the
# time, in thread CPU time).
CHUNK = 512
WHOLE = 1024
STREAM_CHUNK = 256  # the chunk of each stream of a sum the threads split (STREAMS at once)
LEVEL = 16          # entries a level takes before it moves up (a power of two)
ROW_LEVEL = 32      # rows a column sum's block accumulators take before they move up


def cascades(k: Kernel) -> bool:
    """Does kernel k's reduction add up in a cascade (a float sum)?"""
    return k.red_op is Op.SUM and k.acc is not None and k.acc.dtype.kind == "f"


def level_sizes(items: int, first: int = LEVEL) -> list[int]:
    """How many entries each level takes before it is added into the next, for `items`
    entries in all: `first` for the first level, LEVEL above it. The last level, not listed,
    takes the rest (at most LEVEL entries; `first` when it is the only level)."""
    sizes, per = [], first
    while items > per:
        sizes.append(per)
        items = -(-items // per)
        per = LEVEL
    return sizes


def chunk_length(n: int, most: int = CHUNK) -> int:
    """The length of the chunks a loop of n elements is cut into: at most `most`, and as even
    as multiples of 16 allow (676: 352 and 324, not 512 and 164, whose short tail costs a
    horizontal add of its own for few elements)."""
    if n <= most:
        return n
    per = -(-n // -(-n // most))             # n over the fewest chunks, rounded up
    return min(most, -(-per // 16) * 16)


def cascade_decl(t: str, sizes: list[int]) -> list[str]:
    """The levels lv0.. (and their entry counter) of a cascade with these level sizes."""
    out = [f"{t} {', '.join(f'lv{i} = 0' for i in range(len(sizes) + 1))};"]
    return out + (["unsigned long lvn = 0;"] if sizes else [])


def cascade_push(value: str, sizes: list[int]) -> str:
    """The C statements adding one entry into the cascade, moving full levels up."""
    inner, spans = "", [math.prod(sizes[:i + 1]) for i in range(len(sizes))]
    for i in reversed(range(len(sizes))):
        count = "++lvn" if i == 0 else "lvn"
        inner = (f"if (({count} & {spans[i] - 1}) == 0) {{ lv{i + 1} = lv{i + 1} + lv{i}; "
                 f"lv{i} = 0;{' ' + inner if inner else ''} }}")
    return f"lv0 = lv0 + {value};" + (f" {inner}" if inner else "")


def cascade_total(sizes: list[int]) -> str:
    """The cascade's sum: its levels added from the lowest (smallest) up."""
    total = "lv0"
    for i in range(1, len(sizes) + 1):
        total = f"({total} + lv{i})"
    return total


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
    """`decl(level)` returns the statements of a level; `store` the store line. A float sum
    over more than ROW_LEVEL rows adds up in a cascade of per-output levels: the rows' block
    accumulators move up every ROW_LEVEL rows (and those every LEVEL times), as whole vectors."""
    op, init = _MONOID[k.red_op]
    t = decl.ctype(k.acc.dtype)
    outer, n_inner = k.loops[:-1], k.loops[-1]
    inner = f"o{len(k.loops) - 1}"
    bs = block_size(k)
    blocks = -(-n_inner // bs)
    rows = k.red_loops[0]
    sizes = level_sizes(rows, ROW_LEVEL) if cascades(k) else []
    levels = ["accs"] + [f"lv{i}" for i in range(1, len(sizes) + 1)]
    lines = [f"void {fname}({args}) {{"]
    loops = [(f"o{i}", n) for i, n in enumerate(outer)] + [("blk", blocks)]
    work = math.prod(k.loops) * rows
    if work >= (1 << 15) and math.prod(n for _, n in loops) > 1:
        c = f" collapse({len(loops)})" if len(loops) > 1 else ""
        lines.append(f"  #pragma omp parallel for{c} schedule(static)")
    ind = "  "
    for name, n in loops:
        lines.append(f"{ind}for (long {name} = 0; {name} < {n}; {name}++) {{")
        ind += "  "
    lines.append(f"{ind}long lo = blk * {bs}, hi = lo + {bs} < {n_inner} ? lo + {bs} "
                 f": {n_inner};")
    lines.append(f"{ind}{t} {', '.join(f'{a}[{bs}]' for a in levels)};")
    lines.append(f"{ind}for (long j = 0; j < hi - lo; j++) "
                 + (f"accs[j] = {init};" if not sizes else
                    f"{{ {' '.join(f'{a}[j] = {init};' for a in levels)} }}"))
    row = ["#pragma omp simd", f"for (long {inner} = lo; {inner} < hi; {inner}++) {{",
           *(f"  {s}" for s in decl(0) + decl(1)),
           f"  accs[{inner} - lo] = accs[{inner} - lo] {op} {k.red_val.name};", "}"]
    if not sizes:
        lines.append(f"{ind}for (long r0 = 0; r0 < {rows}; r0++) {{")
        lines.extend(f"{ind}  {s}" for s in row)
        lines.append(f"{ind}}}")
    else:
        # blocks of rows, then the levels: a plain loop over a block's rows is unrolled and
        # jammed by the compiler (two rows per pass over the accumulators), a test inside
        # it was not (sum(0) of 4096x4096 took 1.2-1.3x the time)
        first = sizes[0]
        lines.append(f"{ind}for (long rb = 0; rb < {rows}; rb += {first}) {{")
        end = f"rb + {first}"
        if rows % first:
            lines.append(f"{ind}  const long re = rb + {first} < {rows} ? rb + {first} "
                         f": {rows};")
            end = "re"
        lines.append(f"{ind}  for (long r0 = rb; r0 < {end}; r0++) {{")
        lines.extend(f"{ind}    {s}" for s in row)
        lines.append(f"{ind}  }}")
        span, pad = 1, ind + "  "
        for i, (below, above) in enumerate(zip(levels, levels[1:])):
            if i:
                span *= sizes[i]
                lines.append(f"{pad}if (((rb / {first} + 1) & {span - 1}) == 0) {{")
                pad += "  "
            lines.append(f"{pad}#pragma omp simd")
            lines.append(f"{pad}for (long j = 0; j < hi - lo; j++) {{ {above}[j] = {above}[j]"
                         f" + {below}[j]; {below}[j] = 0; }}")
        while pad != ind + "  ":
            pad = pad[:-2]
            lines.append(f"{pad}}}")
        lines.append(f"{ind}}}")
    lines.append(f"{ind}for (long {inner} = lo; {inner} < hi; {inner}++) {{")
    total = "accs[j]"
    for a in levels[1:]:
        total = f"({total} + {a}[j])"
    lines.append(f"{ind}  const long j = {inner} - lo;")
    lines.append(f"{ind}  {t} acc = {total};")
    for s in decl(0) + decl(2):
        lines.append(f"{ind}  {s}")
    lines.append(f"{ind}  {store}")
    lines.append(f"{ind}}}")
    for _ in loops:
        ind = ind[:-2]
        lines.append(f"{ind}}}")
    lines.append("}")
    return "\n".join(lines)
