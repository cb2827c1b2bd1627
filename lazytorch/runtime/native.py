"""The host side's hottest loops in C: node construction and death, the source-line walk,
realize's walk (`prepare`), toposort, and autograd's bookkeeping (runtime/native_*.c).

They are compiled once per machine like the kernels, against this Python's headers, into the
disk cache, and loaded as an extension module. Their Python versions (graph.new_node_py,
realize.prepare_py, autograd.tracked_py, ...) are the reference and the fallback: with no
compiler or no headers, or with LAZYTORCH_NATIVE=0, everything runs as before, only slower. On
a first run the build happens in a background thread at low priority once the first plan has
compiled, so the first realizes (and their kernel compiles) do not wait for it; a later
process loads it from the cache at import.

The IR core does not import the runtime: this module binds the IR's compiled loops itself
(graph.use_native, sites.use_native, first of the hooks) and starts the load at its import,
early in `import lazytorch` (autograd imports it); the modules that bound the IR's Python
versions by name before the load are rebound then.
"""
from __future__ import annotations

import atexit
import importlib.machinery
import importlib.util
import os
import sys
import sysconfig
import threading
import warnings
from types import ModuleType
from typing import Callable

from .. import graph, sites
from . import cache, cpu

NAME = "_lazytorch_native"
# one translation unit: the files joined in this order (native_base.c says what each holds)
SOURCES = tuple(os.path.join(os.path.dirname(os.path.abspath(__file__)), f"native_{part}.c")
                for part in ("base", "graph", "sites", "prepare", "autograd", "module"))
FOLDER = "native"   # its folder in the disk cache, apart from the kernels' modules
FLAGS = ["-O2", "-fPIC", "-shared", "-std=gnu11", "-fno-strict-aliasing"]

_module: ModuleType | None = None
_failed: str | None = None
_thread: threading.Thread | None = None
_lock = threading.Lock()
_on_load: list[Callable[[ModuleType], None]] = []


def enabled() -> bool:
    return os.environ.get("LAZYTORCH_NATIVE", "1") != "0"


def _include() -> str | None:
    inc = sysconfig.get_paths().get("include")
    return inc if inc and os.path.exists(os.path.join(inc, "Python.h")) else None


def _key(source: str, inc: str) -> str:
    tag = sysconfig.get_config_var("EXT_SUFFIX") or sys.implementation.cache_tag
    return cpu.cache_key("\0".join([source, inc, tag, "native"]), [*FLAGS, f"-I{inc}"])


_INIT = f"PyInit_{NAME}"   # what the module must define


def _cached(key: str) -> ModuleType | None:
    """The module from the disk cache, or None (missing, or damaged: then removed)."""
    path = cache.get(key, FOLDER, ".so", cpu.library_check([_INIT]))
    if path is None:
        return None
    try:
        return _import(path)
    except Exception:   # (ImportError; SystemError from an init function that failed)
        cache.discard(key, FOLDER, ".so")   # built again by the caller
        return None


