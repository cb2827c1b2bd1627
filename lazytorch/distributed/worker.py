"""What each rank runs under the launcher: torchrun's environment from MPI's, then the script.

`python -m lazytorch.distributed.worker [-m] target args...` sets RANK, LOCAL_RANK,
WORLD_SIZE, LOCAL_WORLD_SIZE (and GROUP_RANK) from Open MPI's OMPI_COMM_WORLD_* variables,
gives the rank's kernels its share of the node's cores, and runs the script (or module) as
__main__. An uncaught exception prints its traceback and aborts every rank.
"""
from __future__ import annotations

import os
import runpy
import sys
import traceback

# torchrun's variable -> Open MPI's
_ENV = {"RANK": "OMPI_COMM_WORLD_RANK", "WORLD_SIZE": "OMPI_COMM_WORLD_SIZE",
        "LOCAL_RANK": "OMPI_COMM_WORLD_LOCAL_RANK",
        "LOCAL_WORLD_SIZE": "OMPI_COMM_WORLD_LOCAL_SIZE", "GROUP_RANK": "OMPI_COMM_WORLD_NODE_RANK"}


def set_environment(env: dict[str, str]) -> None:
    """Fill torchrun's variables in `env` from Open MPI's (those already set are kept)."""
    for name, ompi in _ENV.items():
        if ompi in env:
            env.setdefault(name, env[ompi])


def _abort() -> None:
    """Abort every rank when MPI is running (an exit would leave the others waiting)."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
        mpi.COMM_WORLD.Abort(1)


def main(argv: list[str]) -> int:
    set_environment(os.environ)          # type: ignore[arg-type]
    module = bool(argv) and argv[0] == "-m"
    if module:
        argv = argv[1:]
    if not argv:
        print("usage: python -m lazytorch.distributed.worker [-m] script args...",
              file=sys.stderr)
        return 2
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if "OMP_NUM_THREADS" not in os.environ and local > 1:
        from ..runtime.cpu import threads
        threads.set_num_threads(max(1, threads.cores() // local))
    sys.argv = list(argv)
    try:
        if module:
            runpy.run_module(argv[0], run_name="__main__", alter_sys=True)
        else:
            sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as e:
        if e.code not in (None, 0):
            sys.stderr.flush()
            _abort()
        raise
    except BaseException:
        traceback.print_exc()
        sys.stderr.flush()
        _abort()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
