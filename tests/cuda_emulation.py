"""The CUDA renderer's kernels run on the host: the generated text, as it is, compiled as C++
with a small emulation of CUDA's execution model, and called through ctypes.

The emulation: the kernel and device qualifiers are empty, `__shared__` variables are static
(the blocks of a grid run one after another), the CUDA threads of a block are fibers of one
host thread (ucontext) switched round-robin at barriers: `__syncthreads()` waits for the
block's threads and `__shfl_down_sync` exchanges values through a barrier of the warp's 32
threads. Kernels without either run their threads one after another. The half
conversions, which the device does with PTX instructions, use the host's _Float16; a warp's
tensor-core product (mma.sync, the prelude's lt_mma_16816_f16/bf16) is computed on the host
from the fragments its 32 lanes exchange through the warp's barrier. Everything
else (the helpers, the fault flag, every kernel) is the CUDA module's own text."""
from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess

import numpy as np

from lazytorch.compiler.codegen.cuda import CudaRenderer
from lazytorch.compiler.codegen.cuda.prelude import helpers
from lazytorch.ir.ops import Op
from lazytorch.runtime import memory

HOST = r"""
#include <math.h>
#include <string.h>
#include <ucontext.h>
#include <functional>
#include <vector>
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(n)
struct lt_dim3 { unsigned x = 0, y = 0, z = 0; };
static lt_dim3 threadIdx, blockIdx, blockDim, gridDim;
typedef unsigned short lt_u16;
typedef unsigned int lt_u32;
/* the CUDA threads of a block are fibers of one host thread, switched at barriers */
struct lt_fiber { ucontext_t ctx; bool done; unsigned t; std::vector<char> stack; };
static ucontext_t lt_main;
static lt_fiber* lt_cur;
static std::function<void()> lt_kernel;
struct lt_bar { unsigned count, gen, size; };
static lt_bar lt_block_bar, lt_warp_bar[32];
static unsigned long long lt_slot[1024];
static void lt_arrive(lt_bar& b) {
  unsigned g = b.gen;
  if (++b.count == b.size) { b.count = 0; b.gen++; return; }
  while (b.gen == g) swapcontext(&lt_cur->ctx, &lt_main); }
static inline void __syncthreads() { lt_arrive(lt_block_bar); }
template <class T> static T __shfl_down_sync(unsigned, T v, int off) {
  unsigned lane = threadIdx.x & 31;
  memcpy(&lt_slot[threadIdx.x], &v, sizeof(T)); lt_arrive(lt_warp_bar[threadIdx.x >> 5]);
  T r = v; if (lane + off < 32) memcpy(&r, &lt_slot[threadIdx.x + off], sizeof(T));
  lt_arrive(lt_warp_bar[threadIdx.x >> 5]); return r; }
static inline float __int_as_float(int i) { float f; memcpy(&f, &i, 4); return f; }
static inline float lt_h2f(lt_u16 h) { _Float16 f; memcpy(&f, &h, 2); return (float)f; }
static inline lt_u16 lt_f2h(float f) { _Float16 h = (_Float16)f; lt_u16 u; memcpy(&u, &h, 2);
  return u; }
static inline float lt_h16r(float f) { return (float)(_Float16)f; }
static inline float lt_h16r(double d) { return (float)(_Float16)d; }
/* a warp's mma.sync.m16n8k16 (the prelude's lt_mma_16816_*): each lane posts its fragments,
   then (after the warp's barrier) computes its own four outputs from the whole 16 x 16 A and
   16 x 8 B, read back through the PTX ISA's fragment layouts (lane = 4 g + t): A[r][k] is
   half k % 2 of word (r / 8) + 2 (k / 8) of lane 4 (r % 8) + (k % 8) / 2; B[k][n] half k % 2
   of word k / 8 of lane 4 n + (k % 8) / 2; C[r][n] element 2 (r / 8) + n % 2 of lane
   4 (r % 8) + (n % 8) / 2 */
static lt_u32 lt_frag[1024][6];
static inline float lt_half_of(lt_u32 w, int k, bool bf) {
  lt_u16 h = (lt_u16)(w >> (16 * (k & 1)));
  if (!bf) return lt_h2f(h);
  lt_u32 u = (lt_u32)h << 16; float f; memcpy(&f, &u, 4); return f; }
static void lt_mma_16816(float c[4], const lt_u32 a[4], const lt_u32 b[2], bool bf) {
  unsigned w0 = threadIdx.x & ~31u, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  memcpy(lt_frag[threadIdx.x], a, 16); memcpy(lt_frag[threadIdx.x] + 4, b, 8);
  lt_arrive(lt_warp_bar[threadIdx.x >> 5]);
  for (int e = 0; e < 4; e++) {
    int r = g + 8 * (e >> 1), n = 2 * t + (e & 1);
    float s = 0;
    for (int k = 0; k < 16; k++) {
      float x = lt_half_of(lt_frag[w0 + 4 * (r % 8) + (k % 8) / 2][r / 8 + 2 * (k / 8)], k, bf);
      float y = lt_half_of(lt_frag[w0 + 4 * n + (k % 8) / 2][4 + k / 8], k, bf);
      s += x * y; }
    c[e] += s; }
  lt_arrive(lt_warp_bar[threadIdx.x >> 5]); }
static void lt_mma_16816_f16(float c[4], const lt_u32 a[4], const lt_u32 b[2]) {
  lt_mma_16816(c, a, b, false); }
static void lt_mma_16816_bf16(float c[4], const lt_u32 a[4], const lt_u32 b[2]) {
  lt_mma_16816(c, a, b, true); }
static void lt_entry() { lt_kernel(); lt_cur->done = true; }
template <class F> static void lt_run(F kernel, unsigned gx, unsigned gy, unsigned gz,
                                      unsigned bx, bool sync) {
  gridDim = {gx, gy, gz}; blockDim = {bx, 1, 1};
  if (!sync) {   /* no barrier, no shuffle: the threads run one after another */
    for (unsigned z = 0; z < gz; z++) for (unsigned y = 0; y < gy; y++)
      for (unsigned x = 0; x < gx; x++) for (unsigned t = 0; t < bx; t++) {
        blockIdx = {x, y, z}; threadIdx = {t, 0, 0}; kernel(); }
    return;
  }
  lt_kernel = kernel;
  std::vector<lt_fiber> fs(bx);
  for (unsigned t = 0; t < bx; t++) { fs[t].t = t; fs[t].stack.resize(1 << 17); }
  for (unsigned z = 0; z < gz; z++) for (unsigned y = 0; y < gy; y++)
    for (unsigned x = 0; x < gx; x++) {
      blockIdx = {x, y, z};
      lt_block_bar = {0, 0, bx};
      for (unsigned w = 0; w < 32; w++) lt_warp_bar[w] = {0, 0, 32};
      for (auto& f : fs) {
        f.done = false; getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack.data(); f.ctx.uc_stack.ss_size = f.stack.size();
        f.ctx.uc_link = &lt_main; makecontext(&f.ctx, lt_entry, 0); }
      for (unsigned left = bx; left;) {
        left = 0;
        for (auto& f : fs) if (!f.done) {
          lt_cur = &f; threadIdx = {f.t, 0, 0}; swapcontext(&lt_main, &f.ctx);
          left += !f.done; }
      }
    }
}
"""


