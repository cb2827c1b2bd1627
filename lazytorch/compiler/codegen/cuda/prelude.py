"""What every CUDA module starts with, written out: CUDA's headers are never included, so
pycuda never runs the preprocessor over a module. nvcc's own built-ins give the math
functions and the warp shuffles; this gives the integer types, the half and bfloat16
conversions (PTX instructions) and the helpers the kernels call (the C-style core's, as
device functions), among them the module's fault flag."""
from __future__ import annotations

from ..cstyle import HELPERS

# the types and conversions of the device (the host emulation in tests gives its own)
DEVICE = r"""typedef unsigned short lt_u16;
typedef unsigned int lt_u32;
#ifndef INFINITY
#define INFINITY __int_as_float(0x7f800000)
#endif
#ifndef NAN
#define NAN __int_as_float(0x7fffffff)
#endif
/* float16 as its bits: converted by the GPU's own instructions, rounded to nearest even */
static __device__ __forceinline__ float lt_h2f(lt_u16 h) {
  float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
static __device__ __forceinline__ lt_u16 lt_f2h(float f) {
  lt_u16 h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
static __device__ __forceinline__ float lt_h16r(float f) { return lt_h2f(lt_f2h(f)); }
static __device__ __forceinline__ float lt_h16r(double d) {
  lt_u16 h; asm("cvt.rn.f16.f64 %0, %1;" : "=h"(h) : "d"(d)); return lt_h2f(h); }
"""

# a warp's 16 x 8 x 16 product on tensor cores, c += a b (mma.py gives the fragment layouts),
# for GPUs of compute capability 8.0 up (the host emulation in tests gives its own)
MMA = r"""#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
static __device__ __forceinline__ void lt_mma_16816_@T@(float c[4], const lt_u32 a[4],
                                                        const lt_u32 b[2]) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.@T@.@T@.f32 {%0,%1,%2,%3}, "
               "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1])); }
#endif
"""


def helpers() -> str:
    """The C-style core's helpers as device functions (portable C++: the host emulation in
    tests compiles the same text), the fault flag a device variable of the module."""
    return (HELPERS.replace("@b_is_zero@", "b == 0")
            .replace("static inline", "static __device__ __forceinline__")
            .replace("int lt_fault;", "__device__ int lt_fault;")
            .replace("uint16_t", "lt_u16").replace("uint32_t", "lt_u32"))


def prelude() -> str:
    """The text every CUDA module starts with."""
    return DEVICE + MMA.replace("@T@", "f16") + MMA.replace("@T@", "bf16") + helpers()
