"""torch.backends.cpu: what the CPU's vector units are, as PyTorch names them."""
from __future__ import annotations

import functools


@functools.cache
def get_cpu_capability() -> str:
    """"AVX512", "AVX2" or "DEFAULT" on x86 (from /proc/cpuinfo's flags); "DEFAULT" where
    the flags cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f
                          if line.startswith("flags")), [])
    except OSError:
        return "DEFAULT"
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= set(flags):
        return "AVX512"
    if {"avx2", "fma"} <= set(flags):
        return "AVX2"
    return "DEFAULT"
