"""The user's allowlist for `weights_only=True` loads (PyTorch's torch.serialization API):
classes and functions the user trusts, which a restricted load may then construct and call."""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

# modules that are never allowed, even when listed (PyTorch's rule)
BLOCKED_MODULES = frozenset({"sys", "os", "posix", "nt"})

_SAFE: set[Any] = set()


def add_safe_globals(safe_globals: list) -> None:
    """Allow these globals (objects, or (object, "module.name") pairs) in weights_only loads."""
    for g in safe_globals:
        _check(g)
    _SAFE.update(safe_globals)


def get_safe_globals() -> list:
    return list(_SAFE)


def clear_safe_globals() -> None:
    _SAFE.clear()


@contextlib.contextmanager
def safe_globals(safe_globals: list) -> Iterator[None]:
    """Allow these globals within the block."""
    added = [g for g in safe_globals if g not in _SAFE]
    add_safe_globals(added)
    try:
        yield
    finally:
        _SAFE.difference_update(added)


def _check(g) -> None:
    if isinstance(g, tuple):
        if len(g) != 2:
            raise ValueError(f"Expected tuple of length 2 (global, str of callable full path), "
                             f"but got tuple of length: {len(g)}")
        if type(g[1]) is not str:
            raise TypeError(f"Expected second item in tuple to be str of callable full path, "
                            f"but got: {type(g[1])}")


def user_globals() -> dict[str, Callable]:
    """The allowlist by dotted name."""
    out = {}
    for g in _SAFE:
        if isinstance(g, tuple):
            out[g[1]] = g[0]
        else:
            out[f"{g.__module__}.{g.__qualname__}"] = g
    return out
