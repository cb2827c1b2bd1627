"""Matrix products of float16 or bfloat16 operands on tensor cores (GPUs of compute capability
8.0 and later): the GEMM kernels gemm.py matches whose two operands are float16 or bfloat16
values widened to float32 (a half product is summed in float32, as PyTorch does by default:
its operands reach the product kernel as float32 copies of half values, so narrowing them back
is exact).

The same blocks as gemm.py (a tile x tile patch of the output per block of 256 threads and per
batch entry, so the same launch): per step along the summed axis the block stages a
tile x DEPTH panel of each operand in shared memory, narrowed to pairs of half values (one
32-bit word per two consecutive elements of the summed axis, read through the operands' index
expressions: transposed and strided views need no copy; the next panel is read into registers
while the current one is multiplied), and each of its 8 warps (2 x 4 over the tile) multiplies
its part 16 x 8 x 16 at a time with `mma.sync.m16n8k16` (the prelude's lt_mma_16816_f16 /
lt_mma_16816_bf16) into float32 accumulators. Tails along every axis are
zero-filled when staged and masked when stored; each output then runs the kernel's own
epilogue (bias, activation, the cast to the output's type).

Fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"):
lane = 4 * g + t; A (16 x 16, row-major) word r of a lane holds A[g + 8 * (r & 1)][2 * t +
8 * (r >> 1) + {0, 1}]; B (16 x 8, column-major) word r holds B[2 * t + 8 * r + {0, 1}][g];
C (16 x 8, float32) element e holds C[g + 8 * (e >> 1)][2 * t + (e & 1)]."""
from __future__ import annotations

import math

from ....ir import dtypes as dt
from ....ir.ops import Op
from ...kernel import Kernel
from ..c.gemm import GemmSpec
from . import gemm
from .reduce import decompose

MIN_ARCH = 80               # mma.sync.m16n8k16 with float16 and bfloat16 operands: sm_80 up
DEPTH = 32                  # elements of the summed axis staged per step
WARPS = (2, 4)              # warps of a block along the tile's rows and columns
HALVES = (dt.float16, dt.bfloat16)
# the accumulators stay in registers only where every loop indexing them is unrolled
UNROLL = "#pragma unroll"
FUNCTION = {dt.float16: "lt_mma_16816_f16", dt.bfloat16: "lt_mma_16816_bf16"}


def _half_source(k: Kernel, load) -> dt.DType | None:
    """The half type whose values the operand `load` reads, if its buffer holds float32
    values widened from a half type (a CAST from float16 or bfloat16)."""
    n = k.inputs[load.arg[0] - 1]
    if n.op is Op.CAST and n.dtype is dt.float32 and n.srcs[0].dtype in HALVES:
        return n.srcs[0].dtype
    return None


def operand_type(k: Kernel, spec: GemmSpec, arch: int) -> dt.DType | None:
    """The half type (float16 or bfloat16) the product `spec` of kernel k runs in on tensor
    cores of a GPU of compute capability `arch`; None where it runs on FMA (arch below 8.0,
    float32 or float64 operands, or operands of two different types)."""
    if arch < MIN_ARCH or spec.dtype is not dt.float32:
        return None
    a, b = _half_source(k, spec.a), _half_source(k, spec.b)
    return a if a is not None and a is b else None


def _position(load, kvar: str, tile: int) -> str:
    """Which word (row, kp) of a tile x DEPTH panel thread slot `idx` stages: consecutive
    threads read consecutive addresses, along the summed axis where the operand is contiguous
    along it, else along the tile."""
    words = DEPTH // 2
    if load.arg[1].coef(kvar) == 1:
        return f"const int row = idx / {words}, kp = idx % {words};"
    return f"const int row = idx % {tile}, kp = idx / {tile};"


def _fetch(r, load, regs: str, origin: str, k0: str, var: str, size: int, kvar: str,
           ksize: int, conv: str, tile: int, pname) -> list[str]:
    """Lines reading this thread's words of the panel of operand `load` at `k0` into registers
    `regs`: two half values each (consecutive along the summed axis), zero past the ends."""
    per = tile * DEPTH // 2 // gemm.THREADS
    x = r.expr(load, pname)
    return [UNROLL,
            f"for (int e = 0; e < {per}; e++) {{",
            f"  const int idx = threadIdx.x + e * {gemm.THREADS};",
            f"  {_position(load, kvar, tile)}",
            f"  const long {var} = {origin} + row, kb = {k0} + 2 * kp;",
            "  float lo = 0, hi = 0;",
            f"  if ({var} < {size}) {{",
            f"    if (kb < {ksize}) {{ const long {kvar} = kb; lo = {x}; }}",
            f"    if (kb + 1 < {ksize}) {{ const long {kvar} = kb + 1; hi = {x}; }}",
            "  }",
            f"  {regs}[e] = (lt_u32){conv}(lo) | ((lt_u32){conv}(hi) << 16);",
            "}"]


def _store(load, regs: str, name: str, kvar: str, tile: int) -> list[str]:
    """Lines storing registers `regs` (as _fetch filled them) into the shared panel `name`."""
    per = tile * DEPTH // 2 // gemm.THREADS
    return [UNROLL,
            f"for (int e = 0; e < {per}; e++) {{",
            f"  const int idx = threadIdx.x + e * {gemm.THREADS};",
            f"  {_position(load, kvar, tile)}",
            f"  {name}[row][kp] = {regs}[e];",
            "}"]


