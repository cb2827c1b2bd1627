"""Matrix products in CUDA: a kernel the C dialect's GEMM pattern matches (a sum over one axis
of the product of two loads, compiler/codegen/c/gemm.py's match_gemm) runs as tiles of the
output, one block of 256 threads per tile and per batch entry: the block stages a tile x depth
panel of each operand in shared memory per step along the summed axis, and each thread
accumulates a sub x sub patch of the tile in registers (128 x 128 tiles by 8 x 8 patches for
products of a million outputs or more, 64 x 64 by 4 x 4 below); then each output runs the
kernel's own epilogue (bias, activation...). Operands are read through their index expressions, so
transposed and sliced views need no copy."""
from __future__ import annotations

import math

from ...kernel import Kernel
from ...renderer import Launch
from ..c.gemm import GemmSpec, match_gemm
from .reduce import decompose

THREADS = 256
# (outputs per block along each side, elements of the summed axis staged per step, outputs
# per thread along each side): (tile // sub) ** 2 == THREADS
SMALL = (64, 16, 4)
LARGE = (128, 8, 8)
LARGE_OUTPUTS = 1 << 20     # products with this many outputs (per batch entry) take LARGE
MAX_GRID_YZ = 65535


def tiles(spec: GemmSpec) -> tuple[int, int, int]:
    """(tile, depth, sub) of the product `spec`."""
    m = spec.m[1] if spec.m else 1
    n = spec.n[1] if spec.n else 1
    return LARGE if m * n >= LARGE_OUTPUTS else SMALL


def match(k) -> GemmSpec | None:
    """The GEMM kernel k computes, when this strategy runs it."""
    if getattr(k, "scatter", None) is not None or not isinstance(k, Kernel):
        return None
    spec = match_gemm(k)
    if spec is None:
        return None
    if -(-(spec.m[1] if spec.m else 1) // tiles(spec)[0]) > MAX_GRID_YZ:
        return None
    return spec


def launch(spec: GemmSpec) -> Launch:
    m = spec.m[1] if spec.m else 1
    n = spec.n[1] if spec.n else 1
    batch = math.prod(s for _, s in spec.batch)
    tile = tiles(spec)[0]
    return Launch((-(-n // tile), -(-m // tile), min(batch, MAX_GRID_YZ)), (THREADS, 1, 1))


def _panel(load, kvar: str, tile: int, depth: int) -> str:
    """Which element of a tile x depth panel thread slot `idx` stages: consecutive threads
    take consecutive addresses, along the summed axis where the operand is contiguous along
    it (a row-major A), else along the tile (so that a warp's reads coalesce)."""
    if load.arg[1].coef(kvar) == 1:
        return f"const int row = idx / {depth}, col = idx % {depth};"
    return f"const int row = idx % {tile}, col = idx / {tile};"


def render(r, k: Kernel, spec: GemmSpec, fname: str, pname) -> str:
    """Kernel k (matched as `spec`) as a tiled product for renderer r."""
    t = r.compute_type(spec.dtype)
    mvar, msize = spec.m if spec.m else ("lt_m", 1)
    nvar, nsize = spec.n if spec.n else ("lt_n", 1)
    kvar, ksize = spec.kvar, spec.k
    batch = math.prod(s for _, s in spec.batch)
    tile, depth, sub = tiles(spec)
    per = tile * depth // THREADS      # elements of each panel one thread stages
    lanes = tile // sub
    a, b = r.expr(spec.a, pname), r.expr(spec.b, pname)
    lines = [f"{r.kernel_signature(fname, k.params, THREADS)} {{",
             f"  __shared__ {t} As[{depth}][{tile}];",
             f"  __shared__ {t} Bs[{depth}][{tile}];",
             f"  const int tx = threadIdx.x % {lanes}, ty = threadIdx.x / {lanes};",
             f"  const long m0 = (long)blockIdx.y * {tile}, n0 = (long)blockIdx.x * {tile};",
             f"  for (long bz = blockIdx.z; bz < {batch}; bz += gridDim.z) {{"]
    body = decompose("bz", [v for v, _ in spec.batch], tuple(s for _, s in spec.batch))
    body.append(f"{t} c[{sub}][{sub}];")
    body.append(f"for (int i = 0; i < {sub}; i++) for (int j = 0; j < {sub}; j++) c[i][j] = 0;")
    ind = ""
    for var, size in spec.red_outer:
        body.append(f"{ind}for (long {var} = 0; {var} < {size}; {var}++) {{")
        ind += "  "
    body += [ind + s for s in [
        f"for (long k0 = 0; k0 < {ksize}; k0 += {depth}) {{",
        f"  for (int e = 0; e < {per}; e++) {{",
        f"    const int idx = threadIdx.x + e * {THREADS};",
        f"    {{ {_panel(spec.a, kvar, tile, depth)}",
        f"      const long {mvar} = m0 + row, {kvar} = k0 + col;",
        f"      As[col][row] = ({mvar} < {msize} && {kvar} < {ksize}) ? ({t})({a}) : ({t})0; }}",
        f"    {{ {_panel(spec.b, kvar, tile, depth)}",
        f"      const long {nvar} = n0 + row, {kvar} = k0 + col;",
        f"      Bs[col][row] = ({nvar} < {nsize} && {kvar} < {ksize}) ? ({t})({b}) : ({t})0; }}",
        "  }",
        "  __syncthreads();",
        f"  for (int kk = 0; kk < {depth}; kk++) {{",
        f"    {t} av[{sub}], bv[{sub}];",
        f"    for (int i = 0; i < {sub}; i++) av[i] = As[kk][ty + i * {lanes}];",
        f"    for (int j = 0; j < {sub}; j++) bv[j] = Bs[kk][tx + j * {lanes}];",
        f"    for (int i = 0; i < {sub}; i++) for (int j = 0; j < {sub}; j++) "
        "c[i][j] += av[i] * bv[j];",
        "  }",
        "  __syncthreads();",
        "}"]]
    for _ in spec.red_outer:
        ind = ind[:-2]
        body.append(f"{ind}}}")
    epilogue = r.statements(k, pname, (0, 2))
    epilogue.append(f"out0[{k.store_index.render()}] = {r.store(k, k.store_val.name)};")
    body += [f"for (int i = 0; i < {sub}; i++) for (int j = 0; j < {sub}; j++) {{",
             f"  const long {mvar} = m0 + ty + i * {lanes}, "
             f"{nvar} = n0 + tx + j * {lanes};",
             f"  if ({mvar} < {msize} && {nvar} < {nsize}) {{",
             f"    {t} acc = c[i][j];",
             *("    " + s for s in epilogue),
             "  }",
             "}"]
    lines += ["    " + s for s in body]
    lines += ["  }", "}"]
    return "\n".join(lines)
