"""The CUDA dialect: CudaRenderer (kernels as CUDA C++ for nvcc, launched as grids of
blocks)."""
from .renderer import CudaRenderer

__all__ = ["CudaRenderer"]
