"""The language-neutral core of the C-family renderers: a kernel as one function, a plain loop
nest of SSA statements over `restrict` pointers, in C99 that any C-like compiler reads.

It owns what every C-style dialect shares: the type names (per DType), constants, the per-op
expressions (EXPR), casts, guarded loads and stores, index arithmetic (symbolic.Lin renders
C expressions), the reduction accumulators (ACC_START, ACC_UPDATE) and the loop nest. A dialect
subclasses it, overriding table entries and filling the hooks (the lines before a loop, the
reduction strategy, the prelude); the core itself uses nothing outside C99."""
from __future__ import annotations

import math

import numpy as np

from ...ir import dtypes as dt
from ...ir.ops import Op
from ..kernel import Kernel, Param, Val
from ..renderer import Capabilities, Renderer


def render_const(v, d: dt.DType) -> str:
    """The C literal of the Python value v as dtype d."""
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
    return lambda r, d, a: f"{name}{'' if d == dt.float64 else 'f'}({a})"


def _is_float(d: dt.DType) -> bool:
    return d.kind == "f"


def _sfx(d: dt.DType) -> str:
    return "" if d == dt.float64 else "f"


# per-op expressions: (renderer, dtype of the operands, *operand strings) -> expression
EXPR = {
    Op.NEG: lambda r, d, a: f"(-{a})" if d != dt.bool_ else f"(!{a})",
    Op.NOT: lambda r, d, a: f"(!{a})",
    Op.ABS: lambda r, d, a: _fn("fabs")(r, d, a) if _is_float(d) else f"({a} < 0 ? -{a} : {a})",
    Op.SIGN: lambda r, d, a: (f"({a} != {a} ? {a} : ({r.compute_type(d)})(({a} > 0) - ({a} < 0)))"
                              if _is_float(d) else
                              f"({r.compute_type(d)})(({a} > 0) - ({a} < 0))"),
    Op.EXP: _fn("exp"), Op.EXP2: _fn("exp2"), Op.EXPM1: _fn("expm1"), Op.LOG: _fn("log"),
    Op.LOG2: _fn("log2"), Op.LOG1P: _fn("log1p"), Op.SQRT: _fn("sqrt"),
    Op.RSQRT: lambda r, d, a: f"(1 / {_fn('sqrt')(r, d, a)})",
    Op.RECIP: lambda r, d, a: f"(1 / {a})",
    Op.SIN: _fn("sin"), Op.COS: _fn("cos"), Op.TAN: _fn("tan"), Op.TANH: _fn("tanh"),
    Op.ASIN: _fn("asin"), Op.ACOS: _fn("acos"), Op.ATAN: _fn("atan"), Op.SINH: _fn("sinh"),
    Op.COSH: _fn("cosh"), Op.ASINH: _fn("asinh"), Op.ACOSH: _fn("acosh"), Op.ATANH: _fn("atanh"),
    Op.SIGMOID: lambda r, d, a: f"(1 / (1 + {_fn('exp')(r, d, '-' + a)}))",
    Op.ERF: _fn("erf"), Op.FLOOR: _fn("floor"), Op.CEIL: _fn("ceil"), Op.ROUND: _fn("rint"),
    Op.TRUNC: _fn("trunc"),
    Op.ISNAN: lambda r, d, a: f"({a} != {a})",
    Op.ISINF: lambda r, d, a: f"({a} == INFINITY || {a} == -INFINITY)",
    Op.ADD: lambda r, d, a, b: f"({a} + {b})" if d != dt.bool_ else f"({a} | {b})",
    Op.SUB: lambda r, d, a, b: f"({a} - {b})",
    Op.MUL: lambda r, d, a, b: f"({a} * {b})" if d != dt.bool_ else f"({a} & {b})",
    Op.DIV: lambda r, d, a, b: f"({a} / {b})",
    Op.IDIV: lambda r, d, a, b: (f"lt_fdiv{_sfx(d)}({a}, {b})" if _is_float(d)
                                 else f"({r.compute_type(d)})lt_idiv({a}, {b})"),
    Op.MOD: lambda r, d, a, b: (f"lt_fmod{_sfx(d)}({a}, {b})" if _is_float(d)
                                else f"({r.compute_type(d)})lt_imod({a}, {b})"),
    Op.POW: lambda r, d, a, b: (f"pow{_sfx(d)}({a}, {b})" if _is_float(d)
                                else f"({r.compute_type(d)})lt_ipow({a}, {b})"),
    Op.ATAN2: lambda r, d, a, b: f"atan2{_sfx(d)}({a}, {b})",
    Op.MAX: lambda r, d, a, b: f"(({a} > {b} || {a} != {a}) ? {a} : {b})",
    Op.MIN: lambda r, d, a, b: f"(({a} < {b} || {a} != {a}) ? {a} : {b})",
    Op.CMPEQ: lambda r, d, a, b: f"({a} == {b})",
    Op.CMPNE: lambda r, d, a, b: f"({a} != {b})",
    Op.CMPLT: lambda r, d, a, b: f"({a} < {b})",
    Op.CMPLE: lambda r, d, a, b: f"({a} <= {b})",
    Op.AND: lambda r, d, a, b: f"({a} & {b})",
    Op.OR: lambda r, d, a, b: f"({a} | {b})",
    Op.XOR: lambda r, d, a, b: f"({a} ^ {b})",
    Op.WHERE: lambda r, d, c, a, b: f"({c} ? {a} : {b})",
}


