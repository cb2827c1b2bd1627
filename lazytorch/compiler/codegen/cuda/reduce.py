"""CUDA reductions: the accumulation each thread does (float sums in the CPU's cascade) and
the block's combination of its threads' partial results (or argmax/argmin's value and index
pairs) through warp shuffles and shared memory, for the block reductions (one block per
output), the row kernels and the fallback (one thread per output)."""
from __future__ import annotations

import math

from ....ir.ops import Op
from ...kernel import Kernel
from ..c.reduce import cascade_decl, cascade_push, cascade_total, level_sizes

# a thread adds this many of its elements one after another, then moves the chunk's sum into
# the levels of a cascade (c/reduce.py's): the rounding error grows like log(n), as the CPU's
CHUNK = 32
WARP = 32

# the reductions a block combines with shuffles: their combination of the C expressions a
# and b (max and min: a NaN wins, as in the thread's own fold)
COMBINE = {
    Op.SUM: lambda a, b: f"{a} + {b}",
    Op.PROD: lambda a, b: f"{a} * {b}",
    Op.RMAX: lambda a, b: f"({b} > {a} || {b} != {b}) ? {b} : {a}",
    Op.RMIN: lambda a, b: f"({b} < {a} || {b} != {b}) ? {b} : {a}",
}
# types the shuffle instructions move as they are; narrower integers move as int
_SHUFFLED = {"int", "unsigned int", "long long", "unsigned long long", "float", "double"}


def cascades(k: Kernel) -> bool:
    """Does k's reduction add up in a cascade (a float sum)?"""
    return k.red_op is Op.SUM and k.acc is not None and k.acc.dtype.kind == "f"


