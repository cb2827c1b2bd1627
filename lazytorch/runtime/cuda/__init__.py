"""The CUDA backend's runtime side: nvcc and the cubin cache (nvcc.py), the Compiler
(compiler.py)."""
