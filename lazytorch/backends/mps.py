"""torch.backends.mps: no Metal device in this build."""
from __future__ import annotations


def is_available() -> bool:
    """False: this build has no MPS device."""
    return False


def is_built() -> bool:
    """False: this build was not made with MPS."""
    return False


def is_macos_or_newer(major: int, minor: int) -> bool:
    """False: no MPS device to ask."""
    return False