def _import(path: str) -> ModuleType:
    loader = importlib.machinery.ExtensionFileLoader(NAME, path)
    spec = importlib.util.spec_from_file_location(NAME, path, loader=loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def source() -> str:
    """The module's C source: SOURCES joined, each marked with its file for the compiler's
    messages."""
    parts = []
    for path in SOURCES:
        with open(path) as f:
            parts.append(f'#line 1 "{os.path.basename(path)}"\n{f.read()}')
    return "\n".join(parts)


def _build(nice: bool) -> ModuleType:
    inc = _include()
    if inc is None:
        raise cpu.CompileError("no Python.h for this interpreter (install its dev headers)")
    text = source()
    key = _key(text, inc)
    mod = _cached(key)
    if mod is not None:
        return mod
    job = cpu.start_compile(text, key, [*FLAGS, f"-I{inc}"], nice=nice, folder=FOLDER,
                            symbols=[_INIT])
    _jobs.append(job)
    try:
        # (not a kernel: debug's compiler_runs counts kernel modules only)
        return _import(cpu.finish_compile(job, count=False))
    finally:
        _jobs.remove(job)


_jobs: list[cpu.Job] = []   # compiler runs in flight


@atexit.register
def _stop_builds(wait: float = 10.0) -> None:
    """A process that ends while the background build runs lets it finish (a second or so,
    once per machine: the next process loads it), or stops it after `wait` seconds (at once if
    the cache is a private one, removed at exit), leaving no half-written file."""
    if _thread is not None:
        _thread.join(wait if cache.persistent() else 0)
    for job in list(_jobs):
        cpu.cancel_compile(job)


def _call(hook: Callable[[ModuleType], dict | None], mod: ModuleType) -> None:
    """A hook that fails leaves its Python functions in place (the compiled and Python
    versions share their tables, so any mix of them is correct). A hook may return
    {name: (Python version, compiled version)}: those globals are rebound in every module."""
    global _failed
    try:
        replaced = hook(mod)
    except Exception as e:
        _failed = f"{getattr(hook, '__module__', '?')}: {type(e).__name__}: {e}"
        return
    for name, (old, new) in (replaced or {}).items():
        rebind(name, old, new)


def _install(mod: ModuleType) -> None:
    global _module
    for hook in _on_load:
        _call(hook, mod)
    _module = mod


def _run(nice: bool) -> None:
    global _failed
    try:
        mod = _build(nice)
    except Exception as e:  # the Python versions go on serving
        _failed = f"{type(e).__name__}: {e}"
        return
    with _lock:
        if _module is None:
            _install(mod)


def rebind(name: str, old: object, new: object) -> None:
    """Point the global `name` of every lazytorch module where it holds `old` (a Python
    function a hook replaces, imported by name before the module loaded) at `new`: a process
    whose module was built after its imports then runs as one that loaded it at import."""
    for mod_name, m in list(sys.modules.items()):
        if mod_name == "lazytorch" or mod_name.startswith("lazytorch."):
            g = getattr(m, "__dict__", None)
            if g is not None and g.get(name) is old:
                g[name] = new


def on_load(hook: Callable[[ModuleType], dict | None]) -> None:
    """Call hook(module) when the module is loaded (now, if it already is)."""
    with _lock:
        _on_load.append(hook)
        if _module is not None:
            _call(hook, _module)


def start() -> None:
    """Load the module from the disk cache now; or have `kick()` build it in the background
    (after the first plan's kernels compiled: the build then takes no time from them)."""
    global _deferred, _failed
    if not enabled() or _thread is not None or _module is not None:
        return
    inc = _include()
    if inc is None:
        return
    try:
        mod = _cached(_key(source(), inc))
    except cache.CacheError as e:   # an untrusted entry: the Python versions serve
        _failed = f"CacheError: {e}"
        warnings.warn(str(e), cache.CacheWarning, stacklevel=2)
        return
    except (OSError, cpu.CompileError):
        mod = None   # (the build says why, if it fails the same way)
    if mod is not None:
        with _lock:
            if _module is None:
                _install(mod)
        return
    _deferred = True


_deferred = False


def kick() -> None:
    """Start the background build that start() deferred, if any."""
    global _thread, _deferred
    if not _deferred:
        return
    with _lock:
        if _thread is not None or not _deferred:
            return
        _deferred = False
        _thread = threading.Thread(target=_run, args=(True,), name="lazytorch-native",
                                   daemon=True)
        _thread.start()


def load(block: bool = True) -> ModuleType | None:
    """The module (building it now, if `block` and it is not loaded yet), or None if it cannot
    be built here (`failure()` says why)."""
    if _module is None and block and enabled():
        if _thread is not None:
            _thread.join()
        if _module is None:
            _run(nice=False)
    return _module


def failure() -> str | None:
    return _failed


# the IR's loops first: the hooks registered after them (runtime.memory, autograd, realize) hand
# graph's compiled constructor to the module
on_load(graph.use_native)
on_load(sites.use_native)
start()  # from the disk cache now, or built later (kick)
