"""The settings every layer reads: counters, debug levels, the backend, eager and check modes.

Nothing here imports the rest of lazytorch, so the compiler and the runtime can read these
settings without depending on the front end; `lazytorch.debug` re-exports them next to the
tools that look at tensors (ir, viz, schedule, graph).

- counters: stats() / reset_stats()
- LAZYTORCH_DEBUG=N or `with level(N)`: 1 a line per realize, 2 a line per kernel run (with the
  user-level ops it fused, its time and bandwidth), 3 the IR before/after scheduling, 4 the
  generated source, 5 the IR after every pass. Everything goes to stderr.
- LAZYTORCH_BACKEND=name or `with use_backend(name)`: the registered backend realizes run on
  (`c`, the default, or `interp`, the reference; lazytorch/engine/backends.py has the registry).
- LAZYTORCH_EAGER=1|interp|compiled|name or `with eager()`: every op runs when it is called.
- LAZYTORCH_CHECK=1 or `with check()`: every compiled kernel is compared with the interpreter.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections import Counter

STATS: Counter = Counter()
_KEYS = ("kernels_compiled", "kernels_launched", "compile_cache_hits", "plan_cache_hits",
         "plans_built", "plans_evicted", "compiler_runs", "realizes")


class _Overrides(threading.local):
    """The per-thread settings of the context managers below; None: not set. (Class defaults:
    a lookup of a missing attribute would raise and catch an exception, on every op.)"""

    backend = level = eager = check = anomaly = None


_local = _Overrides()
# callbacks run after each realize as hook(outputs, plan or None) (tools/viz.py uses one)
REALIZE_HOOKS: list = []
# the profile recording now (lazytorch/profiler/), or None: realizes report their phases to its
# event(name, t0, t1, kind, ops, sources, shape) and run their kernels one by one, timed
PROFILER = None


def stats() -> dict[str, int]:
    """Counters since the last reset: kernels_compiled, kernels_launched, compile_cache_hits
    (modules found on disk), plan_cache_hits (realizes that reused a whole plan), plans_built
    (those that built one), plans_evicted (from the bounded plan cache), compiler_runs, realizes."""
    return {k: STATS[k] for k in _KEYS} | {k: v for k, v in STATS.items() if k not in _KEYS}


def reset_stats() -> None:
    STATS.clear()


def _override(name: str):
    return getattr(_local, name, None)


@contextlib.contextmanager
def _setting(name: str, value):
    old = getattr(_local, name, None)
    setattr(_local, name, value)
    try:
        yield
    finally:
        setattr(_local, name, old)


# the backend registry's names() and default(device type) name, attached by
# lazytorch/engine/backends.py (this module imports nothing of lazytorch)
_registry: list = []


def attach_backends(names, default_name) -> None:
    """Let the settings check backend names: `names()` lists the registered backends,
    `default_name(device_type)` names a device type's default."""
    _registry[:] = [names, default_name]


def _check_backend(name: str) -> str:
    known = _registry[0]() if _registry else None
    if known is not None and name not in known:
        raise ValueError(f"unknown backend {name!r}: expected one of {', '.join(known)}")
    return name


def backend() -> str | None:
    """The name of the backend selected for realizes (use_backend, else LAZYTORCH_BACKEND), or
    None: each device type's default (checked against the registry when a realize looks it
    up)."""
    return _override("backend") or os.environ.get("LAZYTORCH_BACKEND") or None


def use_backend(name: str):
    """Context manager: run realizes inside on the registered backend `name` ("c", "interp",
    ...) where it serves the device."""
    return _setting("backend", _check_backend(name))


def get_level() -> int:
    v = _override("level")
    if v is not None:
        return v
    try:
        return int(os.environ.get("LAZYTORCH_DEBUG", "0") or 0)
    except ValueError:
        return 0


def level(n: int):
    """Context manager: debug output level n inside (see the module docstring)."""
    return _setting("level", int(n))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def eager_mode() -> str | None:
    """None when lazy; else the name of the backend each op runs on as it is called."""
    v = getattr(_local, "eager", None)
    if v is not None:
        return v or None
    if _ENV_EAGER == _COMPILED:
        return _eager_backend(_COMPILED)
    return _ENV_EAGER


_COMPILED = "compiled"   # the eager mode naming the CPU's default (compiled) backend


def _eager_backend(mode: str) -> str:
    """The backend name of eager mode `mode`: "compiled" is the CPU's default backend, any
    other mode a registered backend's name."""
    if mode == _COMPILED:
        if not _registry:
            raise RuntimeError("no backend is registered yet (import lazytorch first)")
        return _registry[1]("cpu")
    return _check_backend(mode)


def _env_eager() -> str | None:
    # read once: every op asks, and a whole process is either eager or not from its start
    # (the name is checked at the first op: the registry is not attached yet)
    env = os.environ.get("LAZYTORCH_EAGER", "")
    if env in ("", "0"):
        return None
    return "interp" if env == "1" else env


_ENV_EAGER = _env_eager()


def eager(mode: str = "interp"):
    """Context manager: run every op the moment it is called, one at a time, on the
    reference interpreter ("interp"), as its own compiled kernel ("compiled": the CPU's default
    backend), or on the registered backend named `mode`."""
    try:
        name = _eager_backend(mode)
    except ValueError:
        raise ValueError(f"eager mode is 'interp', 'compiled' or a backend's name, not "
                         f"{mode!r}") from None
    return _counted(_setting("eager", name))


# eager contexts open in any thread, plus one for LAZYTORCH_EAGER: while 0, no op need ask
# eager_mode() (every op result would, and it costs a call and a thread-local lookup)
EAGER_SOMEWHERE = [0]


@contextlib.contextmanager
def _counted(setting):
    with _lock:
        EAGER_SOMEWHERE[0] += 1
    try:
        with setting:
            yield
    finally:
        with _lock:
            EAGER_SOMEWHERE[0] -= 1


_lock = threading.Lock()


def lazy():
    """Context manager: turn eager mode off inside."""
    return _setting("eager", "")


def check_mode() -> bool:
    v = _override("check")
    if v is not None:
        return v
    return os.environ.get("LAZYTORCH_CHECK", "") not in ("", "0")


def check(on: bool = True):
    """Context manager: compare every compiled kernel's output with the interpreter's."""
    return _setting("check", bool(on))


def anomaly_mode() -> bool:
    return bool(_override("anomaly"))


EAGER_SOMEWHERE[0] += _ENV_EAGER is not None
