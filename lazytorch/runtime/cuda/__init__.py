"""The CUDA backend's runtime parts: pycuda reached lazily (driver: the device, its primary
context, PyTorch's messages where CUDA cannot run), the caching device allocator and pinned
host memory (allocator), kernels launched as prepared calls (runtime), nvcc's cubins through the
disk cache (nvcc) and the Compiler loading them (compiler). Importing this package imports no
pycuda; lazytorch/engine/cuda.py assembles the backend at the first CUDA tensor."""