def thread_lines(r, k: Kernel, pname, loops: list[str], inner: list[str], per_thread: int,
                 saved: list | None = None) -> list[str]:
    """One thread's accumulation of the elements its loop headers `loops` (opened in order,
    closed here; `inner`: declarations at the top of the innermost) give it into `acc`: the
    body's statements and the fold, a float sum in chunks of CHUNK moved into a cascade's
    levels (`per_thread`: the most elements one thread folds). `acc` is declared before.
    `saved`: (array name, Val) pairs whose values are kept in the array at index q."""
    lines = []
    casc = cascades(k) and per_thread > CHUNK
    t = r.compute_type(k.acc.dtype) if k.acc is not None else ""
    sizes = level_sizes(-(-per_thread // CHUNK)) if casc else []
    if casc:
        lines += cascade_decl(t, sizes)
        lines.append("int cn = 0;")
    ind = ""
    for head in loops:
        lines.append(ind + head)
        ind += "  "
    lines += [ind + s for s in inner]
    for s in r.statements(k, pname, (1,)):
        lines.append(ind + s)
        for name, v in saved or ():
            if s.startswith(f"{r.compute_type(v.dtype)} {v.name} = "):
                lines.append(f"{ind}{name}[q] = {v.name};")
    if casc:
        lines.append(f"{ind}acc = acc + {k.red_val.name};")
        lines.append(f"{ind}if (++cn == {CHUNK}) {{ {cascade_push('acc', sizes)} acc = 0; "
                     f"cn = 0; }}")
    else:
        lines.append(ind + r.red_update(k, k.red_val.name))
    for _ in loops:
        ind = ind[:-2]
        lines.append(ind + "}")
    if casc:
        lines.append(f"acc = acc + {cascade_total(sizes)};")
    return lines


def shared_name(t: str) -> str:
    """The shared array a block combines values of C type t in."""
    return "lt_red_" + t.replace(" ", "_")


def shuffle(t: str, v: str, offset: str) -> str:
    """v (of C type t) from the lane `offset` above in the warp."""
    if t in _SHUFFLED:
        return f"__shfl_down_sync(0xffffffffu, {v}, {offset})"
    return f"({t})__shfl_down_sync(0xffffffffu, (int)({v}), {offset})"


def block_combine(t: str, op: Op, acc: str = "acc") -> list[str]:
    """Lines combining every thread's `acc` (C type t) by op: within each warp through
    shuffles, then the warps' results through shared memory; after them every thread of
    the block holds the result. The block's threads are a multiple of the warp size and all
    of them run these lines."""
    comb = COMBINE[op]
    sh = shared_name(t)
    # the lanes past the warps' count take the identity (max and min: any warp's value)
    rest = {Op.SUM: f"({t})0", Op.PROD: f"({t})1"}.get(op, f"{sh}[0]")
    warp = [f"for (int s = {WARP // 2}; s > 0; s >>= 1) {{ {t} o = {shuffle(t, acc, 's')}; "
            f"{acc} = {comb(acc, 'o')}; }}"]
    return [
        *warp,
        f"if ((threadIdx.x & {WARP - 1}) == 0) {sh}[threadIdx.x / {WARP}] = {acc};",
        "__syncthreads();",
        f"if (threadIdx.x < {WARP}) {{",
        f"  {acc} = threadIdx.x < blockDim.x / {WARP} ? {sh}[threadIdx.x] : {rest};",
        *("  " + s for s in warp),
        f"  if (threadIdx.x == 0) {sh}[0] = {acc};",
        "}",
        "__syncthreads();",
        f"{acc} = {sh}[0];",
        "__syncthreads();",
    ]


def decompose(var: str, names: list[str], sizes: tuple[int, ...], kind: str = "long"
              ) -> list[str]:
    """Declarations of the loop variables `names` (sizes `sizes`, row-major) from the flat
    index `var` (an empty range has none: each variable is 0, and the loop over it never
    runs)."""
    out, stride = [], math.prod(sizes)
    if stride == 0:
        return [f"const {kind} {name} = 0;" for name in names]
    for name, n in zip(names, sizes):
        stride //= n
        e = var if stride == 1 else f"{var} / {stride}"
        if stride * n != math.prod(sizes):
            e = f"({e}) % {n}"
        out.append(f"const {kind} {name} = {e};")
    return out


ARGBEST = {Op.ARGMAX: ">", Op.ARGMIN: "<"}
NO_INDEX = "0x7fffffffffffffffLL"   # the index of a thread that saw no element: never wins


def _better(t: str, cmp: str, ob: str, oi: str, b: str, i: str) -> str:
    """Does (value ob, index oi) beat (b, i) for argmax/argmin: the first NaN wins, then the
    best value, then (a tie) the first index, as the CPU's one sequential loop finds."""
    if t in ("float", "double"):
        return (f"({ob} != {ob} ? ({b} == {b} || {oi} < {i}) : "
                f"({b} == {b} && ({ob} {cmp} {b} || ({ob} == {b} && {oi} < {i}))))")
    return f"({ob} {cmp} {b} || ({ob} == {b} && {oi} < {i}))"


def block_argbest(t: str, op: Op) -> list[str]:
    """Lines combining every thread's (best, acc) pair (best of C type t, acc its index) by
    argmax/argmin across the block, as block_combine does; after them every thread holds
    the block's pair. A thread's acc starts at its first index, or NO_INDEX without one."""
    cmp = ARGBEST[op]
    sv, si = shared_name(t), "lt_red_idx"
    step = (f"for (int s = {WARP // 2}; s > 0; s >>= 1) {{ {t} ob = {shuffle(t, 'best', 's')}; "
            f"long long oi = {shuffle('long long', 'acc', 's')}; "
            f"if {_better(t, cmp, 'ob', 'oi', 'best', 'acc')} {{ best = ob; acc = oi; }} }}")
    return [
        step,
        f"if ((threadIdx.x & {WARP - 1}) == 0) {{ {sv}[threadIdx.x / {WARP}] = best; "
        f"{si}[threadIdx.x / {WARP}] = acc; }}",
        "__syncthreads();",
        f"if (threadIdx.x < {WARP}) {{",
        f"  const bool in = threadIdx.x < blockDim.x / {WARP};",
        f"  best = in ? {sv}[threadIdx.x] : {sv}[0]; acc = in ? {si}[threadIdx.x] : {NO_INDEX};",
        "  " + step,
        f"  if (threadIdx.x == 0) {{ {sv}[0] = best; {si}[0] = acc; }}",
        "}",
        "__syncthreads();",
        f"best = {sv}[0]; acc = {si}[0];",
        "__syncthreads();",
    ]
