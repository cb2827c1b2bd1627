"""Row-fused kernels (compiler/rowfuse.py) in C: per row, each stage's reduction in turn, its
value kept in a register, then the final map over the row or the last reduction; the rows
split between the threads, the next rows prefetched while this one is in cache."""
from __future__ import annotations

from ...rowfuse import RowKernel


def render_row(r, k: RowKernel, fname: str, pname) -> str:
    """A row-fused kernel: per row, each stage's reduction in turn (its value kept in a
    register for the later stages), then the final stage's store or loop over the row."""
    lines = [f"{r.signature(fname, k.params)} {{"]
    if k.rows * k.cols >= r.PARALLEL_WORK:
        lines.append("  #pragma omp parallel for schedule(static)")
    lines.append(f"  for (long o0 = 0; o0 < {k.rows}; o0++) {{")
    # rows read whole from memory: ask for the row after next now, so that the passes over
    # this row (in cache) overlap with memory fetching the next ones
    for p in _streamed_rows(k):
        per_line = 64 // p.dtype.itemsize
        lines.append(f"    if (o0 + 2 < {k.rows}) for (long q = 0; q < {k.cols}; q += {per_line}) "
                     f"__builtin_prefetch(&{p.name}[(o0 + 2) * {k.cols} + q], 0, 3);")
    ctype = r.compute_type
    for j, (_, v) in enumerate(k.saved):
        lines.append(f"    {ctype(v.dtype)} row{j}[{k.cols}];")
    for i, st in enumerate(k.stages):
        lines.append(f"    {ctype(st.store_val.dtype)} st{i};")
        lines.append("    {")
        body = r.statements(st, pname, (0,))
        red = r.reduce_lines(st, pname)
        for j, (si, v) in enumerate(k.saved):
            if si == i:  # store the saved value right after its statement in the loop
                at = next(n for n, line in enumerate(red) if line.lstrip().startswith(
                    f"{ctype(v.dtype)} {v.name} = "))
                red.insert(at + 1, red[at][:len(red[at]) - len(red[at].lstrip())]
                           + f"row{j}[r0] = {v.name};")
        body += red
        body.append(f"st{i} = {st.store_val.name};")
        lines += ["      " + b for b in body]
        lines.append("    }")
    f = k.final
    if f.red_op is not None:
        lines.append("    {")
        body = r.statements(f, pname, (0,))
        body += r.reduce_lines(f, pname)
        body.append(f"out0[o0] = {r.store(f, f.store_val.name)};")
        lines += ["      " + b for b in body]
        lines.append("    }")
    else:
        # values that do not change along the row are computed once, before its loop
        inner: set[int] = set()
        for v in f.vals:
            if v.kind == "load":
                along = "o1" in v.arg[1].vars() or any("o1" in c[0].vars() for c in v.arg[2])
            else:
                along = (v.kind == "ref" and "[o1]" in v.arg) or any(id(s) in inner
                                                                     for s in v.srcs)
            if along:
                inner.add(id(v))
        lines += [f"    {ctype(v.dtype)} {v.name} = {r.expr(v, pname)};" for v in f.vals
                  if id(v) not in inner]
        lines.append("    #pragma omp simd")
        lines.append(f"    for (long o1 = 0; o1 < {k.cols}; o1++) {{")
        lines += [f"      {ctype(v.dtype)} {v.name} = {r.expr(v, pname)};" for v in f.vals
                  if id(v) in inner]
        lines.append(f"      out0[{f.store_index.render()}] = {r.store(f, f.store_val.name)};")
        lines.append("    }")
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines)


def _streamed_rows(k: RowKernel) -> list:
    """The parameters a row kernel reads row by row (index o0 * cols + the column)."""
    out = []
    for m, col in [*((st, "r0") for st in k.stages), (k.final, "o1")]:
        for v in m.vals:
            if v.kind == "load" and not v.arg[2]:
                e = v.arg[1]
                if e.const == 0 and e.coef("o0") == k.cols and e.coef(col) == 1 and \
                        len(e.terms) == 2 and k.params[v.arg[0]] not in out:
                    out.append(k.params[v.arg[0]])
    return out
