"""The C dialect for the CPU: C99 with GCC's extensions and OpenMP over the C-style core.

It adds what the core leaves out: `_Float16`, libmvec's vector math (and a vectorizable float
tanh), OpenMP pragmas that split kernels between the cores and vectorize their loops, and the
CPU strategies: the packed GEMM (gemm.py), the cascade and column sums (reduce.py), the
row-fused kernels (rows.py) and small windows written out (windows.py)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ....ir import dtypes as dt
from ....ir.ops import Op
from ...kernel import Kernel
from ...renderer import Capabilities
from ...rowfuse import RowKernel
from ..cstyle import EXPR, CStyleRenderer
from . import gemm
from .reduce import (
    STREAMS_MIN,
    WHOLE,
    cascade_lines,
    cascades,
    is_vertical,
    level_sizes,
    render_vertical,
    split_cascade_lines,
    stream_lines,
)
from .rows import render_row
from .windows import is_small_window, window_lines

# libmvec's vector versions of libm (GCC vectorizes loops calling them), and float tanh
DECLARATIONS = r"""#define LT_SIMD __attribute__((__simd__("notinbranch")))
float expf(float) LT_SIMD; float logf(float) LT_SIMD; float sinf(float) LT_SIMD;
float cosf(float) LT_SIMD; float tanhf(float) LT_SIMD; float expm1f(float) LT_SIMD;
float log1pf(float) LT_SIMD; float exp2f(float) LT_SIMD; float log2f(float) LT_SIMD;
float tanf(float) LT_SIMD; float erff(float) LT_SIMD; float powf(float, float) LT_SIMD;
float asinf(float) LT_SIMD; float acosf(float) LT_SIMD; float atanf(float) LT_SIMD;
float sinhf(float) LT_SIMD; float coshf(float) LT_SIMD; float asinhf(float) LT_SIMD;
float acoshf(float) LT_SIMD; float atanhf(float) LT_SIMD; float atan2f(float, float) LT_SIMD;
double exp(double) LT_SIMD; double log(double) LT_SIMD; double sin(double) LT_SIMD;
double cos(double) LT_SIMD; double tanh(double) LT_SIMD; double pow(double, double) LT_SIMD;
/* float tanh as a rational function (odd degree 13 over even degree 6, the approximation
   Eigen uses): within 7 ulp of tanh, NaN and -0 kept, exactly +-1 beyond |a| = 9, and
   vectorizable in place; libmvec's tanhf cost more than a memory stream (gelu ran at ~60%
   of copy bandwidth) */
