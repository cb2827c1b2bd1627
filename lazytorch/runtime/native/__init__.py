"""The host side's hottest loops in C (native/*.c, listed in module.c): node construction and
death, toposort, the source-line walk and realize's walk (`prepare`), each 3-6x its Python
version (graph.new_node_py, graph.toposort_py, sites.record_from_py, realize.prepare_py), which
is the reference and the fallback.

The implementation is chosen once, when `import lazytorch` imports this package first of all
(lazytorch/__init__.py), so before any module binds graph's or sites' functions by name; it is
never changed later in the process:

1. LAZYTORCH_NATIVE=0: the Python versions.
2. The extension built at install time (setup.py; `pip install -e .` builds it beside these
   files), if it was built from these sources (its DIGEST is sources.digest()).
3. Else the same sources built at run time into the disk cache's folder `native` (once per
   machine and Python: about 1.3 s of the first import, with 2 cores; a later process loads it
   from the cache in a few milliseconds).
4. Else (no compiler, no Python.h, an untrusted cache entry) the Python versions; failure()
   says why.

The IR core does not import the runtime: this package binds the IR's compiled loops itself
(graph.use_native, sites.use_native) before it returns; runtime.memory and realize, imported
after it, bind theirs from module() at their own import.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
import sysconfig
import warnings
from types import ModuleType

from ... import config
from ...ir import graph, sites
from .. import cache, cpu
from . import sources

NAME = __name__ + "._native"   # the extension's import name, wherever it was built
_INIT = "PyInit__native"        # what the module defines
FOLDER = "native"   # its folder in the disk cache, apart from the kernels' modules
FLAGS = ["-O2", "-fPIC", "-shared", *sources.FLAGS]


def enabled() -> bool:
    return os.environ.get("LAZYTORCH_NATIVE", "1") != "0"


def _include() -> str | None:
    inc = sysconfig.get_paths().get("include")
    return inc if inc and os.path.exists(os.path.join(inc, "Python.h")) else None


def _flags(digest: str, inc: str) -> list[str]:
    return [*FLAGS, f"-I{inc}", "-D" + sources.define(digest)]


def _key(digest: str, inc: str) -> str:
    """The disk cache key of the run-time build of the sources with this digest."""
    tag = sysconfig.get_config_var("EXT_SUFFIX") or sys.implementation.cache_tag
    return cpu.cache_key(f"native {digest} {tag}", _flags(digest, inc))


def _import(path: str) -> ModuleType:
    loader = importlib.machinery.ExtensionFileLoader(NAME, path)
    spec = importlib.util.spec_from_file_location(NAME, path, loader=loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def _installed(digest: str) -> ModuleType | None:
    """The extension setup.py built, if there is one and it was built from these sources."""
    try:
        spec = importlib.util.find_spec(NAME)
    except ImportError:
        return None
    if spec is None or spec.origin is None:
        return None
    try:
        mod = _import(spec.origin)
    except Exception:   # (ImportError; SystemError from an init function that failed)
        return None
    return mod if getattr(mod, "DIGEST", None) == digest else None


def _cached(key: str) -> ModuleType | None:
    """The run-time build from the disk cache, or None (missing, or damaged: then removed, and
    the reason kept in _refused)."""
    path = cache.get(key, FOLDER, ".so", cpu.library_check([_INIT]))
    if path is None:
        return None
    try:
        return _import(path)
    except Exception as e:   # (ImportError; SystemError from an init function that failed)
        _refused.append(f"{type(e).__name__}: {e}")
        cache.discard(key, FOLDER, ".so")   # built again by the caller
        return None


_refused: list[str] = []


def _build(digest: str) -> ModuleType:
    """The run-time build: from the disk cache, else compiled into it now."""
    inc = _include()
    if inc is None:
        raise cpu.CompileError("no Python.h for this interpreter (install its dev headers)")
    key = _key(digest, inc)
    mod = _cached(key)
    if mod is None:
        # (module.c's own includes resolve beside it; not a kernel: debug's compiler_runs
        # counts kernel modules only)
        job = cpu.start_compile(f'#include "{sources.MAIN}"\n', key, _flags(digest, inc),
                                folder=FOLDER, symbols=[_INIT])
        path = cpu.finish_compile(job, count=False)
        try:
            mod = _import(path)
        except Exception:
            if not _refused:
                raise
            # the loader hands back the library a refused entry left at this path: the
            # rebuilt one serves from the next process on
            raise cpu.CompileError(f"the cached module did not load ({_refused[-1]}); rebuilt "
                                   "for the next process") from None
    if getattr(mod, "DIGEST", None) != digest:
        raise cpu.CompileError("the module built does not match its sources")
    return mod


def _choose() -> tuple[ModuleType | None, str | None, str | None]:
    """(the module or None, where it came from: "installed" or "cache", why there is none)."""
    if not enabled():
        return None, None, "disabled by LAZYTORCH_NATIVE=0"
    digest = sources.digest()
    mod = _installed(digest)
    if mod is not None:
        return mod, "installed", None
    try:
        return _build(digest), "cache", None
    except cache.CacheError as e:   # an untrusted entry: the Python versions serve
        warnings.warn(str(e), cache.CacheWarning, stacklevel=2)
        return None, None, f"CacheError: {e}"
    except Exception as e:   # no compiler, a failed build: the Python versions serve
        return None, None, f"{type(e).__name__}: {e}"


def _bind(mod: ModuleType) -> None:
    """The IR's compiled loops take over (the compiled and Python versions share their tables,
    so a failure part-way leaves a correct mix)."""
    graph.use_native(mod)
    sites.use_native(mod)


_module, _origin, _failed = _choose()
if _module is not None:
    try:
        _bind(_module)
    except Exception as e:
        _module, _origin, _failed = None, None, f"{type(e).__name__}: {e}"
if config.get_level() >= 1:
    config.log(f"native host loops: {_origin or 'Python versions'}"
               + (f" ({_failed})" if _failed else ""))


def module() -> ModuleType | None:
    """The compiled module chosen at import, or None when the Python versions serve."""
    return _module


def origin() -> str | None:
    """Where the module came from: "installed" (setup.py's build), "cache" (the run-time
    build), or None (the Python versions serve)."""
    return _origin


def failure() -> str | None:
    """Why the Python versions serve, or None."""
    return _failed
