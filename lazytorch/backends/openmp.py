"""torch.backends.openmp: lazytorch's compiled kernels use OpenMP threads."""
from __future__ import annotations


def is_available() -> bool:
    """True: the generated kernels are compiled with OpenMP (`torch.set_num_threads`)."""
    return True
