"""torch.backends.mkl: lazytorch does not use MKL (its matrix products are generated C)."""
from __future__ import annotations


def is_available() -> bool:
    """False: no MKL here."""
    return False
