"""Render a Kernel as plain C99: a loop nest with SSA statements, `restrict` pointers."""
from __future__ import annotations

import itertools
import math

from .. import dtypes as dt
from ..ops import Op
from .codegen_reduce import (
    STREAM_CHUNK,
    WHOLE,
    cascade_decl,
    cascade_push,
    cascade_total,
    cascades,
    chunk_length,
    is_vertical,
    level_sizes,
    render_vertical,
)
from .gemm import CORE as GEMM_CORE
from .gemm import PRELUDE as GEMM_PRELUDE
from .gemm import match_gemm, render_gemm
from .kernel import Kernel, Val
from .rowfuse import RowKernel

PRELUDE = r"""#include <math.h>
#include <stdint.h>
#define LT_SIMD __attribute__((__simd__("notinbranch")))
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
/* bfloat16: the upper half of a float32. Loaded exactly; stored rounded to nearest even, as
   PyTorch rounds (an overflow carries into the exponent: inf), NaN kept quiet and signed */
static inline float lt_bf2f(uint16_t h) {
  union { uint32_t u; float f; } v = { (uint32_t)h << 16 }; return v.f; }
static inline uint16_t lt_f2bf(float f) {
  union { float f; uint32_t u; } v = { f };
  uint32_t r = (v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16;
  return (uint16_t)(f != f ? (v.u >> 16) | 0x40u : r); }
static inline float lt_bf16r(float f) { return lt_bf2f(lt_f2bf(f)); }
/* integer division by zero sets the module's fault flag, which the runtime reads after the
   kernels ran and reports as ZeroDivisionError; -1 is handled apart (INT64_MIN / -1 traps) */
int lt_fault;
static inline long long lt_idiv(long long a, long long b) {
  if (__builtin_expect(b == 0, 0)) { lt_fault = 1; return 0; }
  if (b == -1) return (long long)(0ULL - (unsigned long long)a);
  long long q = a / b; return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q; }
static inline long long lt_imod(long long a, long long b) {
  if (__builtin_expect(b == 0, 0)) { lt_fault = 1; return 0; }
  if (b == -1) return 0;
  long long r = a % b; return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r; }
static inline float lt_fmodf(float a, float b) {
  float r = fmodf(a, b); return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r; }
static inline double lt_fmod(double a, double b) {
  double r = fmod(a, b); return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r; }
static inline float lt_fdivf(float a, float b) {  /* floor division as torch/Python */
  if (b == 0) return a / b; float m = fmodf(a, b), q = (a - m) / b;
  if (m != 0 && ((b < 0) != (m < 0))) q -= 1;
  if (q == 0) return copysignf(0.0f, a / b); float f = floorf(q); return q - f > 0.5f ? f + 1 : f; }
static inline double lt_fdiv(double a, double b) {
  if (b == 0) return a / b; double m = fmod(a, b), q = (a - m) / b;
  if (m != 0 && ((b < 0) != (m < 0))) q -= 1;
  if (q == 0) return copysign(0.0, a / b); double f = floor(q); return q - f > 0.5 ? f + 1 : f; }
static inline long long lt_ipow(long long a, long long b) {
  if (b < 0) return a == 1 ? 1 : (a == -1 ? ((b & 1) ? -1 : 1) : 0);
  long long r = 1; while (b) { if (b & 1) r *= a; a *= a; b >>= 1; } return r; }
"""


# kernels doing less work than this (elements times reduce length) run on one thread: a
# parallel region costs about a microsecond; the crossover measured here is near 32K
PARALLEL_WORK = 1 << 16


# the float types computed in float, each result rounded to the type's own precision (as
# PyTorch's CPU kernels do): the C that rounds a float expression
_ROUND = {dt.float16: "(float)(_Float16)", dt.bfloat16: "lt_bf16r"}
# the types whose storage C does not convert to and from float by itself
_LOAD = {dt.bfloat16: "lt_bf2f"}
_STORE = {dt.float16: "(_Float16)", dt.bfloat16: "lt_f2bf"}


