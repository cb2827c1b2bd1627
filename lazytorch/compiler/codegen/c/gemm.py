"""Matrix multiply kernels: a reduce kernel that sums a product of two loads over one axis is
rendered as a blocked, packed GEMM with a register-tiled micro-kernel (GCC vector types,
6 x 2 vectors of accumulators), followed by the kernel's own epilogue (bias, activation...).

Operands are read through their index expressions' strides, so transposed and sliced views
need no copy. The vector width follows the machine the code is compiled on (AVX-512 or AVX2).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from ....ir import dtypes as dt
from ....ir.ops import Op
from ...kernel import Kernel, Val
from ...symbolic import Lin, Var

MIN_FLOPS = 1 << 15  # smaller products stay plain loops
GEMM_PARALLEL = 1 << 20  # larger GEMMs split their own blocks between the threads
SPLIT_WORK = 1 << 18     # smaller batches of small GEMMs are not worth waking threads for
# GEMMs summed into an output smaller than this (a first conv layer's 8x9 weight gradient)
# fill less than three micro-tiles: one dot product per output, vectorized along the sum,
# runs 3x faster than packing panels for them
MIN_SUMMED_OUTPUTS = 256


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
    if red_outer and (m[1] if m else 1) * (n[1] if n else 1) < MIN_SUMMED_OUTPUTS:
        return None
    return GemmSpec(m, n, ksize, batch, a, b, v.dtype, kvar, red_outer)


# an output row narrower than this (a 10-class layer, the GPT's 65 logits) fills few of the
# micro-kernel's column vectors: when there are at least twice as many rows, the GEMM runs
# transposed (the rows across the vectors) and the epilogue reads its accumulator across.
# Measured single-threaded: 128x256 @ 256x10 76 -> 35 us, 1024x128 @ 128x65 487 -> 322 us
NARROW = 128


def _long_columns(spec: GemmSpec) -> GemmSpec:
    """spec with its operands swapped when its output rows are narrow and many (NARROW)."""
    if spec.m is None or spec.n is None or spec.n[1] >= NARROW or spec.m[1] < 2 * spec.n[1]:
        return spec
    return dataclasses.replace(spec, m=spec.n, n=spec.m, a=spec.b, b=spec.a)


PRELUDE = r"""
#include <stdlib.h>
#include <string.h>
#include <omp.h>
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


