"""torch.backends.cuda: whether the CUDA backend can be used (pycuda installed); the matmul and
attention flags are kept.

`matmul.allow_tf32` is the float32 matmul precision seen from the CUDA side, as in PyTorch:
setting it to True makes `torch.get_float32_matmul_precision()` "high", False "highest".
"""
from __future__ import annotations

import contextlib
from typing import Iterator

from ..frontend import startup


def is_built() -> bool:
    """Whether CUDA support is installed (pycuda can be found; nothing is imported)."""
    from ..runtime.cuda import driver
    return driver.installed()


class _Matmul:
    """torch.backends.cuda.matmul: cuBLAS's precision switches (recorded, change nothing)."""

    allow_fp16_reduced_precision_reduction = True
    allow_bf16_reduced_precision_reduction = True
    allow_fp16_accumulation = False

    @property
    def allow_tf32(self) -> bool:
        return startup.get_float32_matmul_precision() != "highest"

    @allow_tf32.setter
    def allow_tf32(self, value: bool) -> None:
        startup.set_float32_matmul_precision("high" if value else "highest")


matmul = _Matmul()

# scaled_dot_product_attention's kernel choices: flash, memory-efficient, math, cuDNN
_sdp = {"flash": True, "mem_efficient": True, "math": True, "cudnn": True}


def enable_flash_sdp(enabled: bool) -> None:
    _sdp["flash"] = bool(enabled)


def flash_sdp_enabled() -> bool:
    return _sdp["flash"]


def enable_mem_efficient_sdp(enabled: bool) -> None:
    _sdp["mem_efficient"] = bool(enabled)


def mem_efficient_sdp_enabled() -> bool:
    return _sdp["mem_efficient"]


def enable_math_sdp(enabled: bool) -> None:
    _sdp["math"] = bool(enabled)


def math_sdp_enabled() -> bool:
    return _sdp["math"]


def enable_cudnn_sdp(enabled: bool) -> None:
    _sdp["cudnn"] = bool(enabled)


def cudnn_sdp_enabled() -> bool:
    return _sdp["cudnn"]


def is_flash_attention_available() -> bool:
    """False: no CUDA device."""
    return False


@contextlib.contextmanager
def sdp_kernel(enable_flash: bool = True, enable_math: bool = True,
               enable_mem_efficient: bool = True, enable_cudnn: bool = True) -> Iterator[None]:
    """Set the attention kernel choices within the block, and restore them after."""
    old = dict(_sdp)
    _sdp.update(flash=enable_flash, math=enable_math, mem_efficient=enable_mem_efficient,
                cudnn=enable_cudnn)
    try:
        yield
    finally:
        _sdp.update(old)


def preferred_linalg_library(backend=None) -> str:
    """"default": there is no CUDA linear-algebra library to prefer."""
    return "default"