def ctype(d: dt.DType) -> str:
    """The C type values of `d` are computed in (half and bfloat16 are computed in float)."""
    return "float" if d in _ROUND else d.ctype


def render_const(v, d: dt.DType) -> str:
    if d.kind == "b":
        return "1" if v else "0"
    if d.kind in "iu":
        v = int(v)
        return f"{v}LL" if d == dt.int64 else str(v)
    v = float(v)
    suffix = "" if d == dt.float64 else "f"
    if math.isnan(v):
        return "NAN"
    if math.isinf(v):
        return "INFINITY" if v > 0 else "(-INFINITY)"
    return f"{v!r}{suffix}" if "e" in repr(v) or "." in repr(v) else f"{v!r}.0{suffix}"


def _fn(name: str):
    """A libm function: `expf` for float/half, `exp` for double."""
    return lambda d, a: f"{name}{'' if d == dt.float64 else 'f'}({a})"


def _is_float(d: dt.DType) -> bool:
    return d.kind == "f"


def _tanh(d: dt.DType, a: str) -> str:
    return f"tanh({a})" if d == dt.float64 else f"lt_tanhf({a})"


# per-op C expressions: (dtype of the operands, *operand strings) -> C expression
C_EXPR = {
    Op.NEG: lambda d, a: f"(-{a})" if d != dt.bool_ else f"(!{a})",
    Op.NOT: lambda d, a: f"(!{a})",
    Op.ABS: lambda d, a: _fn("fabs")(d, a) if _is_float(d) else f"({a} < 0 ? -{a} : {a})",
    Op.SIGN: lambda d, a: (f"({a} != {a} ? {a} : ({ctype(d)})(({a} > 0) - ({a} < 0)))"
                           if _is_float(d) else f"({ctype(d)})(({a} > 0) - ({a} < 0))"),
    Op.EXP: _fn("exp"), Op.EXP2: _fn("exp2"), Op.EXPM1: _fn("expm1"), Op.LOG: _fn("log"),
    Op.LOG2: _fn("log2"), Op.LOG1P: _fn("log1p"), Op.SQRT: _fn("sqrt"),
    Op.RSQRT: lambda d, a: f"(1 / {_fn('sqrt')(d, a)})",
    Op.RECIP: lambda d, a: f"(1 / {a})",
    Op.SIN: _fn("sin"), Op.COS: _fn("cos"), Op.TAN: _fn("tan"), Op.TANH: _tanh,
    Op.ASIN: _fn("asin"), Op.ACOS: _fn("acos"), Op.ATAN: _fn("atan"), Op.SINH: _fn("sinh"),
    Op.COSH: _fn("cosh"), Op.ASINH: _fn("asinh"), Op.ACOSH: _fn("acosh"), Op.ATANH: _fn("atanh"),
    Op.SIGMOID: lambda d, a: f"(1 / (1 + {_fn('exp')(d, '-' + a)}))",
    Op.ERF: _fn("erf"), Op.FLOOR: _fn("floor"), Op.CEIL: _fn("ceil"), Op.ROUND: _fn("rint"),
    Op.TRUNC: _fn("trunc"),
    Op.ISNAN: lambda d, a: f"({a} != {a})",
    Op.ISINF: lambda d, a: f"({a} == INFINITY || {a} == -INFINITY)",
    Op.ADD: lambda d, a, b: f"({a} + {b})" if d != dt.bool_ else f"({a} | {b})",
    Op.SUB: lambda d, a, b: f"({a} - {b})",
    Op.MUL: lambda d, a, b: f"({a} * {b})" if d != dt.bool_ else f"({a} & {b})",
    Op.DIV: lambda d, a, b: f"({a} / {b})",
    Op.IDIV: lambda d, a, b: (f"lt_fdiv{'' if d == dt.float64 else 'f'}({a}, {b})" if _is_float(d)
                              else f"({ctype(d)})lt_idiv({a}, {b})"),
    Op.MOD: lambda d, a, b: (f"lt_fmod{'' if d == dt.float64 else 'f'}({a}, {b})"
                             if _is_float(d) else f"({ctype(d)})lt_imod({a}, {b})"),
    Op.POW: lambda d, a, b: (f"pow{'' if d == dt.float64 else 'f'}({a}, {b})"
                             if _is_float(d) else f"({ctype(d)})lt_ipow({a}, {b})"),
    Op.ATAN2: lambda d, a, b: f"atan2{'' if d == dt.float64 else 'f'}({a}, {b})",
    Op.MAX: lambda d, a, b: f"(({a} > {b} || {a} != {a}) ? {a} : {b})",
    Op.MIN: lambda d, a, b: f"(({a} < {b} || {a} != {a}) ? {a} : {b})",
    Op.CMPEQ: lambda d, a, b: f"({a} == {b})",
    Op.CMPNE: lambda d, a, b: f"({a} != {b})",
    Op.CMPLT: lambda d, a, b: f"({a} < {b})",
    Op.CMPLE: lambda d, a, b: f"({a} <= {b})",
    Op.AND: lambda d, a, b: f"({a} & {b})",
    Op.OR: lambda d, a, b: f"({a} | {b})",
    Op.XOR: lambda d, a, b: f"({a} ^ {b})",
    Op.WHERE: lambda d, c, a, b: f"({c} ? {a} : {b})",
}