static inline float lt_tanhf(float a) {
  const float c = 7.99881172180175781f;
  float x = a > c ? c : a;
  x = x < -c ? -c : x;
  float x2 = x * x;
  float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
  p = x2 * p + -8.60467152213735e-11f;
  p = x2 * p + 5.12229709037114e-08f;
  p = x2 * p + 1.48572235717979e-05f;
  p = x2 * p + 6.37261928875436e-04f;
  p = x2 * p + 4.89352455891786e-03f;
  p = x * p;
  float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
  q = x2 * q + 2.26843463243900e-03f;
  q = x2 * q + 4.89352518554385e-03f;
  float r = p / q, m = fabsf(a);
  r = m > 9.0f ? copysignf(1.0f, a) : r;
  return m < 0.0004f ? a : r;
}
"""


# kernels doing less work than this (elements times reduce length) run on one thread: a
# parallel region costs about a microsecond; the crossover measured here is near 32K
PARALLEL_WORK = 1 << 16
THREAD_ROWS = 64   # outer iterations enough to share between threads evenly


def _tanh(r, d: dt.DType, a: str) -> str:
    return f"tanh({a})" if d == dt.float64 else f"lt_tanhf({a})"


def _gemm(k) -> bool:
    return k.scatter is None and gemm.match_gemm(k) is not None


def _column_reduce(k) -> bool:
    return is_vertical(k)


@dataclass
class _Nest:
    """How a plain kernel's loop nest runs: split between the threads (`parallel`), its window
    written out (`unrolled`), vectorized along the outputs (`flat`, `simd_all`: all of them
    as one), the outer loops the threads share (`rows`; 0: all of them)."""

    work: int
    parallel: bool
    unrolled: bool
    flat: bool
    simd_all: bool
    rows: int


class CRenderer(CStyleRenderer):
    """C for GCC on the CPU: OpenMP threads, vector loops, the CPU's kernel strategies."""

    name = "c"
    TYPES = {**CStyleRenderer.TYPES, dt.float16: "_Float16"}
    ROUND = {**CStyleRenderer.ROUND, dt.float16: "(float)(_Float16)"}
    STORE = {**CStyleRenderer.STORE, dt.float16: "(_Float16)"}
    EXPR = {**EXPR, Op.TANH: _tanh}
    PARALLEL_WORK = PARALLEL_WORK

    @staticmethod
    def capabilities(threads: int) -> Capabilities:
        """What this renderer offers the scheduler on a CPU with `threads` cores."""
        return Capabilities(threads=threads, vector_bytes=32, gemm=_gemm,
                            column_reduce=_column_reduce, row_kernels=True)

    def __init__(self, caps: Capabilities | None = None):
        super().__init__(caps if caps is not None else self.capabilities(1))

    # ------------------------------------------------------------------ strategies
    def render_kernel(self, k: Kernel, fname: str) -> str:
        pnames = {i: p.name for i, p in enumerate(k.params)}
        pname = pnames.__getitem__
        if isinstance(k, RowKernel):
            return render_row(self, k, fname, pname)
        spec = gemm.match_gemm(k) if k.scatter is None else None
        if spec is not None:
            def epilogue() -> list[str]:
                out = self.statements(k, pname, (0, 2))
                out.append(f"out0[{k.store_index.render()}] = "
                           f"{self.store(k, k.store_val.name)};")
                return out
            return gemm.render_gemm(self, k, spec, fname, pname, epilogue)
        if k.acc is not None and k.acc.dtype not in self.ROUND and is_vertical(k):
            return render_vertical(self, k, fname, pname)
        return self.render_nest(k, fname, pname)

    def nest_context(self, k: Kernel) -> _Nest:
        # per element, a kernel does about one step per few values (a col2im's nine guarded
        # loads and sums: ~40): heavier bodies go parallel at fewer elements
        work = math.prod(k.loops) * math.prod(k.red_loops) * max(1, len(k.vals) // 4)
        parallel = bool(k.scatter is None and k.loops and math.prod(k.loops) > 1
                        and work >= PARALLEL_WORK)
        unrolled = is_small_window(self, k)
        # a written-out window over short rows of outputs (a 5x5 pooled map) vectorizes
        # across all of them
        simd_all = unrolled and not parallel and len(k.loops) > 1 and k.loops[-1] < 8
        rows = _thread_loops(k) if parallel and k.red_op is None else 0
        return _Nest(work, parallel, unrolled, k.red_op is None or unrolled, simd_all, rows)

    def before_loop(self, k: Kernel, c: _Nest, i: int) -> list[str]:
        last = i == len(k.loops) - 1
        if i == 0 and c.rows:
            col = f" collapse({c.rows})" if c.rows > 1 else ""
            return [f"#pragma omp parallel for{col} schedule(static)"]
        if c.rows:
            return ["#pragma omp simd"] if last else []
        if i == 0 and c.parallel:
            # the output loops are perfectly nested: split them all between the threads
            col = f" collapse({len(k.loops)})" if len(k.loops) > 1 else ""
            return [f"#pragma omp parallel for{' simd' if c.flat else ''}{col} schedule(static)"]
        if i == 0 and c.simd_all:
            return [f"#pragma omp simd collapse({len(k.loops)})"]
        if last and c.flat and not c.parallel and not c.simd_all:
            return ["#pragma omp simd"]
        return []

    def reduction(self, k: Kernel, pname, c: _Nest) -> list[str]:
        if c.unrolled:
            return window_lines(self, k, pname)
        if k.red_op is None:
            return []
        # a few outputs with long reductions (a full sum): the threads split the reduction
        split = (not c.parallel and math.prod(k.loops) < 4 and len(k.red_loops) == 1
                 and c.work >= 8 * PARALLEL_WORK and k.red_op in (Op.SUM, Op.PROD, Op.RMAX,
                                                                   Op.RMIN))
        return self.reduce_lines(k, pname, split)

    def reduce_lines(self, k: Kernel, pname, split: bool = False) -> list[str]:
        """Float sums longer than a chunk add up in a cascade (reduce.py); a split reduction
        runs between the threads, in streams when long."""
        if split and cascades(k):
            return split_cascade_lines(self, k, pname)
        if split and k.red_loops[0] >= STREAMS_MIN and k.acc.dtype in (dt.float32, dt.float64):
            return stream_lines(self, k, pname)
        if cascades(k) and k.red_loops and (k.red_loops[-1] > WHOLE or
                                            level_sizes(math.prod(k.red_loops[:-1]))):
            return cascade_lines(self, k, pname)
        return super().reduce_lines(k, pname, split)

    def before_reduce_loop(self, k: Kernel, i: int, split: bool, nan_flag: bool) -> list[str]:
        simd = {Op.SUM: "+", Op.PROD: "*", Op.RMAX: "max", Op.RMIN: "min"}.get(k.red_op)
        if simd and i == len(k.red_loops) - 1 and (k.acc.dtype.kind == "f" or
                                                      simd in ("max", "min")):
            extra = " reduction(|:nan_seen)" if nan_flag else ""
            par = "parallel for simd schedule(static)" if split else "simd"
            return [f"#pragma omp {par} reduction({simd}:acc){extra}"]
        return []

    # ------------------------------------------------------------------ modules
    def unlikely(self, cond: str) -> str:
        return f"__builtin_expect({cond}, 0)"

    def declarations(self) -> str:
        return DECLARATIONS

    def header(self) -> str:
        return self.prelude() + gemm.PRELUDE + gemm.CORE

    def render_module(self, functions: list[str]) -> str:
        """One C translation unit holding the kernel functions `functions` (the GEMM core
        only when one of them calls it)."""
        core = gemm.CORE if any("lt_gemm_" in body for body in functions) else ""
        return self.prelude() + gemm.PRELUDE + core + "\n" + "\n\n".join(functions) + "\n"


def _thread_loops(k: Kernel) -> int:
    """How many outer loops of an elementwise kernel the threads share (0: all of them, as one
    flat vectorized loop). With a vector's worth of innermost iterations, the threads take the
    fewest outer loops that split evenly and the innermost loop is vectorized: collapsing every
    loop makes each element recover its indices by division, which for window gathers and
    guarded loads cost 1.2-4x the time (an im2col copy 147 -> 37 us)."""
    loops = k.loops
    if len(loops) < 2 or loops[-1] < 8:
        return 0
    for c in range(1, len(loops)):
        if math.prod(loops[:c]) >= THREAD_ROWS:
            return c
    return 0
