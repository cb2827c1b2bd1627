"""Row-fused kernels (compiler/rowfuse.py) in CUDA: one block per row (a grid-stride loop
over the rows by block). Each stage's reduction is split between the block's threads and
combined across the block, so every thread holds the row's value for the later stages; then
the final stage maps the row (each thread its strided columns) or reduces it once more, its
result stored by the first thread. Values the final map reuses from a stage (softmax's
exp(x - max)) stay in each thread's own array, indexed by its column count q."""
from __future__ import annotations

from ...rowfuse import RowKernel
from .reduce import block_combine, shared_name, thread_lines

LONG_ROW = 8192    # rows this long take blocks of 1024 threads


def block_size(k: RowKernel) -> int:
    """The threads of the block running one row."""
    if k.cols >= LONG_ROW:
        return 1024
    return min(256, max(32, 1 << max(0, (k.cols - 1).bit_length())))


def render_row(r, k: RowKernel, fname: str, pname, block: int) -> str:
    """Row-fused kernel k as CUDA for blocks of `block` threads."""
    ctype = r.compute_type
    per = -(-k.cols // block)
    reds = [*k.stages] + ([k.final] if k.final.red_op is not None else [])
    types = list(dict.fromkeys(ctype(m.acc.dtype) for m in reds))
    lines = [f"{r.kernel_signature(fname, k.params, block)} {{"]
    lines += [f"  __shared__ {t} {shared_name(t)}[32];" for t in types]
    lines.append(f"  for (long o0 = blockIdx.x; o0 < {k.rows}; o0 += gridDim.x) {{")
    body: list[str] = []
    for j, (_, v) in enumerate(k.saved):
        body.append(f"{ctype(v.dtype)} row{j}[{per}];")

    def reduction(m, saved) -> list[str]:
        t = ctype(m.acc.dtype)
        out = r.statements(m, pname, (0,))
        out.append(f"{t} acc = {r.red_init(m)};")
        head = [f"for (long r0 = threadIdx.x, q = 0; r0 < {k.cols}; r0 += {block}, q++) {{"]
        out += thread_lines(r, m, pname, head, [], per, saved)
        out += block_combine(t, m.red_op)
        return out + r.round_acc(m)

    for i, st in enumerate(k.stages):
        saved = [(f"row{j}", v) for j, (si, v) in enumerate(k.saved) if si == i]
        body.append(f"{ctype(st.store_val.dtype)} st{i};")
        body.append("{")
        inner = reduction(st, saved) + r.statements(st, pname, (2,))
        inner.append(f"st{i} = {st.store_val.name};")
        body += ["  " + s for s in inner]
        body.append("}")
    f = k.final
    body.append("{")
    if f.red_op is not None:
        inner = reduction(f, [])
        inner.append("if (threadIdx.x == 0) {")
        inner += ["  " + s for s in r.statements(f, pname, (2,))]
        inner.append(f"  out0[o0] = {r.store(f, f.store_val.name)};")
        inner.append("}")
    else:
        inner = [f"for (long o1 = threadIdx.x, q = 0; o1 < {k.cols}; o1 += {block}, q++) {{"]
        inner += ["  " + f"{ctype(v.dtype)} {v.name} = {r.expr(v, pname)};" for v in f.vals]
        inner.append(f"  out0[{f.store_index.render()}] = {r.store(f, f.store_val.name)};")
        inner.append("}")
    body += ["  " + s for s in inner]
    body.append("}")
    lines += ["    " + s for s in body]
    lines += ["  }", "}"]
    return "\n".join(lines)
