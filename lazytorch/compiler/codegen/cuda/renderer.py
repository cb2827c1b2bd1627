"""The CUDA dialect over the C-style core: each kernel an `extern "C" __global__` function
started as a grid of blocks (launch() gives the dimensions), in CUDA C++ that includes no
header (prelude.py writes out what the kernels use).

How a kernel runs (plan()):
- elementwise kernels, and the fallback for any other: a grid-stride loop over the outputs,
  one thread per output, reductions and scans run by that thread (float sums in a cascade);
- reductions (sum, prod, max, min, argmax, argmin) over many elements: one block per output,
  its threads splitting the reduced elements and combining them with warp shuffles and
  shared memory;
  a reduction over a strided axis into many contiguous outputs (a column sum) stays one
  thread per output, whose reads a warp coalesces;
- row-fused kernels (softmax, layer norm, cross-entropy: compiler/rowfuse.py): one block
  per row, each stage's reduction combined across the block (rows.py);
- scatters: one block (a copy, then the scattered stores in order, as the CPU's);
- matrix products (the C dialect's GEMM pattern): tiles of the output per block through
  shared memory (gemm.py), on tensor cores where the operands are float16 or bfloat16 values
  and the GPU has them (mma.py)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ....ir import dtypes as dt
from ....ir.ops import Op
from ...kernel import Kernel, Param, Val
from ...renderer import Capabilities, Launch
from ...rowfuse import RowKernel
from ..c.reduce import is_vertical
from ..cstyle import CStyleRenderer
from . import gemm, mma, prelude, rows
from .reduce import (
    ARGBEST,
    COMBINE,
    NO_INDEX,
    block_argbest,
    block_combine,
    cascades,
    decompose,
    shared_name,
    thread_lines,
)

MAX_GRID = 1 << 16          # blocks of a grid-stride launch (each block loops over the rest)
BLOCK = 256                 # threads of an elementwise block
BLOCK_REDUCE_MIN = 32       # a reduction over fewer elements runs on one thread per output
COLUMN_OUTPUTS = 1024       # a column sum with this many outputs runs one thread per output
WIDE_BLOCK = 1024           # threads of a block reducing very long rows for few outputs


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _gemm(k) -> bool:
    return gemm.match(k) is not None


def _column_reduce(k) -> bool:
    return is_vertical(k)


@dataclass(frozen=True)
class Strategy:
    """How one kernel runs: `kind` (grid, block, rows, scatter, gemm, mma) and its launch (every
    dimension at least 1)."""

    kind: str
    launch: Launch


class CudaRenderer(CStyleRenderer):
    """CUDA C++ for nvcc (cubins for the GPU's architecture)."""

    name = "cuda"
    TYPES = {dt.bool_: "bool", dt.uint8: "unsigned char", dt.int8: "signed char",
             dt.int16: "short", dt.int32: "int", dt.int64: "long long", dt.float32: "float",
             dt.float64: "double", dt.float16: "lt_u16", dt.bfloat16: "lt_u16"}
    ROUND = {dt.bfloat16: "lt_bf16r", dt.float16: "lt_h16r"}
    LOAD = {dt.bfloat16: "lt_bf2f", dt.float16: "lt_h2f"}
    STORE = {dt.bfloat16: "lt_f2bf", dt.float16: "lt_f2h"}

    @staticmethod
    def capabilities(arch: int = 90) -> Capabilities:
        """What this renderer offers the scheduler for a GPU of compute capability `arch`
        (90: sm_90; the same for every architecture CUDA 13 compiles for, sm_75 up: whether a
        half product runs on tensor cores, sm_80 up, is the renderer's choice per kernel, with
        the same launch). Threads is 1: a kernel's parallelism is its launch."""
        return Capabilities(threads=1, vector_bytes=16, max_block_threads=1024,
                            shared_memory=48 * 1024, gemm=_gemm, column_reduce=_column_reduce,
                            row_kernels=True)

    def __init__(self, caps: Capabilities | None = None, arch: int = 90):
        super().__init__(caps if caps is not None else self.capabilities(arch))
        self.arch = arch

    # ------------------------------------------------------------------ types and values
    def param_decl(self, p: Param) -> str:
        return f"{'' if p.output else 'const '}{self.type_name(p.dtype)}* __restrict__ {p.name}"

    def kernel_signature(self, fname: str, params: list[Param], block: int) -> str:
        """A kernel's declaration, for blocks of at most `block` threads."""
        return (f'extern "C" __global__ void __launch_bounds__({block}) '
                f"{fname}({', '.join(self.param_decl(p) for p in params)})")

    def cast(self, v: str, src: dt.DType, dst: dt.DType) -> str:
        # to float16 from a double or an integer: rounded once, from the double (as the
        # CPU's _Float16 conversion); an integer converts to double exactly below 2^53
        if dst is dt.float16 and src not in self.ROUND and src != dt.float32:
            return f"lt_h16r((double)({v}))"
        return super().cast(v, src, dst)

    def expr(self, v: Val, pname) -> str:
        if v.kind == "ref":   # a row kernel's saved value: by the thread's column count q
            return v.arg.replace("[o1]", "[q]")
        return super().expr(v, pname)

    # ------------------------------------------------------------------ strategies
    def plan(self, k) -> Strategy:
        """How kernel k runs (the kind of its code and its launch): kind "mma" is a product
        on tensor cores, with gemm's launch."""
        if isinstance(k, RowKernel):
            b = rows.block_size(k)
            return Strategy("rows", Launch((min(k.rows, MAX_GRID), 1, 1), (b, 1, 1)))
        if k.scatter is not None:
            b = min(1024, max(32, _pow2(max(math.prod(k.loops), math.prod(k.scatter.loops)))))
            return Strategy("scatter", Launch((1, 1, 1), (b, 1, 1)))
        spec = gemm.match(k)
        if spec is not None:
            kind = "mma" if mma.operand_type(k, spec, self.arch) is not None else "gemm"
            return Strategy(kind, gemm.launch(spec))
        nout = math.prod(k.loops)
        red = math.prod(k.red_loops)
        pairs = k.red_op in ARGBEST and len(k.red_loops) == 1
        if (k.red_op in COMBINE or pairs) and red >= BLOCK_REDUCE_MIN and not (
                is_vertical(k) and nout >= COLUMN_OUTPUTS):
            b = min(BLOCK, max(32, _pow2(red)))
            if nout < 64 and red >= 1 << 16:
                b = WIDE_BLOCK
            return Strategy("block", Launch((max(1, min(nout, MAX_GRID)), 1, 1), (b, 1, 1)))
        b = min(BLOCK, max(32, _pow2(nout)))
        return Strategy("grid", Launch((max(1, min(-(-nout // b), MAX_GRID)), 1, 1), (b, 1, 1)))

    def launch(self, k) -> Launch:
        return self.plan(k).launch

    def render_kernel(self, k, fname: str) -> str:
        pnames = {i: p.name for i, p in enumerate(k.params)}
        pname = pnames.__getitem__
        plan = self.plan(k)
        block = plan.launch.block[0] * plan.launch.block[1] * plan.launch.block[2]
        if plan.kind == "rows":
            return rows.render_row(self, k, fname, pname, block)
        if plan.kind == "gemm":
            return gemm.render(self, k, gemm.match(k), fname, pname)
        if plan.kind == "mma":
            spec = gemm.match(k)
            return mma.render(self, k, spec, mma.operand_type(k, spec, self.arch), fname, pname)
        if plan.kind == "scatter":
            return self.render_scatter(k, fname, pname, block)
        if plan.kind == "block":
            return self.render_block(k, fname, pname, block)
        return self.render_grid(k, fname, pname, block)

    def _outputs(self, k: Kernel, var: str) -> list[str]:
        """Declarations of k's output loop variables from the flat output index `var`."""
        return decompose(var, [f"o{i}" for i in range(len(k.loops))], k.loops)

    def render_grid(self, k: Kernel, fname: str, pname, block: int) -> str:
        """One thread per output in a grid-stride loop; its reduction or scan in the thread."""
        n = math.prod(k.loops)
        it = "int" if n < 1 << 30 else "long long"
        lines = [f"{self.kernel_signature(fname, k.params, block)} {{",
                 f"  for ({it} gi = ({it})blockIdx.x * blockDim.x + threadIdx.x; gi < {n}; "
                 f"gi += ({it})gridDim.x * blockDim.x) {{"]
        body = self._outputs(k, "gi") + self.statements(k, pname, (0,))
        if k.red_op is not None:
            body += self.reduce_lines(k, pname)
        if k.red_op not in (Op.CUMSUM, Op.CUMPROD):
            body.append(f"out0[{k.store_index.render()}] = {self.store(k, k.store_val.name)};")
        lines += ["    " + s for s in body]
        lines += ["  }", "}"]
        return "\n".join(lines)

    def reduce_lines(self, k: Kernel, pname, split: bool = False) -> list[str]:
        """A thread's whole reduction: float sums longer than a chunk in a cascade."""
        red = math.prod(k.red_loops)
        if not cascades(k) or red <= 32:
            return super().reduce_lines(k, pname, split)
        t = self.compute_type(k.acc.dtype)
        heads = [f"for (long r{i} = 0; r{i} < {n}; r{i}++) {{"
                 for i, n in enumerate(k.red_loops)]
        lines = [f"{t} acc = 0;"] + thread_lines(self, k, pname, heads, [], red)
        return lines + self.round_acc(k) + self.statements(k, pname, (2,))

    def render_block(self, k: Kernel, fname: str, pname, block: int) -> str:
        """One block per output (a grid-stride loop over the outputs by block): its threads
        fold strided parts of the reduced elements, then the block combines them."""
        nout, red = math.prod(k.loops), math.prod(k.red_loops)
        heads = [f"for (long ri = threadIdx.x; ri < {red}; ri += {block}) {{"]
        inner = decompose("ri", [f"r{i}" for i in range(len(k.red_loops))], k.red_loops)
        body = self._outputs(k, "gb") + self.statements(k, pname, (0,))
        if k.red_op in ARGBEST:   # (value, index) pairs: the index starts at the first own
            t = self.compute_type(k.red_val.dtype)
            start = self.red_init(k) if k.red_val.dtype.kind != "f" else self.argbest_start(k)
            body.append(f"{t} best = {start};")
            body.append(f"long long acc = threadIdx.x < {red} ? (long long)threadIdx.x : "
                        f"{NO_INDEX};")
            body += thread_lines(self, k, pname, heads, inner, -(-red // block))
            body += block_argbest(t, k.red_op)
            shared = [f"__shared__ {t} {shared_name(t)}[32];",
                      "__shared__ long long lt_red_idx[32];"]
        else:
            t = self.compute_type(k.acc.dtype)
            body.append(f"{t} acc = {self.red_init(k)};")
            body += thread_lines(self, k, pname, heads, inner, -(-red // block))
            body += block_combine(t, k.red_op)
            body += self.round_acc(k)
            shared = [f"__shared__ {t} {shared_name(t)}[32];"]
        body.append("if (threadIdx.x == 0) {")
        body += ["  " + s for s in self.statements(k, pname, (2,))]
        body.append(f"  out0[{k.store_index.render()}] = {self.store(k, k.store_val.name)};")
        body.append("}")
        lines = [f"{self.kernel_signature(fname, k.params, block)} {{",
                 *("  " + s for s in shared),
                 f"  for (long gb = blockIdx.x; gb < {nout}; gb += gridDim.x) {{"]
        lines += ["    " + s for s in body]
        lines += ["  }", "}"]
        return "\n".join(lines)

    def render_scatter(self, k: Kernel, fname: str, pname, block: int) -> str:
        """One block: the base copied by all its threads, then (after a barrier) the
        scattered stores or folds by one thread, in the CPU's order."""
        n = math.prod(k.loops)
        lines = [f"{self.kernel_signature(fname, k.params, block)} {{",
                 f"  for (long gi = threadIdx.x; gi < {n}; gi += blockDim.x) {{"]
        body = self._outputs(k, "gi") + self.statements(k, pname, (0,))
        body.append(f"out0[{k.store_index.render()}] = {self.store(k, k.store_val.name)};")
        lines += ["    " + s for s in body]
        lines += ["  }", "  __syncthreads();", "  if (threadIdx.x == 0) {"]
        lines += ["    " + s for s in self.scatter_lines(k.scatter, pname)]
        lines += ["  }", "}"]
        return "\n".join(lines)

    # ------------------------------------------------------------------ modules
    def prelude(self) -> str:
        return prelude.prelude()

    def header(self) -> str:
        return self.prelude()

    def render_module(self, functions: list[str]) -> str:
        return self.prelude() + "\n" + "\n\n".join(functions) + "\n"

    def render_driver(self, name: str, calls: list[tuple[int, list[int]]]) -> None:
        """None: the host launches a CUDA plan's kernels one by one."""
        return None
