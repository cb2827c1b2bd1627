"""Run PyTorch programs unmodified: `import torch` (and every `torch.X.Y`) gives lazytorch.

An import hook on `sys.meta_path` maps `torch` to `lazytorch` and `torch.X.Y` to `lazytorch.X.Y`:
the module imported under its lazytorch name is put under the torch name too, so both names are
one module object (`torch.nn is lazytorch.nn`), never a second copy of the package. A name that
lazytorch lacks is a ModuleNotFoundError naming both.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

_ALIAS, _REAL = "torch", "lazytorch"


class _AliasLoader(importlib.abc.Loader):
    """Hands the import system the already imported lazytorch module."""

    def __init__(self, module: ModuleType) -> None:
        self.module = module
        self.real_spec = module.__spec__

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return self.module

    def exec_module(self, module: ModuleType) -> None:
        # the import system stamped the alias spec on the module: it keeps its own (its
        # __spec__ names its lazytorch name, which relative imports and reload rely on)
        module.__spec__ = self.real_spec


class TorchAliasFinder(importlib.abc.MetaPathFinder):
    """`torch[.X.Y]` -> the module `lazytorch[.X.Y]`, the same object under both names."""

    def find_spec(self, fullname: str, path=None, target=None):
        if fullname != _ALIAS and not fullname.startswith(_ALIAS + "."):
            return None
        real = _REAL + fullname[len(_ALIAS):]
        try:
            module = importlib.import_module(real)
        except ModuleNotFoundError as e:
            if e.name != real:
                raise  # a module that lazytorch.X itself imports is missing
            raise ModuleNotFoundError(f"No module named '{fullname}' (lazytorch has no "
                                      f"'{real}')", name=fullname) from None
        return importlib.machinery.ModuleSpec(
            fullname, _AliasLoader(module), origin=getattr(module.__spec__, "origin", None),
            is_package=hasattr(module, "__path__"))


def _installed() -> TorchAliasFinder | None:
    return next((f for f in sys.meta_path if isinstance(f, TorchAliasFinder)), None)


def install_as_torch() -> None:
    """Make `import torch` (and `torch.X.Y`) import lazytorch in this process, for notebooks
    and scripts that cannot be run with `python -m lazytorch`. Call it before the first
    `import torch`; calling it again does nothing."""
    lazytorch = importlib.import_module(_REAL)
    loaded = sys.modules.get(_ALIAS)
    if loaded is not None and loaded is not lazytorch:
        raise RuntimeError(f"install_as_torch(): PyTorch is already imported in this process "
                           f"(from {getattr(loaded, '__file__', '?')}); call it before the "
                           f"first `import torch`")
    if _installed() is None:
        sys.meta_path.insert(0, TorchAliasFinder())


def uninstall_as_torch() -> None:
    """Undo install_as_torch(): `import torch` is PyTorch's again (the torch names already
    imported are forgotten)."""
    finder = _installed()
    if finder is not None:
        sys.meta_path.remove(finder)
    for name in [n for n in sys.modules if n == _ALIAS or n.startswith(_ALIAS + ".")]:
        if getattr(sys.modules[name], "__name__", "").startswith(_REAL):
            del sys.modules[name]
