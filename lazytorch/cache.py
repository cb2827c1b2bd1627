"""The compile cache's command: `python -m lazytorch.cache` reports where it is and its size;
`--sweep` trims it to its limit (LAZYTORCH_CACHE_SIZE), `--clear` removes every entry.
(The cache itself is lazytorch/runtime/cache.py.)"""
from __future__ import annotations

import sys

from .runtime.cache import main

if __name__ == "__main__":
    sys.exit(main())