def _launcher(r: CudaRenderer, k, name: str) -> str:
    """A C function `run_<name>(void** args)` launching kernel `name` as r.launch(k) says."""
    launch = r.launch(k)
    args = ", ".join(f"({'' if p.output else 'const '}{r.type_name(p.dtype)}*)a[{i}]"
                     for i, p in enumerate(k.params))
    (gx, gy, gz), (bx, by, bz) = launch.grid, launch.block
    assert by == bz == 1 and bx % 32 == 0, launch
    sync = "__syncthreads" in k.code or "__shfl" in k.code
    return (f'extern "C" void run_{name}(void** a) {{ lt_run([=] {{ {name}({args}); }}, '
            f"{gx}, {gy}, {gz}, {bx}, {'true' if sync else 'false'}); }}\n")


def build(kernels, folder) -> tuple[ctypes.CDLL, list[str]]:
    """The kernels compiled for the host with the emulation (cached in `folder` by source);
    the library and the kernels' function names."""
    r = CudaRenderer()
    names = [f"k{i}" for i in range(len(kernels))]
    src = HOST + helpers() + "\n".join(k.named(n) for k, n in zip(kernels, names)) + "\n"
    src += "".join(_launcher(r, k, n) for k, n in zip(kernels, names))
    digest = hashlib.sha256(src.encode()).hexdigest()[:20]
    so = os.path.join(folder, f"emu-{digest}.so")
    if not os.path.exists(so):
        cpp = os.path.join(folder, f"emu-{digest}.cpp")
        with open(cpp, "w") as f:
            f.write(src)
        tmp = so + f".{os.getpid()}.tmp"
        out = subprocess.run(["g++", "-std=c++20", "-O1", "-fPIC", "-shared", "-w",
                              "-o", tmp, cpp], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-4000:]
        os.replace(tmp, so)
    return ctypes.CDLL(so), names


def run(kernels, lib, names) -> dict:
    """Run the scheduled kernels in order on the host: every kernel's output array by node.
    Outputs start filled with a byte pattern, so an element no thread writes shows."""
    arrays: dict = {}

    def value(n):
        if n in arrays:
            return arrays[n]
        if n.op is Op.BUFFER:
            return np.ascontiguousarray(memory.host_data(n))
        raise KeyError(n)

    for k, name in zip(kernels, names):
        out = np.frombuffer(b"\xab" * (k.output.numel * k.output.dtype.itemsize),
                            k.output.dtype.np).reshape(k.output.shape).copy()
        ins = [value(n) for n in k.inputs]
        ptrs = (ctypes.c_void_p * (1 + len(ins)))(out.ctypes.data,
                                                   *(a.ctypes.data for a in ins))
        getattr(lib, f"run_{name}")(ptrs)
        arrays[k.output] = out
    return arrays


def fault(lib) -> int:
    """The emulated module's fault flag (cleared)."""
    flag = ctypes.c_int.in_dll(lib, "lt_fault")
    v, flag.value = flag.value, 0
    return v