def render(r, k: Kernel, spec: GemmSpec, half: dt.DType, fname: str, pname) -> str:
    """Kernel k (matched as `spec`, its operands of type `half`) on tensor cores for
    renderer r."""
    mvar, msize = spec.m if spec.m else ("lt_m", 1)
    nvar, nsize = spec.n if spec.n else ("lt_n", 1)
    kvar, ksize = spec.kvar, spec.k
    batch = math.prod(s for _, s in spec.batch)
    tile = gemm.tiles(spec)[0]
    wm, wn = tile // WARPS[0], tile // WARPS[1]     # each warp's part of the tile
    mi, ni = wm // 16, wn // 8                      # its 16 x 8 fragments
    words = DEPTH // 2 + 4      # a row's words, padded: a warp's fragment reads hit 32 banks
    conv, mma = r.STORE[half], FUNCTION[half]
    lines = [f"{r.kernel_signature(fname, k.params, gemm.THREADS)} {{",
             f"  __shared__ lt_u32 As[{tile}][{words}];",
             f"  __shared__ lt_u32 Bs[{tile}][{words}];",
             "  const int warp = threadIdx.x / 32, g = (threadIdx.x % 32) / 4, "
             "t = threadIdx.x % 4;",
             f"  const int wm0 = (warp / {WARPS[1]}) * {wm}, wn0 = (warp % {WARPS[1]}) * {wn};",
             f"  const long m0 = (long)blockIdx.y * {tile}, n0 = (long)blockIdx.x * {tile};",
             f"  for (long bz = blockIdx.z; bz < {batch}; bz += gridDim.z) {{"]
    body = decompose("bz", [v for v, _ in spec.batch], tuple(s for _, s in spec.batch))
    body.append(f"float c[{mi}][{ni}][4];")
    body += [UNROLL, f"for (int i = 0; i < {mi}; i++) for (int j = 0; j < {ni}; j++) "
             "for (int e = 0; e < 4; e++) c[i][j][e] = 0;"]
    ind = ""
    for var, size in spec.red_outer:
        body.append(f"{ind}for (long {var} = 0; {var} < {size}; {var}++) {{")
        ind += "  "
    per = tile * DEPTH // 2 // gemm.THREADS

    def fetch(k0: str) -> list[str]:
        return (_fetch(r, spec.a, "pa", "m0", k0, mvar, msize, kvar, ksize, conv, tile, pname)
                + _fetch(r, spec.b, "pb", "n0", k0, nvar, nsize, kvar, ksize, conv, tile,
                         pname))
    # the next panel is read from global memory into registers while the warps multiply
    # the one in shared memory
    step = [f"lt_u32 pa[{per}], pb[{per}];",
            *fetch("0"),
            f"for (long k0 = 0; k0 < {ksize}; k0 += {DEPTH}) {{",
            *("  " + x for x in _store(spec.a, "pa", "As", kvar, tile)),
            *("  " + x for x in _store(spec.b, "pb", "Bs", kvar, tile)),
            "  __syncthreads();",
            f"  if (k0 + {DEPTH} < {ksize}) {{",
            *("    " + x for x in fetch(f"(k0 + {DEPTH})")),
            "  }",
            "  " + UNROLL,
            f"  for (int kw = 0; kw < {DEPTH // 2}; kw += 8) {{",
            f"    lt_u32 af[{mi}][4], bf[{ni}][2];",
            "    " + UNROLL,
            f"    for (int i = 0; i < {mi}; i++) {{",
            "      const int ra = wm0 + i * 16 + g;",
            "      af[i][0] = As[ra][kw + t]; af[i][1] = As[ra + 8][kw + t];",
            "      af[i][2] = As[ra][kw + t + 4]; af[i][3] = As[ra + 8][kw + t + 4];",
            "    }",
            "    " + UNROLL,
            f"    for (int j = 0; j < {ni}; j++) {{",
            "      const int rb = wn0 + j * 8 + g;",
            "      bf[j][0] = Bs[rb][kw + t]; bf[j][1] = Bs[rb][kw + t + 4];",
            "    }",
            "    " + UNROLL,
            f"    for (int i = 0; i < {mi}; i++) for (int j = 0; j < {ni}; j++) "
            f"{mma}(c[i][j], af[i], bf[j]);",
            "  }",
            "  __syncthreads();",
            "}"]
    body += [ind + s for s in step]
    for _ in spec.red_outer:
        ind = ind[:-2]
        body.append(f"{ind}}}")
    epilogue = r.statements(k, pname, (0, 2))
    epilogue.append(f"out0[{k.store_index.render()}] = {r.store(k, k.store_val.name)};")
    body += [UNROLL, f"for (int i = 0; i < {mi}; i++) for (int j = 0; j < {ni}; j++) "
             "for (int e = 0; e < 4; e++) {",
             f"  const long {mvar} = m0 + wm0 + i * 16 + g + (e >> 1) * 8, "
             f"{nvar} = n0 + wn0 + j * 8 + 2 * t + (e & 1);",
             f"  if ({mvar} < {msize} && {nvar} < {nsize}) {{",
             "    float acc = c[i][j][e];",
             *("    " + s for s in epilogue),
             "  }",
             "}"]
    lines += ["    " + s for s in body]
    lines += ["  }", "}"]
    return "\n".join(lines)
