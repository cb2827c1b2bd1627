"""`python -m lazytorch script.py [args]` (or `-m module [args]`): run an unmodified PyTorch
program with every `torch` and `torch.*` import resolved to lazytorch."""
from __future__ import annotations

import os
import runpy
import sys

from .as_torch import install_as_torch

USAGE = """usage: python -m lazytorch script.py [args ...]
       python -m lazytorch -m module [args ...]

Runs a PyTorch program with `import torch` (and every `torch.X`) resolved to lazytorch."""


def main(argv: list[str] | None = None) -> None:
    """Run the script (or module) named by argv as `__main__`, with sys.argv set to it and
    its arguments, as `python script.py args` would."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stdout if argv else sys.stderr)
        raise SystemExit(0 if argv else 2)
    install_as_torch()
    if argv[0] == "-m":
        if len(argv) < 2:
            print("python -m lazytorch: -m needs a module name\n\n" + USAGE, file=sys.stderr)
            raise SystemExit(2)
        sys.argv = argv[1:]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        return
    script = argv[0]
    if not os.path.exists(script):
        print(f"python -m lazytorch: can't open file {script!r}: [Errno 2] No such file or "
              f"directory", file=sys.stderr)
        raise SystemExit(2)
    sys.argv = argv
    # as `python script.py` does: the script's own directory replaces the current one
    sys.path[0] = os.path.dirname(os.path.abspath(script))
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
