"""Matrix multiply kernels: a reduce kernel that sums a product of two loads over one axis is
rendered as a blocked, packed GEMM with a register-tiled micro-kernel (GCC vector types,
6 x 2 vectors of accumulators), followed by the kernel's own epilogue (bias, activation...).

Operands are read through their index expressions' strides, so transposed and sliced views
need no copy. The vector width follows the machine the code is compiled on (AVX-512 or AVX2).
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import dtypes as dt
from ..ops import Op
from .kernel import Kernel, Val
from .symbolic import Lin, Var

MIN_FLOPS = 1 << 15  # smaller products stay plain loops


@dataclass
class GemmSpec:
    m: tuple[str, int] | None       # (output variable, size) of the rows; None: one row
    n: tuple[str, int] | None
    k: int
    batch: list[tuple[str, int]]    # the other output variables: a GEMM per value
    a: Val                          # loads of the two operands
    b: Val
    dtype: dt.DType
    kvar: str = "r0"                # the reduce variable the GEMM contracts
    red_outer: tuple = ()           # other reduce variables: GEMMs accumulated into one result


def _linear(e: Lin) -> bool:
    return all(isinstance(a, Var) for a, _ in e.terms)


def match_gemm(k: Kernel) -> GemmSpec | None:
    """The GEMM a kernel computes, if it is one: sum over r0 of load_a * load_b."""
    if k.red_op is not Op.SUM or not k.red_loops or k.red_val is None:
        return None
    v = k.red_val
    if v.kind != "alu" or v.op is not Op.MUL or v.dtype not in (dt.float32, dt.float64):
        return None
    a, b = v.srcs
    if a.kind != "load" or b.kind != "load" or a.arg[2] or b.arg[2]:
        return None
    if not (_linear(a.arg[1]) and _linear(b.arg[1]) and _linear(k.store_index)):
        return None
    # contract the largest reduce loop both operands read; any other reduce loop (conv's
    # weight gradient sums over the batch too) accumulates whole GEMMs into one result
    reds = [(f"r{i}", size) for i, size in enumerate(k.red_loops)]
    both = [lp for lp in reds if a.arg[1].coef(lp[0]) and b.arg[1].coef(lp[0])]
    if not both:
        return None
    kvar, ksize = max(both, key=lambda lp: lp[1])
    red_outer = tuple(lp for lp in reds if lp[0] != kvar)
    if any(k.level[id(x)] == 1 for x in k.vals if x not in (v, a, b)):
        return None  # other work inside the reduce loop
    in_a = {n for n in a.arg[1].vars() if n.startswith("o")}
    in_b = {n for n in b.arg[1].vars() if n.startswith("o")}
    # rows: the largest loop only A reads; columns: the largest only B reads; every other
    # loop (both, neither, or a second one-sided loop, e.g. conv's batch against a shared
    # weight) runs whole GEMMs, each operand offset by its own stride for it
    loops = [(f"o{i}", size) for i, size in enumerate(k.loops)]
    only_a = [lp for lp in loops if lp[0] in in_a and lp[0] not in in_b]
    only_b = [lp for lp in loops if lp[0] in in_b and lp[0] not in in_a]
    # the columns (the vectorized side) should be the output's innermost loop, so that the
    # accumulator is read back in the output's order: swap the operands if A holds that loop
    inner = min(only_a + only_b, key=lambda lp: abs(k.store_index.coef(lp[0])) or 1 << 62,
                default=None)
    if inner is not None and inner in only_a and inner[1] >= 8:
        a, b, only_a, only_b = b, a, only_b, only_a
    m = max(only_a, key=lambda lp: lp[1]) if only_a else None
    n = max(only_b, key=lambda lp: lp[1]) if only_b else None
    if inner is not None and inner in only_b and inner[1] >= 8:
        n = inner
    batch = [lp for lp in loops if lp not in (m, n)]
    total = ksize
    for _, s in ([m] if m else []) + ([n] if n else []) + batch + list(red_outer):
        total *= s
    if total < MIN_FLOPS or ksize < 4:
        return None
    return GemmSpec(m, n, ksize, batch, a, b, v.dtype, kvar, red_outer)


PRELUDE = r"""
#include <stdlib.h>
#include <string.h>
#ifdef __AVX512F__
#define LT_VBYTES 64
#else
#define LT_VBYTES 32
#endif
"""


def _strides(e: Lin, spec: GemmSpec):
    row = e.coef(spec.m[0]) if spec.m else 0
    col = e.coef(spec.n[0]) if spec.n else 0
    base = Lin(tuple((a, c) for a, c in e.terms
                     if a.name not in {spec.m and spec.m[0], spec.n and spec.n[0], spec.kvar}),
               e.const)
    return row, col, e.coef(spec.kvar), base.render()


def _pack(t: str, width: str, count: str, v: str, base: str, vstride: int, kstride: int,
          ind: str) -> list[str]:
    """Copy a count x kc panel (rows `v` at vstride, k at kstride) into width-wide k-major
    strips, zero padded; the loop over the smaller stride runs innermost so reads stream."""
    L = [f"const {t}* src = {base};"]
    if abs(kstride) < abs(vstride):
        L += [f"for (long {v} = 0; {v} < {count}; {v}++)",
              f"  for (long p = 0; p < kc; p++) dst[p * {width} + {v}] = "
              f"src[{v} * {vstride}L + p * {kstride}L];",
              f"for (long {v} = {count}; {v} < {width}; {v}++)",
              f"  for (long p = 0; p < kc; p++) dst[p * {width} + {v}] = 0;"]
    else:
        L += ["for (long p = 0; p < kc; p++) {",
              f"  long {v} = 0;",
              f"  for (; {v} < {count}; {v}++) dst[p * {width} + {v}] = "
              f"src[{v} * {vstride}L + p * {kstride}L];",
              f"  for (; {v} < {width}; {v}++) dst[p * {width} + {v}] = 0;",
              "}"]
    return [ind + line for line in L]


def render_gemm(k: Kernel, spec: GemmSpec, fname: str, pname, emit_epilogue) -> str:
    """C source of the GEMM kernel `fname`; emit_epilogue(indent) gives the epilogue lines
    (statements of levels 0 and 2 and the store) reading `acc`."""
    t = "float" if spec.dtype == dt.float32 else "double"
    M = spec.m[1] if spec.m else 1
    N = spec.n[1] if spec.n else 1
    K = spec.k
    am, _, ak, abase = _strides(spec.a.arg[1], spec)
    _, bn, bk, bbase = _strides(spec.b.arg[1], spec)
    A, B = pname(spec.a.arg[0]), pname(spec.b.arg[0])
    mv = spec.m[0] if spec.m else "mrow"
    nv = spec.n[0] if spec.n else "ncol"
    args = ", ".join(f"{'' if p.output else 'const '}{p.dtype.ctype}* restrict {p.name}"
                     for p in k.params)
    L = []
    L.append(f"void {fname}({args}) {{")
    L.append(f"  enum {{ VW = LT_VBYTES / sizeof({t}), MR = 6, NR = 2 * VW, KC = 256, "
             "MC = 72, NC = 2048 };")
    L.append(f"  typedef {t} vec __attribute__((vector_size(LT_VBYTES)));")
    L.append(f"  typedef {t} uvec __attribute__((vector_size(LT_VBYTES), aligned(sizeof({t}))));")
    L.append(f"  const long M = {M}, N = {N}, K = {K};")
    L.append(f"  {t}* ws = aligned_alloc(64, ((M * N * sizeof({t}) + 63) / 64) * 64);")
    L.append(f"  {t}* ap = aligned_alloc(64, MC * KC * sizeof({t}));")
    L.append(f"  {t}* bp = aligned_alloc(64, ((NC + NR) * KC) * sizeof({t}));")
    for name, size in spec.batch:
        L.append(f"  for (long {name} = 0; {name} < {size}; {name}++) {{")
    L.append(f"  memset(ws, 0, M * N * sizeof({t}));")
    for name, size in spec.red_outer:
        L.append(f"  for (long {name} = 0; {name} < {size}; {name}++) {{")
    L.append(f"  const {t}* Ab = {A} + {abase};")
    L.append(f"  const {t}* Bb = {B} + {bbase};")
    L.append("  for (long jc = 0; jc < N; jc += NC) {")
    L.append("    long nc = N - jc < NC ? N - jc : NC;")
    L.append("    for (long pc = 0; pc < K; pc += KC) {")
    L.append("      long kc = K - pc < KC ? K - pc : KC;")
    # pack B: strips of NR columns, k-major, zero padded; pack A likewise in MR rows
    L.append("      #pragma omp parallel for schedule(static) if (nc * kc > (1L << 16))")
    L.append("      for (long jr = 0; jr < nc; jr += NR) {")
    L.append(f"        {t}* dst = bp + jr * kc;")
    L.append("        long nr = nc - jr < NR ? nc - jr : NR;")
    L.extend(_pack(t, "NR", "nr", "j", f"Bb + (jc + jr) * {bn}L + pc * {bk}L", bn, bk, "        "))
    L.append("      }")
    L.append("      for (long ic = 0; ic < M; ic += MC) {")
    L.append("        long mc = M - ic < MC ? M - ic : MC;")
    L.append("        for (long ir = 0; ir < mc; ir += MR) {")
    L.append(f"          {t}* dst = ap + ir * kc;")
    L.append("          long mr = mc - ir < MR ? mc - ir : MR;")
    L.extend(_pack(t, "MR", "mr", "i", f"Ab + (ic + ir) * {am}L + pc * {ak}L", am, ak,
                   "          "))
    L.append("        }")
        #pragma omp parallel for schedule(static) if (mc * nc * kc > (1L << 20))")
    L.append("        for (long jr = 0; jr < nc; jr += NR) {")
    L.append("          long nr = nc - jr < NR ? nc - jr : NR;")
    L.append("          for (long ir = 0; ir < mc; ir += MR) {")
    L.append("            long mr = mc - ir < MR ? mc - ir : MR;")
    L.append(f"            const {t}* a = ap + ir * kc;")
    L.append(f"            const {t}* b = bp + jr * kc;")
    acc_names = [f"c{i}{j}" for i in range(6) for j in range(2)]
    L.append("            vec " + ", ".join(f"{c} = {{0}}" for c in acc_names) + ";")
    L.append("            for (long p = 0; p < kc; p++) {")
    L.append("              vec b0 = *(const vec*)(b + p * NR);")
    L.append("              vec b1 = *(const vec*)(b + p * NR + VW);")
    L.append(f"              const {t}* ar = a + p * MR;")
    for i in range(6):
        L.append(f"              c{i}0 += ar[{i}] * b0; c{i}1 += ar[{i}] * b1;")
    L.append("            }")
    L.append("            vec c[MR][2] = {" + ", ".join(f"{{c{i}0, c{i}1}}" for i in range(6))
             + "};")
    L.append(f"            {t}* cw = ws + (ic + ir) * N + jc + jr;")
    L.append("            if (mr == MR && nr == NR) {")
    L.append("              for (int i = 0; i < MR; i++) {")
    L.append("                *(uvec*)(cw + i * N) += c[i][0];")
    L.append("                *(uvec*)(cw + i * N + VW) += c[i][1];")
    L.append("              }")
    L.append("            } else {")
    L.append(f"              {t} tile[MR][NR] __attribute__((aligned(64)));")
    L.append("              for (int i = 0; i < MR; i++) {")
    L.append("                *(vec*)&tile[i][0] = c[i][0]; *(vec*)&tile[i][VW] = c[i][1];")
    L.append("              }")
    L.append("              for (long i = 0; i < mr; i++)")
    L.append("                for (long j = 0; j < nr; j++) cw[i * N + j] += tile[i][j];")
    L.append("            }")
    L.append("          }")
    L.append("        }")
    L.append("      }")
    L.append("    }")
    L.append("  }")
    for _ in spec.red_outer:
        L.append("  }")
    # epilogue over the output, in the kernel's own loop order
    loops = [(f"o{i}", s) for i, s in enumerate(k.loops)
             if f"o{i}" not in {nm for nm, _ in spec.batch}]
    ind = "  "
    for name, size in loops:
        L.append(f"{ind}for (long {name} = 0; {name} < {size}; {name}++) {{")
        ind += "  "
    mi = mv if spec.m else "0"
    ni = nv if spec.n else "0"
    L.append(f"{ind}{t} acc = ws[{mi} * N + {ni}];")
    L.extend(ind + line for line in emit_epilogue())
    for _ in loops:
        ind = ind[:-2]
        L.append(f"{ind}}}")
    for _ in spec.batch:
        L.append("  }")
    L.append("  free(ws); free(ap); free(bp);")
    L.append("}")
    return "\n".join(L)