def _argbest_update(cmp: str):
    def update(k: Kernel, v: str, acc: str) -> str:
        r = "r0" if k.red_loops else "0"
        return f"if ({v} {cmp} best || ({v} != {v} && best == best)) {{ best = {v}; {acc} = {r}; }}"
    return update


# per reduce and scan op: the accumulator's start ("lowest"/"highest": the extreme of the
# dtype compared in) and the statement folding a value v into it (argmax/argmin keep the
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

_FOLD = {None: "=", "add": "+=", "multiply": "*="}

INCLUDES = "#include <math.h>\n#include <stdint.h>\n"
# the helpers kernels call; @b_is_zero@ is the test of a zero divisor (a dialect may mark it
# unlikely)
HELPERS = r"""
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
  if (@b_is_zero@) { lt_fault = 1; return 0; }
  if (b == -1) return (long long)(0ULL - (unsigned long long)a);
  long long q = a / b; return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q; }
static inline long long lt_imod(long long a, long long b) {
  if (@b_is_zero@) { lt_fault = 1; return 0; }
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
""".lstrip("\n")


class CStyleRenderer(Renderer):
    """Kernels as C99 functions: one loop nest per kernel, no threads, no vector extensions.

    A dialect subclasses it: TYPES, ROUND, LOAD, STORE and EXPR are tables it may extend; the
    hooks are nest_context, before_loop, before_reduce_loop, reduction, reduce_lines,
    unlikely, declarations and header."""

    name = "cstyle"
    # the storage type of each dtype (bfloat16: its bits, converted by LOAD and STORE)
    TYPES = {dt.bool_: "_Bool", dt.uint8: "unsigned char", dt.int8: "signed char",
             dt.int16: "short", dt.int32: "int", dt.int64: "long long", dt.float32: "float",
             dt.float64: "double", dt.bfloat16: "uint16_t"}
    # the float types computed in float, each result rounded to the type's own precision (as
    # PyTorch's CPU kernels do): the function rounding a float expression
    ROUND = {dt.bfloat16: "lt_bf16r"}
    # the types whose storage is not converted to and from float by the language itself
    LOAD = {dt.bfloat16: "lt_bf2f"}
    STORE = {dt.bfloat16: "lt_f2bf"}
    EXPR = EXPR
    ACC_START = ACC_START
    ACC_UPDATE = ACC_UPDATE

    def __init__(self, caps: Capabilities | None = None):
        self.caps = caps if caps is not None else Capabilities()

    # ------------------------------------------------------------------ types and values
    def type_name(self, d: dt.DType) -> str:
        """The storage type of d."""
        t = self.TYPES.get(d)
        if t is None:
            raise TypeError(f"the {self.name} renderer has no type for {d!r}")
        return t

    def compute_type(self, d: dt.DType) -> str:
        """The type values of d are computed in (the rounded float types: float)."""
        return "float" if d in self.ROUND else self.type_name(d)

    def param_decl(self, p: Param) -> str:
        return f"{'' if p.output else 'const '}{self.type_name(p.dtype)}* restrict {p.name}"

    def signature(self, fname: str, params: list[Param]) -> str:
        """A kernel function's declaration, without its body."""
        return f"void {fname}({', '.join(self.param_decl(p) for p in params)})"

    def cast(self, v: str, src: dt.DType, dst: dt.DType) -> str:
        if dst in self.ROUND:   # (to bfloat16: a double or an integer is rounded to float first)
            return f"{self.ROUND[dst]}({v})"
        if dst == dt.bool_:
            return f"({v} != 0)"
        return f"({self.type_name(dst)})({v})"

    def cond(self, conds) -> str:
        parts = []
        for e, lo, hi in conds:
            r = e.render()
            parts.append(f"({lo} <= {r} && {r} < {hi})")
        return " && ".join(parts) or "1"

    def expr(self, v: Val, pname) -> str:
        """The expression computing v (its sources named as their SSA values)."""
        if v.kind == "const":
            return render_const(v.arg, v.dtype)
        if v.kind == "load":
            p, idx, conds = v.arg
            load = f"{pname(p)}[{idx.render()}]"
            if v.dtype in self.LOAD:
                load = f"{self.LOAD[v.dtype]}({load})"
            return f"(({self.cond(conds)}) ? {load} : 0)" if conds else load
        if v.kind == "cond":
            return self.cond(v.arg)
        if v.kind == "ref":  # a value computed earlier in the same kernel (row-fused kernels)
            return v.arg
        if v.op is Op.CAST:
            return self.cast(v.srcs[0].name, v.srcs[0].dtype, v.dtype)
        operand = v.srcs[-1].dtype  # WHERE: the branches' dtype; otherwise all srcs agree
        expr = self.EXPR[v.op](self, operand, *(s.name for s in v.srcs))
        # half and bfloat16 are computed in float: round every result, as each op does in
        # PyTorch
        return f"{self.ROUND[v.dtype]}({expr})" if v.dtype in self.ROUND else expr

    def statements(self, k: Kernel, pname, levels) -> list[str]:
        """One declaration per value of k whose level is in `levels` (0: outer, 1: reduce
        body, 2: after the reduction), sources first; the accumulator is declared apart."""
        return [f"{self.compute_type(v.dtype)} {v.name} = {self.expr(v, pname)};"
                for v in k.vals if v.kind != "acc" and k.level[id(v)] in levels]

    def store(self, k: Kernel, v: str) -> str:
        """The value v converted to the storage of k's output."""
        d = k.params[0].dtype
        return f"{self.STORE[d]}({v})" if d in self.STORE else v

    # ------------------------------------------------------------------ reductions
    def red_init(self, k: Kernel) -> str:
        """The accumulator's start value (argmax/argmin: the running best's)."""
        d = k.red_val.dtype if k.red_op in (Op.ARGMAX, Op.ARGMIN) else k.acc.dtype
        start = self.ACC_START[k.red_op]
        if start not in ("lowest", "highest"):
            return start
        lowest = start == "lowest"
        if d.kind == "f":
            return "-INFINITY" if lowest else "INFINITY"
        if d.kind == "b":
            return "0" if lowest else "1"
        info = np.iinfo(d.np)
        return f"{info.min if lowest else info.max}LL"

    def red_update(self, k: Kernel, v: str, acc: str = "acc") -> str:
        return self.ACC_UPDATE[k.red_op](k, v, acc)

    def argbest_start(self, k: Kernel) -> str:
        return "-INFINITY" if k.red_op is Op.ARGMAX else "INFINITY"

    def round_acc(self, k: Kernel) -> list[str]:
        """A half or bfloat16 sum or product is accumulated in float: rounded once, at the
        end, for the statements after it to see the rounded result."""
        if k.red_op in (Op.SUM, Op.PROD) and k.acc.dtype in self.ROUND:
            return [f"acc = {self.ROUND[k.acc.dtype]}(acc);"]
        return []

    def before_reduce_loop(self, k: Kernel, i: int, split: bool, nan_flag: bool) -> list[str]:
        """Hook: lines before reduce loop i (`split`: the workers share it)."""
        return []

    def reduce_lines(self, k: Kernel, pname, split: bool = False) -> list[str]:
        """The reduce loop of kernel k: accumulator, loop with the body's statements (level 1),
        then the statements after it (level 2). Variables o0.. are those of the enclosing
        loops. `split`: the dialect's workers share the (last) reduce loop, each with a
        partial accumulator (before_reduce_loop says how)."""
        lines: list[str] = []
        ind = 0

        def emit(s: str) -> None:
            lines.append("  " * ind + s)

        if k.red_op in (Op.ARGMAX, Op.ARGMIN):
            src = k.red_val.dtype
            emit(f"{self.compute_type(src)} best = "
                 f"{self.red_init(k) if src.kind != 'f' else self.argbest_start(k)};")
            emit("long long acc = 0;")
        else:
            emit(f"{self.compute_type(k.acc.dtype)} acc = {self.red_init(k)};")
        # max/min with NaN propagated through a flag (a select per element, which vectorizes;
        # a NaN wins, as in PyTorch)
        nan_flag = k.red_op in (Op.RMAX, Op.RMIN) and k.acc.dtype.kind == "f"
        if nan_flag:
            emit("int nan_seen = 0;")
        for i, n in enumerate(k.red_loops):
            for line in self.before_reduce_loop(k, i, split, nan_flag):
                emit(line)
            emit(f"for (long r{i} = 0; r{i} < {n}; r{i}++) {{")
            ind += 1
        for line in self.statements(k, pname, (1,)):
            emit(line)
        if nan_flag:
            v = k.red_val.name
            cmp = ">" if k.red_op is Op.RMAX else "<"
            emit(f"acc = {v} {cmp} acc ? {v} : acc; nan_seen |= {v} != {v};")
        else:
            emit(self.red_update(k, k.red_val.name))
        if k.red_op in (Op.CUMSUM, Op.CUMPROD):
            emit(f"out0[{k.store_index.render()}] = {self.store(k, 'acc')};")
        for _ in k.red_loops:
            ind -= 1
            emit("}")
        if nan_flag:
            emit("if (nan_seen) acc = NAN;")
        for line in self.round_acc(k):
            emit(line)
        for line in self.statements(k, pname, (2,)):
            emit(line)
        return lines

    # ------------------------------------------------------------------ the loop nest
    def nest_context(self, k: Kernel):
        """Hook: the dialect's decisions for k's loop nest, passed to before_loop and
        reduction (the core has none)."""
        return None

    def before_loop(self, k: Kernel, ctx, i: int) -> list[str]:
        """Hook: lines before output loop i."""
        return []

    def reduction(self, k: Kernel, pname, ctx) -> list[str]:
        """Hook: the reduction inside the output loops (the core's plain reduce loop)."""
        return self.reduce_lines(k, pname) if k.red_op is not None else []

    def render_kernel(self, k: Kernel, fname: str) -> str:
        pnames = {i: p.name for i, p in enumerate(k.params)}
        return self.render_nest(k, fname, pnames.__getitem__)

    def render_nest(self, k: Kernel, fname: str, pname) -> str:
        """k as one loop nest: output loops, the statements, the reduction, the store; then a
        scatter's second nest."""
        lines = [f"{self.signature(fname, k.params)} {{"]
        ind = 1

        def emit(s: str) -> None:
            lines.append("  " * ind + s)

        ctx = self.nest_context(k)
        for i, n in enumerate(k.loops):
            for line in self.before_loop(k, ctx, i):
                emit(line)
            emit(f"for (long o{i} = 0; o{i} < {n}; o{i}++) {{")
            ind += 1
        for line in self.statements(k, pname, (0,)):
            emit(line)
        for line in self.reduction(k, pname, ctx):
            emit(line)
        if k.red_op not in (Op.CUMSUM, Op.CUMPROD):
            emit(f"out0[{k.store_index.render()}] = {self.store(k, k.store_val.name)};")
        for _ in k.loops:
            ind -= 1
            emit("}")
        if k.scatter is not None:
            lines.extend("  " + line for line in self.scatter_lines(k.scatter, pname))
        lines.append("}")
        return "\n".join(lines)

    def scatter_lines(self, s: Kernel, pname) -> list[str]:
        """A scatter kernel's second loop nest: each src value stored (or folded in) at the
        position its index reads."""
        lines = []
        for i, n in enumerate(s.loops):
            lines.append("  " * i + f"for (long o{i} = 0; o{i} < {n}; o{i}++) {{")
        ind = "  " * len(s.loops)
        for v in s.vals:
            lines.append(f"{ind}{self.compute_type(v.dtype)} {v.name} = {self.expr(v, pname)};")
        at = f"out0[{s.store_index.render()}]"
        if s.store_mode is not None and s.params[0].dtype in self.LOAD:
            # folded in float and rounded, as the type's own arithmetic does
            folded = (f"{self.LOAD[s.params[0].dtype]}({at}) {_FOLD[s.store_mode][0]} "
                      f"{s.store_val.name}")
            lines.append(f"{ind}{at} = {self.store(s, folded)};")
        else:
            lines.append(f"{ind}{at} {_FOLD[s.store_mode]} {self.store(s, s.store_val.name)};")
        for i in reversed(range(len(s.loops))):
            lines.append("  " * i + "}")
        return lines

    # ------------------------------------------------------------------ modules
    def unlikely(self, cond: str) -> str:
        """Hook: the condition cond, marked unlikely where the dialect can."""
        return cond

    def declarations(self) -> str:
        """Hook: the dialect's declarations between the includes and the helpers."""
        return ""

    def prelude(self) -> str:
        """The includes, the dialect's declarations and the helpers kernels call."""
        return (INCLUDES + self.declarations()
                + HELPERS.replace("@b_is_zero@", self.unlikely("b == 0")))

    def header(self) -> str:
        return self.prelude()

    def render_module(self, functions: list[str]) -> str:
        return self.header() + "\n" + "\n\n".join(functions) + "\n"

    def render_driver(self, name: str, calls: list[tuple[int, list[int]]]) -> str:
        """A function `void name(void** p, void** f)` running a plan's kernels in order: call
        (i, slots) runs the kernel at address f[i] on those slots of the pointer array p.
        Kernels are called through their addresses, so they may live in other modules; every
        kernel parameter is a data pointer, passed alike whatever its pointee type."""
        body = "".join(f"  ((void (*)({', '.join(['void*'] * len(slots))}))f[{fn}])"
                       f"({', '.join(f'p[{i}]' for i in slots)});\n" for fn, slots in calls)
        return f"void {name}(void** p, void** f) {{\n{body}}}\n"
