"""C for reductions: the cascade that float sums add up in, and the reductions whose reduced
axis is strided while the outputs are contiguous (a column sum), where the loops are
interchanged so that a block of outputs accumulates in a vector of accumulators, each reduce
step streaming a contiguous row ("vertical" reduction); and the sums the threads split."""
from __future__ import annotations

import math

from ....ir.ops import Op
from ...kernel import Kernel

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


def block_size(k: Kernel, threads: int) -> int:
    """Outputs per block: BLOCK, or fewer so that each of `threads` gets a block."""
    outer, n = math.prod(k.loops[:-1]), k.loops[-1]
    want = max(1, -(-threads // outer))          # blocks each outer iteration should have
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


def render_vertical(r, k: Kernel, fname: str, pname) -> str:
    """Kernel k (is_vertical) as a column sum, for renderer r. A float sum over more than
    ROW_LEVEL rows adds up in a cascade of per-output levels: the rows' block accumulators move
    up every ROW_LEVEL rows (and those every LEVEL times), as whole vectors."""
    op, init = _MONOID[k.red_op]
    t = r.compute_type(k.acc.dtype)

    def decl(level: int) -> list[str]:
        return r.statements(k, pname, (level,))
    store = f"out0[{k.store_index.render()}] = {r.store(k, k.store_val.name)};"
    outer, n_inner = k.loops[:-1], k.loops[-1]
    inner = f"o{len(k.loops) - 1}"
    bs = block_size(k, r.caps.threads)
    blocks = -(-n_inner // bs)
    rows = k.red_loops[0]
    sizes = level_sizes(rows, ROW_LEVEL) if cascades(k) else []
    levels = ["accs"] + [f"lv{i}" for i in range(1, len(sizes) + 1)]
    lines = [f"{r.signature(fname, k.params)} {{"]
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


def cascade_lines(r, k: Kernel, pname) -> list[str]:
    """A float sum in a cascade: the last reduce loop in vectorized chunks of at most CHUNK
    elements (whole, up to WHOLE), each chunk's sum an entry of the levels; then the
    statements after it."""
    t, m = r.compute_type(k.acc.dtype), k.red_loops[-1]
    last = f"r{len(k.red_loops) - 1}"
    outer = math.prod(k.red_loops[:-1])
    size = m if m <= WHOLE else chunk_length(m)
    sizes = level_sizes(outer * -(-m // size))
    lines = cascade_decl(t, sizes)
    ind = ""
    for i, n in enumerate(k.red_loops[:-1]):
        lines.append(f"{ind}for (long r{i} = 0; r{i} < {n}; r{i}++) {{")
        ind += "  "
    lo, hi = "0", str(m)
    if size < m:
        lines.append(f"{ind}for (long cb = 0; cb < {m}; cb += {size}) {{")
        ind += "  "
        lo, hi = "cb", f"cb + {size}"
        if m % size:
            lines.append(f"{ind}const long ce = cb + {size} < {m} ? cb + {size} : {m};")
            hi = "ce"
    lines.append(f"{ind}{t} ch = 0;")
    lines.append(f"{ind}#pragma omp simd reduction(+:ch)")
    lines.append(f"{ind}for (long {last} = {lo}; {last} < {hi}; {last}++) {{")
    lines.extend(f"{ind}  {s}" for s in r.statements(k, pname, (1,)))
    lines.append(f"{ind}  ch = ch + {k.red_val.name};")
    lines.append(f"{ind}}}")
    lines.append(f"{ind}{cascade_push('ch', sizes)}")
    while ind:
        ind = ind[:-2]
        lines.append(f"{ind}}}")
    lines.append(f"{t} acc = {cascade_total(sizes)};")
    lines.extend(r.round_acc(k))
    lines.extend(r.statements(k, pname, (2,)))
    return lines


def split_cascade_lines(r, k: Kernel, pname) -> list[str]:
    """A float sum (one reduce loop) that the threads split: its elements read as STREAMS
    contiguous parts at once (one when short), in chunks of STREAM_CHUNK elements of each; each
    thread takes a run of chunks and adds them up in a cascade of its own, and the threads'
    sums are added. Then the statements after it."""
    n, t, v = k.red_loops[0], r.compute_type(k.acc.dtype), k.red_val.name
    streams = STREAMS if n >= STREAMS_MIN else 1
    part = n // streams
    size = chunk_length(part, STREAM_CHUNK)
    chunks = -(-part // size)
    sizes = level_sizes(chunks)
    accs = [f"a{j}" for j in range(streams)]
    body = r.statements(k, pname, (1,))
    lines = [f"{t} acc = 0;", "#pragma omp parallel reduction(+:acc)", "{"]
    lines += ["  " + line for line in cascade_decl(t, sizes)]
    lines.append("  #pragma omp for schedule(static) nowait")
    lines.append(f"  for (long c = 0; c < {chunks}; c++) {{")
    end = (f"c * {size} + {size}" if part % size == 0 else
           f"c * {size} + {size} < {part} ? c * {size} + {size} : {part}")
    lines.append(f"    const long qe = {end};")
    lines.append(f"    {t} {', '.join(f'{a} = 0' for a in accs)};")
    lines.append(f"    #pragma omp simd reduction(+:{','.join(accs)})")
    lines.append(f"    for (long q = c * {size}; q < qe; q++) {{")
    for j, a in enumerate(accs):
        lines.append(f"      {{ const long r0 = q + {j * part}L;")
        lines.extend("        " + line for line in body)
        lines.append(f"        {a} = {a} + {v}; }}")
    lines.append("    }")
    total = accs[0] if streams == 1 else " + ".join(f"({a} + {b})" for a, b in
                                                     zip(accs[::2], accs[1::2]))
    lines.append(f"    {cascade_push(f'({total})', sizes)}")
    lines.append("  }")
    lines.append(f"  acc = acc + {cascade_total(sizes)};")
    lines.append("}")
    if n % streams:
        lines.append(f"for (long r0 = {streams * part}L; r0 < {n}L; r0++) {{")
        lines.extend("  " + line for line in body)
        lines.append(f"  acc = acc + {v};")
        lines.append("}")
    lines.extend(r.round_acc(k))
    lines.extend(r.statements(k, pname, (2,)))
    return lines


# a reduction this long, split between the threads, reads its input as STREAMS contiguous
# quarters at once, each with its own accumulator: a sum of 16M went 4.3 -> 2.8 ms (more
# loads in flight, and no add waiting on the one before it)
STREAMS = 4
STREAMS_MIN = 1 << 14


def stream_lines(r, k: Kernel, pname) -> list[str]:
    """The split reduction of kernel k (one reduce loop) as STREAMS interleaved contiguous
    parts, then the statements after it."""
    n, t, v = k.red_loops[0], r.compute_type(k.acc.dtype), k.red_val.name
    part = n // STREAMS
    accs = [f"a{j}" for j in range(STREAMS)]
    nan_flag = k.red_op in (Op.RMAX, Op.RMIN)
    red = {Op.SUM: "+", Op.PROD: "*", Op.RMAX: "max", Op.RMIN: "min"}[k.red_op]
    lines = [f"{t} {', '.join(f'{a} = {r.red_init(k)}' for a in accs)};"]
    if nan_flag:
        lines.append("int nan_seen = 0;")
    flag = " reduction(|:nan_seen)" if nan_flag else ""
    lines.append(f"#pragma omp parallel for simd schedule(static) "
                 f"reduction({red}:{','.join(accs)}){flag}")
    lines.append(f"for (long q = 0; q < {part}; q++) {{")
    body = r.statements(k, pname, (1,))

    def step(a: str) -> str:
        if k.red_op in (Op.SUM, Op.PROD):
            return r.red_update(k, v, a)
        cmp = ">" if k.red_op is Op.RMAX else "<"
        return f"{a} = {v} {cmp} {a} ? {v} : {a}; nan_seen |= {v} != {v};"
    for j, a in enumerate(accs):
        lines.append(f"  {{ const long r0 = q + {j * part}L;")
        lines.extend("    " + line for line in body)
        lines.append(f"    {step(a)} }}")
    lines.append("}")
    if n % STREAMS:
        lines.append(f"for (long r0 = {STREAMS * part}L; r0 < {n}L; r0++) {{")
        lines.extend("  " + line for line in body)
        lines.append(f"  {step(accs[0])}")
        lines.append("}")
    if k.red_op in (Op.SUM, Op.PROD):
        lines.append(f"{t} acc = {f' {red} '.join(accs)};")
    else:
        cmp = ">" if k.red_op is Op.RMAX else "<"
        lines.append(f"{t} acc = {accs[0]};")
        lines.extend(f"acc = {a} {cmp} acc ? {a} : acc;" for a in accs[1:])
        lines.append("if (nan_seen) acc = NAN;")
    lines.extend(r.statements(k, pname, (2,)))
    return lines
