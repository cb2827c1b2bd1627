"""The process group: MPI's world communicator, made by init_process_group.

mpi4py is imported here, by init_process_group only: importing lazytorch.distributed does not
start MPI. Rank and world size are MPI's; where a launcher set RANK/WORLD_SIZE they must agree
with it (ranks are renumbered to match RANK, as torchrun numbers them).
"""
from __future__ import annotations

import datetime
import os
import sys
from dataclasses import dataclass
from typing import Any

_NO_GROUP = ("Default process group has not been initialized, please make sure to call "
             "init_process_group.")
_BACKENDS = ("mpi", "gloo")
DEFAULT_TIMEOUT = datetime.timedelta(minutes=30)


@dataclass
class ProcessGroup:
    """The ranks a collective runs over (only the default group, all ranks, exists here)."""

    comm: Any            # mpi4py's communicator
    MPI: Any             # mpi4py's MPI module
    backend: str
    timeout: float       # seconds a collective waits for the other ranks

    def rank(self) -> int:
        return self.comm.Get_rank()

    def size(self) -> int:
        return self.comm.Get_size()


_GROUP: list[ProcessGroup] = []


def mpi4py_available() -> bool:
    """Whether mpi4py can be imported (without importing it, which would start MPI)."""
    if "mpi4py" in sys.modules:
        return sys.modules["mpi4py"] is not None
    import importlib.util
    return importlib.util.find_spec("mpi4py") is not None


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise RuntimeError("torch.distributed in lazytorch runs over MPI through mpi4py, which "
                           "is not installed: pip install 'lazytorch[distributed]' (and an MPI "
                           "library, e.g. Debian's openmpi-bin and libopenmpi-dev)") from e
    return MPI


def _env_int(name: str) -> int | None:
    v = os.environ.get(name)
    return None if v in (None, "") else int(v)


def init(backend: str | None, timeout: datetime.timedelta | None, world_size: int,
         rank: int) -> ProcessGroup:
    """Make the default process group (see init_process_group)."""
    if _GROUP:
        raise ValueError("trying to initialize the default process group twice!")
    name = "mpi" if backend is None else str(backend).lower()
    if name == "nccl":
        raise RuntimeError("backend 'nccl' is not available in lazytorch: its CUDA backend "
                           "cannot serve NCCL collectives yet; use backend='gloo' or 'mpi', "
                           "which run over MPI on the host")
    if name not in _BACKENDS:
        raise ValueError(f"Invalid backend: '{backend}' (lazytorch runs 'mpi' and 'gloo', both "
                         "over MPI)")
    MPI = _mpi()
    comm = MPI.COMM_WORLD
    want_size = world_size if world_size != -1 else _env_int("WORLD_SIZE")
    want_rank = rank if rank != -1 else _env_int("RANK")
    if want_size is not None and want_size != comm.Get_size():
        raise RuntimeError(f"world_size is {want_size} but MPI started {comm.Get_size()} "
                           "process(es): launch the script with mpirun or "
                           "`python -m lazytorch.distributed.run --nproc_per_node N`")
    if want_rank is not None:
        if not 0 <= want_rank < comm.Get_size():
            raise RuntimeError(f"rank {want_rank} is not in [0, {comm.Get_size()})")
        comm = comm.Split(0, want_rank)
        if comm.Get_rank() != want_rank:
            raise RuntimeError(f"RANK/rank {want_rank} is given to more than one process")
    seconds = (timeout or DEFAULT_TIMEOUT).total_seconds()
    g = ProcessGroup(comm, MPI, name, seconds)
    _GROUP.append(g)
    _abort_on_uncaught(MPI)
    return g


def _abort_on_uncaught(MPI) -> None:
    """An uncaught exception in one rank aborts the job (after printing its traceback), so the
    others fail at once instead of waiting in a collective for a rank that has gone."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        previous(kind, value, tb)
        if _GROUP and kind is not KeyboardInterrupt:
            sys.stderr.flush()
            MPI.COMM_WORLD.Abort(1)

    sys.excepthook = hook


def get() -> ProcessGroup:
    """The default process group (ValueError as PyTorch's when there is none)."""
    if not _GROUP:
        raise ValueError(_NO_GROUP)
    return _GROUP[0]


def destroy() -> None:
    """Forget the default process group (MPI itself finalizes when the process exits)."""
    g = get()
    if g.comm is not g.MPI.COMM_WORLD:
        g.comm.Free()
    _GROUP.clear()


def is_initialized() -> bool:
    return bool(_GROUP)