def _cast(v: str, src: dt.DType, dst: dt.DType) -> str:
    if dst in _ROUND:   # (to bfloat16: a double or an integer is rounded to float first)
        return f"{_ROUND[dst]}({v})"
    if dst == dt.bool_:
        return f"({v} != 0)"
    return f"({dst.ctype})({v})"


def _cond(conds) -> str:
    parts = []
    for e, lo, hi in conds:
        r = e.render()
        parts.append(f"({lo} <= {r} && {r} < {hi})")
    return " && ".join(parts) or "1"


def _expr(v: Val, pname) -> str:
    if v.kind == "const":
        return render_const(v.arg, v.dtype)
    if v.kind == "load":
        p, idx, conds = v.arg
        load = f"{pname(p)}[{idx.render()}]"
        if v.dtype in _LOAD:
            load = f"{_LOAD[v.dtype]}({load})"
        return f"(({_cond(conds)}) ? {load} : 0)" if conds else load
    if v.kind == "cond":
        return _cond(v.arg)
    if v.kind == "ref":  # a value computed earlier in the same kernel (row-fused kernels)
        return v.arg
    if v.op is Op.CAST:
        return _cast(v.srcs[0].name, v.srcs[0].dtype, v.dtype)
    operand = v.srcs[-1].dtype  # WHERE: the branches' dtype; otherwise all srcs agree
    expr = C_EXPR[v.op](operand, *(s.name for s in v.srcs))
    # half and bfloat16 are computed in float: round every result, as each op does in PyTorch
    return f"{_ROUND[v.dtype]}({expr})" if v.dtype in _ROUND else expr


def _argbest_update(cmp: str):
    def update(k: Kernel, v: str, acc: str) -> str:
        r = "r0" if k.red_loops else "0"
        return f"if ({v} {cmp} best || ({v} != {v} && best == best)) {{ best = {v}; {acc} = {r}; }}"
    return update


# per reduce and scan op: the accumulator's start ("lowest"/"highest": the extreme of the
# dtype compared in) and the C statement folding a value v into it (argmax/argmin keep the
# best value in `best` and its index in the accumulator; NaN wins, as in PyTorch)
ACC_START = {Op.SUM: "0", Op.PROD: "1", Op.CUMSUM: "0", Op.CUMPROD: "1", Op.RMAX: "lowest",
             Op.RMIN: "highest", Op.ARGMAX: "lowest", Op.ARGMIN: "highest"}
ACC_UPDATE = {
    Op.SUM: lambda k, v, acc: f"{acc} = {acc} + {v};",
    Op.CUMSUM: lambda k, v, acc: f"{acc} = {acc} + {v};",
    Op.PROD: lambda k, v, acc: f"{acc} = {acc} * {v};",
    Op.CUMPROD: lambda k, v, acc: f"{acc} = {acc} * {v};",
    Op.RMAX: lambda k, v, acc: f"{acc} = ({v} > {acc} || {v} != {v}) ? {v} : {acc};",
    Op.RMIN: lambda k, v, acc: f"{acc} = ({v} < {acc} || {v} != {v}) ? {v} : {acc};",
    Op.ARGMAX: _argbest_update(">"),
    Op.ARGMIN: _argbest_update("<"),
}


