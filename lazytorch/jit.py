"""torch.jit: the TorchScript markers that model code carries, as lazytorch runs them.

Model code written for TorchScript asks `torch.jit.is_scripting()` and decorates methods with
`@torch.jit.ignore` / `unused` / `export`; these answer and pass through. `torch.jit.script(fn)`
returns `fn` itself, working (as torch.compile does: laziness already compiles). Producing a
TorchScript artifact (`trace`, `save`, `load`) is not supported: there is no TorchScript here.
"""
from __future__ import annotations

from typing import Any, Callable, Final, TypeVar

__all__ = ["Final", "annotate", "export", "ignore", "is_scripting", "is_tracing", "load",
           "save", "script", "trace", "unused"]

T = TypeVar("T")

_NO_TORCHSCRIPT = ("is not supported by lazytorch: it has no TorchScript. Save the weights "
                   "with torch.save(model.state_dict(), path) and script or trace with PyTorch.")


def is_scripting() -> bool:
    """False: code always runs as Python."""
    return False


def is_tracing() -> bool:
    """False: nothing is ever traced."""
    return False


def annotate(the_type: Any, the_value: T) -> T:
    """The value itself (a type hint for TorchScript)."""
    return the_value


def ignore(drop: Any = False, **kwargs: Any) -> Any:
    """@torch.jit.ignore or @torch.jit.ignore(drop=...): the function itself."""
    if callable(drop):
        return drop
    return lambda fn: fn


def unused(fn: Callable) -> Callable:
    """@torch.jit.unused: the function itself."""
    return fn


def export(fn: Callable) -> Callable:
    """@torch.jit.export: the method itself."""
    return fn


def script(obj: Any = None, optimize: Any = None, _frames_up: int = 0, _rcb: Any = None,
           example_inputs: Any = None) -> Any:
    """torch.jit.script: returns `obj` (a function or module) itself, working; see the
    module's docstring."""
    return obj


def trace(func: Any, example_inputs: Any = None, *args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError(f"torch.jit.trace {_NO_TORCHSCRIPT}")


def save(m: Any, f: Any, _extra_files: Any = None) -> None:
    raise NotImplementedError(f"torch.jit.save {_NO_TORCHSCRIPT}")


def load(f: Any, map_location: Any = None, _extra_files: Any = None) -> Any:
    raise NotImplementedError(f"torch.jit.load {_NO_TORCHSCRIPT}")


