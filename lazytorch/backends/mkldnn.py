"""torch.backends.mkldnn: lazytorch does not use oneDNN; the flag is kept and changes nothing."""
from __future__ import annotations

import contextlib
from typing import Iterator

enabled = True
deterministic = False


def is_available() -> bool:
    """False: no oneDNN here."""
    return False


@contextlib.contextmanager
def flags(enabled: bool = False, deterministic: bool = False) -> Iterator[None]:
    """Set the module's flags within the block, and restore them after."""
    g = globals()
    old = (g["enabled"], g["deterministic"])
    g["enabled"], g["deterministic"] = enabled, deterministic
    try:
        yield
    finally:
        g["enabled"], g["deterministic"] = old
