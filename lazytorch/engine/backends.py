"""The registry of backends: which backend realizes the graphs of each device type.

A backend is registered under a name and serves one device type ("cpu", "cuda", ...). Several
may serve one device type (the compiled C backend and the reference interpreter both serve
"cpu"); the one realizes use is the device type's default, or the one named by
LAZYTORCH_BACKEND / `lazytorch.debug.use_backend(name)` when it serves that device type.
"""
from __future__ import annotations

from typing import Any

# name -> backend object; device type -> the names serving it, the default first
_BACKENDS: dict[str, Any] = {}
_BY_TYPE: dict[str, list[str]] = {}


def register(backend: Any, default: bool = False) -> None:
    """Make `backend` (with `.name` and `.device_type`) available; `default`: realizes on its
    device type use it unless another is selected."""
    _BACKENDS[backend.name] = backend
    names = _BY_TYPE.setdefault(backend.device_type, [])
    if backend.name in names:
        names.remove(backend.name)
    names.insert(0 if default or not names else len(names), backend.name)


def get(name: str) -> Any:
    """The backend registered as `name`."""
    try:
        return _BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}: expected one of "
                         f"{', '.join(sorted(_BACKENDS))}") from None


def names() -> list[str]:
    return sorted(_BACKENDS)


def device_types() -> list[str]:
    """The device types some backend serves."""
    return list(_BY_TYPE)
