"""torch.accelerator: the current accelerator, of which this CPU-only build has none."""
from __future__ import annotations

__all__ = ["current_accelerator", "current_device_index", "device_count", "is_available",
           "set_device_index", "synchronize"]

_NONE = "Cannot access accelerator device when none is available."


def is_available() -> bool:
    """False: no accelerator."""
    return False


def device_count() -> int:
    """0: no accelerator."""
    return 0


def current_accelerator(check_available: bool = False):
    """None: no accelerator is present (with or without check_available)."""
    return None


def current_device_index() -> int:
    raise RuntimeError(_NONE)


current_device_idx = current_device_index


def set_device_index(device) -> None:
    raise RuntimeError(_NONE)


set_device_idx = set_device_index


def synchronize(device=None) -> None:
    raise RuntimeError(_NONE)