def _red_init(k: Kernel) -> str:
    # argmax/argmin: the running best has the source's dtype (acc is the int64 index)
    d = k.red_val.dtype if k.red_op in (Op.ARGMAX, Op.ARGMIN) else k.acc.dtype
    start = ACC_START[k.red_op]
    if start not in ("lowest", "highest"):
        return start
    lowest = start == "lowest"
    if d.kind == "f":
        return "-INFINITY" if lowest else "INFINITY"
    if d.kind == "b":
        return "0" if lowest else "1"
    info = __import__("numpy").iinfo(d.np)
    return f"{info.min if lowest else info.max}LL"


def _red_update(k: Kernel, v: str, acc: str = "acc") -> list[str]:
    return [ACC_UPDATE[k.red_op](k, v, acc)]


def statements(k: Kernel, pname, levels) -> list[str]:
    """One C declaration per value of k whose level is in `levels` (0: outer, 1: reduce body,
    2: after the reduction), sources first; the accumulator itself is declared apart."""
    return [f"{ctype(v.dtype)} {v.name} = {_expr(v, pname)};" for v in k.vals
            if v.kind != "acc" and k.level[id(v)] in levels]


def render_kernel_named(k: Kernel, fname: str) -> str:
    """The kernel as a C function named `fname`."""
    pnames = {i: p.name for i, p in enumerate(k.params)}
    pname = pnames.__getitem__
    if isinstance(k, RowKernel):
        return render_row(k, fname, pname)
    spec = match_gemm(k) if getattr(k, "scatter", None) is None else None
    if spec is not None:
        def epilogue() -> list[str]:
            out = statements(k, pname, (0, 2))
            out.append(f"out0[{k.store_index.render()}] = {_store(k, k.store_val.name)};")
            return out
        return render_gemm(k, spec, fname, pname, epilogue)
    args = ", ".join(
        f"{'' if p.output else 'const '}{p.dtype.ctype}* restrict {p.name}" for p in k.params)
    if k.acc is not None and k.acc.dtype not in _ROUND and is_vertical(k):
        def decl(level: int) -> list[str]:
            return statements(k, pname, (level,))
        decl.ctype = ctype
        store = f"out0[{k.store_index.render()}] = {_store(k, k.store_val.name)};"
        return render_vertical(k, fname, args, decl, store)
    lines = [f"void {fname}({args}) {{"]
    ind = 1

    def emit(s: str) -> None:
        lines.append("  " * ind + s)

    def stmts(level: int) -> None:
        for line in statements(k, pname, (level,)):
            emit(line)

    # per element, a kernel does about one step per few values (a col2im's nine guarded
    # loads and sums: ~40): heavier bodies go parallel at fewer elements
    work = math.prod(k.loops) * math.prod(k.red_loops) * max(1, len(k.vals) // 4)
    parallel = (getattr(k, "scatter", None) is None and k.loops and math.prod(k.loops) > 1
                and work >= PARALLEL_WORK)
    unrolled = _is_small_window(k)
    flat = k.red_op is None or unrolled     # vectorized along the outputs
    # a written-out window over short rows of outputs (a 5x5 pooled map) vectorizes across
    # all of them
    simd_all = unrolled and not parallel and len(k.loops) > 1 and k.loops[-1] < 8
    rows = _thread_loops(k) if parallel and k.red_op is None else 0
    for i, n in enumerate(k.loops):
        last = i == len(k.loops) - 1
        if i == 0 and rows:
            c = f" collapse({rows})" if rows > 1 else ""
            emit(f"#pragma omp parallel for{c} schedule(static)")
        elif last and rows:
            emit("#pragma omp simd")
        elif rows:
            pass
        elif i == 0 and parallel:
            # the output loops are perfectly nested: split them all between the threads
            c = f" collapse({len(k.loops)})" if len(k.loops) > 1 else ""
            emit(f"#pragma omp parallel for{' simd' if flat else ''}{c} schedule(static)")
        elif i == 0 and simd_all:
            emit(f"#pragma omp simd collapse({len(k.loops)})")
        elif last and flat and not parallel and not simd_all:
            emit("#pragma omp simd")
        emit(f"for (long o{i} = 0; o{i} < {n}; o{i}++) {{")
        ind += 1
    stmts(0)
    if unrolled:
        for line in window_lines(k, pname):
            emit(line)
    elif k.red_op is not None:
        # a few outputs with long reductions (a full sum): the threads split the reduction
        split = (not parallel and math.prod(k.loops) < 4 and len(k.red_loops) == 1
                 and work >= 8 * PARALLEL_WORK and k.red_op in (Op.SUM, Op.PROD, Op.RMAX,
                                                                 Op.RMIN))
        for line in reduce_lines(k, pname, split):
            emit(line)
    if k.red_op not in (Op.CUMSUM, Op.CUMPROD):
        emit(f"out0[{k.store_index.render()}] = {_store(k, k.store_val.name)};")
    for _ in k.loops:
        ind -= 1
        emit("}")
    if k.scatter is not None:
        lines.extend("  " + line for line in _render_scatter(k.scatter, pname))
    lines.append("}")
    return "\n".join(lines)


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


THREAD_ROWS = 64   # outer iterations enough to share between threads evenly


def reduce_lines(k: Kernel, pname, split: bool = False) -> list[str]:
    """The reduce loop of kernel k: accumulator, loop with the body's statements (level 1),
    then the statements after it (level 2). Variables o0.. are those of the enclosing loops.
    `split`: the threads share the (last) reduce loop, each with a partial accumulator.
    Float sums longer than a chunk add up in a cascade (codegen_reduce)."""
    lines: list[str] = []
    ind = 0

    def emit(s: str) -> None:
        lines.append("  " * ind + s)

    def stmts(level: int) -> None:
        for line in statements(k, pname, (level,)):
            emit(line)

    if split and cascades(k):
        return _split_cascade_lines(k, pname)
    if split and k.red_loops[0] >= STREAMS_MIN and k.acc.dtype in (dt.float32, dt.float64):
        return _stream_lines(k, pname)
    if cascades(k) and k.red_loops and (k.red_loops[-1] > WHOLE or
                                        level_sizes(math.prod(k.red_loops[:-1]))):
        return _cascade_lines(k, pname)
    if k.red_op in (Op.ARGMAX, Op.ARGMIN):
        src = k.red_val.dtype
        emit(f"{ctype(src)} best = {_red_init(k) if src.kind != 'f' else _argbest(k)};")
        emit("long long acc = 0;")
    else:
        emit(f"{ctype(k.acc.dtype)} acc = {_red_init(k)};")
    simd = {Op.SUM: "+", Op.PROD: "*", Op.RMAX: "max", Op.RMIN: "min"}.get(k.red_op)
    nan_flag = k.red_op in (Op.RMAX, Op.RMIN) and k.acc.dtype.kind == "f"
    if nan_flag:
        emit("int nan_seen = 0;")
    for i, n in enumerate(k.red_loops):
        if simd and i == len(k.red_loops) - 1 and (k.acc.dtype.kind == "f" or
                                                      simd in ("max", "min")):
            extra = " reduction(|:nan_seen)" if nan_flag else ""
            par = "parallel for simd schedule(static)" if split else "simd"
            emit(f"#pragma omp {par} reduction({simd}:acc){extra}")
        emit(f"for (long r{i} = 0; r{i} < {n}; r{i}++) {{")
        ind += 1
    stmts(1)
    if nan_flag:
        # vectorizable max/min, with NaN propagated through a flag as PyTorch does
        v = k.red_val.name
        cmp = ">" if k.red_op is Op.RMAX else "<"
        emit(f"acc = {v} {cmp} acc ? {v} : acc; nan_seen |= {v} != {v};")
    else:
        for s in _red_update(k, k.red_val.name):
            emit(s)
    if k.red_op in (Op.CUMSUM, Op.CUMPROD):
        emit(f"out0[{k.store_index.render()}] = {_store(k, 'acc')};")
    for _ in k.red_loops:
        ind -= 1
        emit("}")
    if nan_flag:
        emit("if (nan_seen) acc = NAN;")
    for line in _round_acc(k):
        emit(line)
    stmts(2)
    return lines


def _round_acc(k: Kernel) -> list[str]:
    """A half or bfloat16 sum or product is accumulated in float: rounded once, at the end,
    for the statements after it to see the rounded result."""
    if k.red_op in (Op.SUM, Op.PROD) and k.acc.dtype in _ROUND:
        return [f"acc = {_ROUND[k.acc.dtype]}(acc);"]
    return []


def _cascade_lines(k: Kernel, pname) -> list[str]:
    """A float sum in a cascade: the last reduce loop in vectorized chunks of at most CHUNK
    elements (whole, up to WHOLE), each chunk's sum an entry of the levels; then the
    statements after it."""
    t, m = ctype(k.acc.dtype), k.red_loops[-1]
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
    lines.extend(f"{ind}  {s}" for s in statements(k, pname, (1,)))
    lines.append(f"{ind}  ch = ch + {k.red_val.name};")
    lines.append(f"{ind}}}")
    lines.append(f"{ind}{cascade_push('ch', sizes)}")
    while ind:
        ind = ind[:-2]
        lines.append(f"{ind}}}")
    lines.append(f"{t} acc = {cascade_total(sizes)};")
    lines.extend(_round_acc(k))
    lines.extend(statements(k, pname, (2,)))
    return lines


def _split_cascade_lines(k: Kernel, pname) -> list[str]:
    """A float sum (one reduce loop) that the threads split: its elements read as STREAMS
    contiguous parts at once (one when short), in chunks of STREAM_CHUNK elements of each; each
    thread takes a run of chunks and adds them up in a cascade of its own, and the threads'
    sums are added. Then the statements after it."""
    n, t, v = k.red_loops[0], ctype(k.acc.dtype), k.red_val.name
    streams = STREAMS if n >= STREAMS_MIN else 1
    part = n // streams
    size = chunk_length(part, STREAM_CHUNK)
    chunks = -(-part // size)
    sizes = level_sizes(chunks)
    accs = [f"a{j}" for j in range(streams)]
    body = statements(k, pname, (1,))
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
    lines.extend(_round_acc(k))
    lines.extend(statements(k, pname, (2,)))
    return lines


# a reduction this long, split between the threads, reads its input as STREAMS contiguous
# quarters at once, each with its own accumulator: a sum of 16M went 4.3 -> 2.8 ms (more
# loads in flight, and no add waiting on the one before it)
STREAMS = 4
STREAMS_MIN = 1 << 14


def _stream_lines(k: Kernel, pname) -> list[str]:
    """The split reduction of kernel k (one reduce loop) as STREAMS interleaved contiguous
    parts, then the statements after it."""
    n, t, v = k.red_loops[0], ctype(k.acc.dtype), k.red_val.name
    part = n // STREAMS
    accs = [f"a{j}" for j in range(STREAMS)]
    nan_flag = k.red_op in (Op.RMAX, Op.RMIN)
    red = {Op.SUM: "+", Op.PROD: "*", Op.RMAX: "max", Op.RMIN: "min"}[k.red_op]
    lines = [f"{t} {', '.join(f'{a} = {_red_init(k)}' for a in accs)};"]
    if nan_flag:
        lines.append("int nan_seen = 0;")
    flag = " reduction(|:nan_seen)" if nan_flag else ""
    lines.append(f"#pragma omp parallel for simd schedule(static) "
                 f"reduction({red}:{','.join(accs)}){flag}")
    lines.append(f"for (long q = 0; q < {part}; q++) {{")
    body = statements(k, pname, (1,))

    def step(a: str) -> str:
        if k.red_op in (Op.SUM, Op.PROD):
            return _red_update(k, v, a)[0]
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
    lines.extend(statements(k, pname, (2,)))
    return lines


# reductions over at most this many elements per output (a pooling window) are written out
# in full, so the loop over the outputs vectorizes instead
SMALL_WINDOW = 16


def _is_small_window(k: Kernel) -> bool:
    if k.red_op in (Op.ARGMAX, Op.ARGMIN):
        if len(k.red_loops) != 1 or k.red_val.dtype in _ROUND:
            return False
    elif k.red_op not in (Op.SUM, Op.PROD, Op.RMAX, Op.RMIN) or k.acc.dtype in _ROUND:
        return False
    return (bool(k.red_loops) and math.prod(k.red_loops) <= SMALL_WINDOW and bool(k.loops)
            and math.prod(k.loops) >= 8 and getattr(k, "scatter", None) is None)


def _argbest_window(k: Kernel, pname) -> list[str]:
    """argmax/argmin of a small window, in selects the compiler vectorizes: every element,
    then the best (NaN wins), then the first position holding it (or the first NaN)."""
    n, v, t = k.red_loops[0], k.red_val.name, ctype(k.red_val.dtype)
    cmp = ">" if k.red_op is Op.ARGMAX else "<"
    isf = k.red_val.dtype.kind == "f"
    lines = []
    for r in range(n):
        lines.append(f"{t} e{r}; {{ const long r0 = {r};")
        lines.extend("  " + line for line in statements(k, pname, (1,)))
        lines.append(f"  e{r} = {v}; }}")
    lines.append(f"{t} best = {_argbest(k) if isf else _red_init(k)};")
    for r in range(n):
        lines.append(f"best = e{r} {cmp} best ? e{r} : best;"
                     + (f" best = e{r} != e{r} ? e{r} : best;" if isf else ""))
    lines.append(f"long long acc = {n - 1};")
    lines.extend(f"acc = e{r} == best ? {r} : acc;" for r in reversed(range(n - 1)))
    if isf:
        lines.append(f"long long nan_at = {n - 1};")
        lines.extend(f"nan_at = e{r} != e{r} ? {r} : nan_at;" for r in reversed(range(n - 1)))
        lines.append("acc = best != best ? nan_at : acc;")
    return lines


def window_lines(k: Kernel, pname) -> list[str]:
    """A small reduction written out element by element (each with its reduce variables as
    constants, which the compiler folds into the indices), then the statements after it.
    max/min propagate NaN by a select after each step: vectorizable, unlike a flag."""
    if k.red_op in (Op.ARGMAX, Op.ARGMIN):
        return _argbest_window(k, pname) + statements(k, pname, (2,))
    lines = [f"{ctype(k.acc.dtype)} acc = {_red_init(k)};"]
    body = statements(k, pname, (1,))
    v = k.red_val.name
    if k.red_op in (Op.RMAX, Op.RMIN):
        cmp = ">" if k.red_op is Op.RMAX else "<"
        update = f"acc = {v} {cmp} acc ? {v} : acc;"
        if k.acc.dtype.kind == "f":
            update += f" acc = {v} != {v} ? {v} : acc;"
    else:
        update = _red_update(k, v)[0]
    for rs in itertools.product(*(range(n) for n in k.red_loops)):
        consts = ", ".join(f"r{i} = {r}" for i, r in enumerate(rs))
        lines.append(f"{{ const long {consts};")
        lines.extend("  " + line for line in body)
        lines.append(f"  {update} }}")
    lines.extend(statements(k, pname, (2,)))
    return lines


_FOLD = {None: "=", "add": "+=", "multiply": "*="}


def _render_scatter(s: Kernel, pname) -> list[str]:
    """A scatter kernel's second loop nest: each src value stored (or folded in) at the
    position its index reads."""
    lines = []
    for i, n in enumerate(s.loops):
        lines.append("  " * i + f"for (long o{i} = 0; o{i} < {n}; o{i}++) {{")
    ind = "  " * len(s.loops)
    for v in s.vals:
        lines.append(f"{ind}{ctype(v.dtype)} {v.name} = {_expr(v, pname)};")
    at = f"out0[{s.store_index.render()}]"
    if s.store_mode is not None and s.params[0].dtype in _LOAD:
        # folded in float and rounded, as the type's own arithmetic does
        folded = f"{_LOAD[s.params[0].dtype]}({at}) {_FOLD[s.store_mode][0]} {s.store_val.name}"
        lines.append(f"{ind}{at} = {_store(s, folded)};")
    else:
        lines.append(f"{ind}{at} {_FOLD[s.store_mode]} {_store(s, s.store_val.name)};")
    for i in reversed(range(len(s.loops))):
        lines.append("  " * i + "}")
    return lines


def _argbest(k: Kernel) -> str:
    return "-INFINITY" if k.red_op is Op.ARGMAX else "INFINITY"


def _store(k: Kernel, v: str) -> str:
    d = k.params[0].dtype
    return f"{_STORE[d]}({v})" if d in _STORE else v


def render_row(k: RowKernel, fname: str, pname) -> str:
    """A row-fused kernel: per row, each stage's reduction in turn (its value kept in a
    register for the later stages), then the final stage's store or loop over the row."""
    args = ", ".join(
        f"{'' if p.output else 'const '}{p.dtype.ctype}* restrict {p.name}" for p in k.params)
    lines = [f"void {fname}({args}) {{"]
    if k.rows * k.cols >= PARALLEL_WORK:
        lines.append("  #pragma omp parallel for schedule(static)")
    lines.append(f"  for (long o0 = 0; o0 < {k.rows}; o0++) {{")
    # rows read whole from memory: ask for the row after next now, so that the passes over
    # this row (in cache) overlap with memory fetching the next ones
    for p in _streamed_rows(k):
        per_line = 64 // p.dtype.itemsize
        lines.append(f"    if (o0 + 2 < {k.rows}) for (long q = 0; q < {k.cols}; q += {per_line}) "
                     f"__builtin_prefetch(&{p.name}[(o0 + 2) * {k.cols} + q], 0, 3);")
    for j, (_, v) in enumerate(k.saved):
        lines.append(f"    {ctype(v.dtype)} row{j}[{k.cols}];")
    for i, st in enumerate(k.stages):
        lines.append(f"    {ctype(st.store_val.dtype)} st{i};")
        lines.append("    {")
        body = statements(st, pname, (0,))
        red = reduce_lines(st, pname)
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
        body = statements(f, pname, (0,))
        body += reduce_lines(f, pname)
        body.append(f"out0[o0] = {_store(f, f.store_val.name)};")
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
        lines += [f"    {ctype(v.dtype)} {v.name} = {_expr(v, pname)};" for v in f.vals
                  if id(v) not in inner]
        lines.append("    #pragma omp simd")
        lines.append(f"    for (long o1 = 0; o1 < {k.cols}; o1++) {{")
        lines += [f"      {ctype(v.dtype)} {v.name} = {_expr(v, pname)};" for v in f.vals
                  if id(v) in inner]
        lines.append(f"      out0[{f.store_index.render()}] = {_store(f, f.store_val.name)};")
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


def render_driver(name: str, calls: list[tuple[int, list[int]]]) -> str:
    """A function `void name(void** p, void** f)` running a plan's kernels in order: call
    (i, slots) runs the kernel at address f[i] on those slots of the pointer array p. Kernels
    are called through their addresses, so they may live in other modules; every kernel
    parameter is a data pointer, passed alike whatever its pointee type."""
    body = "".join(f"  ((void (*)({', '.join(['void*'] * len(slots))}))f[{fn}])"
                   f"({', '.join(f'p[{i}]' for i in slots)});\n" for fn, slots in calls)
    return f"void {name}(void** p, void** f) {{\n{body}}}\n"


def render_module(functions: list[str]) -> str:
    """One C translation unit holding the kernel functions `functions` (rendered sources)."""
    core = GEMM_CORE if any("lt_gemm_" in body for body in functions) else ""
    return PRELUDE + GEMM_PRELUDE + core + "\n" + "\n\n".join(functions) + "\n"


def header_text() -> str:
    """Everything a module may hold besides its kernels (part of each kernel's identity)."""
    return PRELUDE + GEMM_PRELUDE + GEMM_CORE