# the GEMM itself, once per module for each dtype (kernels call it with their strides);
# written once with T (the element type) and SFX (its suffix)
_CORE = r"""
/* copy a count x kc panel (element (v, p) at src[v*vs + p*ks]) into width-wide k-major
   strips, zero padded; the loop along the smaller stride runs innermost so reads stream */
static void lt_pack_SFX(T* restrict dst, const T* src, long count, long width, long kc,
                        long vs, long ks) {
  if ((ks < 0 ? -ks : ks) < (vs < 0 ? -vs : vs)) {
    for (long v = 0; v < count; v++)
      for (long p = 0; p < kc; p++) dst[p * width + v] = src[v * vs + p * ks];
  } else {
    for (long p = 0; p < kc; p++)
      for (long v = 0; v < count; v++) dst[p * width + v] = src[v * vs + p * ks];
  }
  for (long v = count; v < width; v++)
    for (long p = 0; p < kc; p++) dst[p * width + v] = 0;
}

/* the micro-kernel: an mr x nr tile of ws (row stride N) = (add ? tile : 0) + a b over kc */
static inline void lt_tile_SFX(const T* restrict a, const T* restrict b, T* restrict cw,
                               long N, long kc, long mr, long nr, int add) {
  enum { VW = LT_VBYTES / sizeof(T), MR = 6, NR = 2 * VW };
  typedef T vec __attribute__((vector_size(LT_VBYTES)));
  typedef T uvec __attribute__((vector_size(LT_VBYTES), aligned(sizeof(T))));
  vec c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0},
      c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};
  /* the tile's rows of ws are fetched while the products are summed (1024^3 and 512^3 ran
     3-4% faster, interleaved A/B) */
  for (long i = 0; i < mr; i++) {
    __builtin_prefetch(cw + i * N, 1, 3);
    __builtin_prefetch(cw + i * N + NR - 1, 1, 3);
  }
  #pragma GCC unroll 4
  for (long p = 0; p < kc; p++) {
    vec b0 = *(const vec*)(b + p * NR);
    vec b1 = *(const vec*)(b + p * NR + VW);
    const T* ar = a + p * MR;
    c00 += ar[0] * b0; c01 += ar[0] * b1;
    c10 += ar[1] * b0; c11 += ar[1] * b1;
    c20 += ar[2] * b0; c21 += ar[2] * b1;
    c30 += ar[3] * b0; c31 += ar[3] * b1;
    c40 += ar[4] * b0; c41 += ar[4] * b1;
    c50 += ar[5] * b0; c51 += ar[5] * b1;
  }
  vec c[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (mr == MR && nr == NR) {
    for (int i = 0; i < MR; i++) {
      if (add) {
        *(uvec*)(cw + i * N) += c[i][0]; *(uvec*)(cw + i * N + VW) += c[i][1];
      } else {
        *(uvec*)(cw + i * N) = c[i][0]; *(uvec*)(cw + i * N + VW) = c[i][1];
      }
    }
  } else {
    T tile[MR][NR] __attribute__((aligned(64)));
    for (int i = 0; i < MR; i++) {
      *(vec*)&tile[i][0] = c[i][0]; *(vec*)&tile[i][VW] = c[i][1];
    }
    for (long i = 0; i < mr; i++)
      for (long j = 0; j < nr; j++)
        cw[i * N + j] = add ? cw[i * N + j] + tile[i][j] : tile[i][j];
  }
}

/* one row block's A panel (mc x kc from A) packed into MR-row strips */
static inline void lt_pack_a_SFX(T* restrict ap, const T* A, long mc, long kc, long am,
                                 long ak) {
  enum { MR = 6 };
  for (long ir = 0; ir < mc; ir += MR)
    lt_pack_SFX(ap + ir * kc, A + ir * am, mc - ir < MR ? mc - ir : MR, MR, kc, am, ak);
}

/* the tiles of one column strip jr of a row block: ws block at cw (row stride N) */
static inline void lt_strip_SFX(const T* ap, const T* bp, T* restrict cw, long N, long mc,
                                long nr, long kc, int add) {
  enum { MR = 6 };
  for (long ir = 0; ir < mc; ir += MR)
    lt_tile_SFX(ap + ir * kc, bp, cw + ir * N, N, kc, mc - ir < MR ? mc - ir : MR, nr, add);
}

/* ws (M x N, row stride N) = (accumulate ? ws : 0) + A B, A[i,k] = A[i*am + k*ak],
   B[k,j] = B[k*bk + j*bn]: BLIS-style blocking and packed panels, in one parallel region.
   B's panel is packed by all threads together; then the threads take whole row blocks when
   there are at least as many blocks as threads (each packs its own A block; the block height
   is evened out so no thread idles at the end), else they share each block's column strips
   (each packs the A block itself: no wait for one packer). When epi is given, each finished
   part of ws (rows i0..i1, columns j0..j1) goes to epi(ctx, i0, i1, j0, j1) right after its
   last K panel, by the thread that computed it, while it is still in that core's cache. */
static void lt_gemm_SFX(long M, long N, long K, const T* A, long am, long ak, const T* B,
                        long bk, long bn, T* restrict ws, int accumulate, lt_epi epi,
                        void* ctx) {
  /* KC: a packed B strip (KC x NR) is 32 KB; against 16 KB (KC = 256 on AVX2) it halves
     the passes over C, measured 3-10% faster from 128x256x784 to 2048^3 */
  enum { VW = LT_VBYTES / sizeof(T), MR = 6, NR = 2 * VW, KC = 16384 / LT_VBYTES, MC = 72,
         NC = 2048 };
  int par = M * N * K > LT_GEMM_PARALLEL && !omp_in_parallel();
  int nt = par ? omp_get_max_threads() : 1;
  long nb = (M + MC - 1) / MC;
  int by_rows = nb >= nt;
  long mcb = MC;
  if (by_rows && nt > 1) {
    long blocks = (nb + nt - 1) / nt * nt;
    mcb = ((M + blocks - 1) / blocks + MR - 1) / MR * MR;
  }
  /* K in equal panels of at most KC (784 = 4 x 196, not 3 x 256 + 16: a thin last panel
     reads and writes C for few products) */
  long kcb = (K + (K + KC - 1) / KC - 1) / ((K + KC - 1) / KC);
  T* bp = lazytorch_scratch(1, ((N < NC ? N : NC) + NR) * KC * sizeof(T));
  #pragma omp parallel if (par)
  {
    T* ap = lazytorch_scratch(2, MC * KC * sizeof(T));
    for (long jc = 0; jc < N; jc += NC) {
      long nc = N - jc < NC ? N - jc : NC;
      for (long pc = 0; pc < K; pc += kcb) {
        long kc = K - pc < kcb ? K - pc : kcb;
        int add = accumulate || pc > 0, last = pc + kc == K;
        #pragma omp for schedule(static)
        for (long jr = 0; jr < nc; jr += NR) {
          long nr = nc - jr < NR ? nc - jr : NR;
          lt_pack_SFX(bp + jr * kc, B + (jc + jr) * bn + pc * bk, nr, NR, kc, bn, bk);
        }
        if (by_rows) {
          #pragma omp for schedule(static)
          for (long ic = 0; ic < M; ic += mcb) {
            long mc = M - ic < mcb ? M - ic : mcb;
            lt_pack_a_SFX(ap, A + ic * am + pc * ak, mc, kc, am, ak);
            for (long jr = 0; jr < nc; jr += NR)
              lt_strip_SFX(ap, bp + jr * kc, ws + ic * N + jc + jr, N, mc,
                           nc - jr < NR ? nc - jr : NR, kc, add);
            if (last && epi) epi(ctx, ic, ic + mc, jc, jc + nc);
          }
        } else {
          for (long ic = 0; ic < M; ic += MC) {
            long mc = M - ic < MC ? M - ic : MC;
            lt_pack_a_SFX(ap, A + ic * am + pc * ak, mc, kc, am, ak);
            #pragma omp for schedule(static) nowait
            for (long jr = 0; jr < nc; jr += NR) {
              long nr = nc - jr < NR ? nc - jr : NR;
              lt_strip_SFX(ap, bp + jr * kc, ws + ic * N + jc + jr, N, mc, nr, kc, add);
              if (last && epi) epi(ctx, ic, ic + mc, jc + jr, jc + jr + nr);
            }
          }
          #pragma omp barrier
        }
      }
    }
    lazytorch_release(2);
  }
  lazytorch_release(1);
}
"""
# the scratch functions and the epilogue callback type, shared by both element types
_SHARED = f"\n#define LT_GEMM_PARALLEL {GEMM_PARALLEL}L" + r"""
/* the calling thread's scratch buffer `slot` (at least `bytes`), held until lazytorch_release:
   one set per thread for every module, in the runtime library (runtime/scratch.c) */
void* lazytorch_scratch(int slot, size_t bytes);
void lazytorch_release(int slot);
/* a kernel's epilogue over rows i0..i1 and columns j0..j1 of the accumulator */
typedef void (*lt_epi)(void* ctx, long i0, long i1, long j0, long j1);
"""
CORE = _SHARED + "".join(_CORE.replace("SFX", sfx).replace("T*", f"{t}*").replace("(T)", f"({t})")
               .replace("T vec", f"{t} vec").replace("T uvec", f"{t} uvec")
               .replace("T tile", f"{t} tile")
               for t, sfx in (("float", "f32"), ("double", "f64")))


