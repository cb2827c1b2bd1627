"""Counters and debug switches."""
from __future__ import annotations

import os
from collections import Counter

STATS: Counter = Counter()
_KEYS = ("kernels_compiled", "kernels_launched", "compile_cache_hits", "plan_cache_hits",
         "compiler_runs", "realizes")


def stats() -> dict[str, int]:
    """Counters since the last reset: kernels_compiled, kernels_launched, compile_cache_hits
    (modules found on disk), plan_cache_hits (realizes that reused a whole plan),
    compiler_runs, realizes."""
    return {k: STATS[k] for k in _KEYS} | {k: v for k, v in STATS.items() if k not in _KEYS}


def reset_stats() -> None:
    STATS.clear()


def backend() -> str:
    """The backend chosen for this process: `c` (default) or `interp`."""
    return os.environ.get("LAZYTORCH_BACKEND", "c")