def _direct_offset(k: Kernel, spec: GemmSpec, epilogue: list[str]) -> str | None:
    """out0's offset (per batch) when the kernel only stores the product, in out0's own type,
    at row m, column n of a row-major M x N block: then lt_gemm can write there directly."""
    e = k.store_index
    out = next(p for p in k.params if p.output)
    N = spec.n[1]
    if epilogue != [f"out0[{e.render()}] = acc;"] or out.dtype != spec.dtype or \
            e.coef(spec.m[0]) != N or e.coef(spec.n[0]) != 1:
        return None
    batch = {b for b, _ in spec.batch}
    rest = tuple((a, c) for a, c in e.terms if a.name not in (spec.m[0], spec.n[0]))
    if any(a.name not in batch for a, _ in rest):
        return None
    return Lin(rest, e.const).render()


def render_gemm(r, k: Kernel, spec: GemmSpec, fname: str, pname, emit_epilogue) -> str:
    """C source of the GEMM kernel `fname` (renderer r): per batch, lt_gemm into a row-major
    accumulator (summed over any other reduce loops), then emit_epilogue() (statements of
    levels 0 and 2 and the store, reading `acc`) over the output. When the output loops are
    rows then columns, the epilogue is a function lt_gemm calls on each finished block, in
    parallel and while the block is in cache; otherwise it runs after the GEMM in the kernel's
    loop order."""
    spec = _long_columns(spec)
    t = "float" if spec.dtype == dt.float32 else "double"
    sfx = "f32" if spec.dtype == dt.float32 else "f64"
    M = spec.m[1] if spec.m else 1
    N = spec.n[1] if spec.n else 1
    K = spec.k
    am, _, ak, abase = _strides(spec.a.arg[1], spec)
    _, bn, bk, bbase = _strides(spec.b.arg[1], spec)
    A, B = pname(spec.a.arg[0]), pname(spec.b.arg[0])
    mv = spec.m[0] if spec.m else "mrow"
    nv = spec.n[0] if spec.n else "ncol"
    decls = [r.param_decl(p) for p in k.params]
    loops = [(f"o{i}", s) for i, s in enumerate(k.loops)
             if f"o{i}" not in {nm for nm, _ in spec.batch}]
    fused = not spec.red_outer and spec.m and spec.n and loops == [spec.m, spec.n]
    # a plain product stored row-major: the GEMM writes the output itself (no accumulator,
    # no copy)
    direct = _direct_offset(k, spec, emit_epilogue()) if fused else None
    fused = fused and direct is None
    L = []
    if fused:
        ctx = f"{fname}_ctx"
        L.append(f"struct {ctx} {{ {' '.join(d.replace(' restrict', '') + ';' for d in decls)} "
                 f"const {t}* ws; {' '.join(f'long {b};' for b, _ in spec.batch)} }};")
        L.append(f"static void {fname}_epi(void* cv, long i0, long i1, long j0, long j1) {{")
        L.append(f"  const struct {ctx}* c = cv;")
        L.extend(f"  {d} = c->{p.name};" for d, p in zip(decls, k.params))
        L.append(f"  const {t}* restrict ws = c->ws;")
        L.extend(f"  long {b} = c->{b};" for b, _ in spec.batch)
        L.append(f"  for (long {mv} = i0; {mv} < i1; {mv}++) {{")
        L.append("    #pragma omp simd")
        L.append(f"    for (long {nv} = j0; {nv} < j1; {nv}++) {{")
        L.append(f"      {t} acc = ws[{mv} * {N} + {nv}];")
        L.extend("      " + line for line in emit_epilogue())
        L.append("    }")
        L.append("  }")
        L.append("}")
    L.append(f"{r.signature(fname, k.params)} {{")
    one = M * N * K                      # one GEMM's multiply-adds
    n_batch = math.prod(size for _, size in spec.batch)
    n_red = math.prod(size for _, size in spec.red_outer)
    # a GEMM this small runs on one thread (lt_gemm's own threshold): then the threads take
    # whole GEMMs of the batch, or split the GEMMs summed into one result, instead
    small = one <= GEMM_PARALLEL and one * n_batch * n_red >= SPLIT_WORK
    by_batch = small and bool(spec.batch)
    by_sum = small and not spec.batch and bool(spec.red_outer)
    acc = "accumulate" if spec.red_outer else "0"
    epi = f"{fname}_epi, &c" if fused else "0, 0"
    size = f"{M}L * {N}L * sizeof({t})"

    def call(out: str, accumulate: str, epilogue: str) -> str:
        return (f"  lt_gemm_{sfx}({M}, {N}, {K}, {A} + {abase}, {am}, {ak}, {B} + {bbase}, "
                f"{bk}, {bn}, {out}, {accumulate}, {epilogue});")
    if by_sum:
        # each thread sums its share into its own part; the parts are added in thread order,
        # so a thread count always gives the same result
        L.append(f"  {t}* ws = lazytorch_scratch(0, {size});")
        L.append("  int nt = omp_get_max_threads(), got[nt];")
        L.append(f"  {t}* parts = lazytorch_scratch(3, nt * {size});")
        L.append("  for (int t = 0; t < nt; t++) got[t] = 0;")
        L.append("  #pragma omp parallel num_threads(nt)")
        L.append("  {")
        L.append(f"  {t}* part = parts + (long)omp_get_thread_num() * {M}L * {N}L;")
        L.append("  int accumulate = 0;")
        c = f" collapse({len(spec.red_outer)})" if len(spec.red_outer) > 1 else ""
        L.append(f"  #pragma omp for{c} schedule(static)")
        for name, sz in spec.red_outer:
            L.append(f"  for (long {name} = 0; {name} < {sz}; {name}++) {{")
        L.append(call("part", "accumulate", "0, 0"))
        L.append("  accumulate = 1;")
        L.extend("  }" for _ in spec.red_outer)
        L.append("  got[omp_get_thread_num()] = accumulate;")
        L.append("  }")
        L.append("  int first = 1;")
        L.append("  for (int t = 0; t < nt; t++) {")
        L.append("    if (!got[t]) continue;")
        L.append(f"    const {t}* part = parts + (long)t * {M}L * {N}L;")
        L.append(f"    for (long i = 0; i < {M}L * {N}L; i++) "
                 "ws[i] = first ? part[i] : ws[i] + part[i];")
        L.append("    first = 0;")
        L.append("  }")
        L.append("  lazytorch_release(3);")
    elif by_batch:
        L.append("  #pragma omp parallel")
        L.append("  {")
        if direct is None:
            L.append(f"  {t}* ws = lazytorch_scratch(0, {size});")
    elif direct is None:
        L.append(f"  {t}* ws = lazytorch_scratch(0, {size});")
    if fused:
        L.append(f"  struct {ctx} c = {{ {', '.join(p.name for p in k.params)}, ws }};")
    if by_batch:
        c = f" collapse({len(spec.batch)})" if len(spec.batch) > 1 else ""
        L.append(f"  #pragma omp for{c} schedule(static)")
    for name, sz in spec.batch:
        L.append(f"  for (long {name} = 0; {name} < {sz}; {name}++) {{")
    if fused:
        L.extend(f"  c.{name} = {name};" for name, _ in spec.batch)
    if not by_sum:
        if spec.red_outer:
            L.append("  int accumulate = 0;")
        for name, sz in spec.red_outer:
            L.append(f"  for (long {name} = 0; {name} < {sz}; {name}++) {{")
        L.append(call("ws" if direct is None else f"out0 + {direct}", acc, epi))
        if spec.red_outer:
            L.append("  accumulate = 1;")
        L.extend("  }" for _ in spec.red_outer)
    if not fused and direct is None:
        # epilogue over the output, in the kernel's own loop order
        ind = "  "
        for name, sz in loops:
            L.append(f"{ind}for (long {name} = 0; {name} < {sz}; {name}++) {{")
            ind += "  "
        mi = mv if spec.m else "0"
        ni = nv if spec.n else "0"
        L.append(f"{ind}{t} acc = ws[{mi} * {N} + {ni}];")
        L.extend(ind + line for line in emit_epilogue())
        for _ in loops:
            ind = ind[:-2]
            L.append(f"{ind}}}")
    L.extend("  }" for _ in spec.batch)
    L.append("  lazytorch_release(0);")
    if by_batch:
        L.append("  }")
    L.append("}")
    return "\n".join(L)
