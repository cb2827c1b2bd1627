"""torch.distributed over MPI (mpi4py): the default process group and collectives on tensors.

Importing this package does not start MPI; init_process_group does (backend "mpi", or "gloo",
the name CPU scripts pass, on the same transport). Without mpi4py, is_available() is False and
init_process_group says which extra to install. Launch with
`python -m lazytorch.distributed.run --nproc_per_node N script.py` (see docs/distributed.md).
"""
from __future__ import annotations

import datetime
import os

from . import group as _pg
from .collectives import (
    Work,
    all_gather,
    all_gather_into_tensor,
    all_gather_object,
    all_reduce,
    barrier,
    broadcast,
    broadcast_object_list,
    reduce_scatter,
    reduce_scatter_tensor,
)
from .group import ProcessGroup
from .reduce_op import ReduceOp

__all__ = ["ProcessGroup", "ReduceOp", "Work", "all_gather", "all_gather_into_tensor",
           "all_gather_object", "all_reduce", "barrier", "broadcast", "broadcast_object_list",
           "destroy_process_group", "get_backend", "get_rank", "get_world_size",
           "init_process_group", "is_available", "is_initialized", "is_mpi_available",
           "is_gloo_available", "is_nccl_available", "is_torchelastic_launched",
           "reduce_scatter", "reduce_scatter_tensor"]


def is_available() -> bool:
    """Whether process groups can be made: mpi4py is installed."""
    return _pg.mpi4py_available()


def is_mpi_available() -> bool:
    return _pg.mpi4py_available()


def is_gloo_available() -> bool:
    """'gloo' runs over MPI here, so it is available where MPI is."""
    return _pg.mpi4py_available()


def is_nccl_available() -> bool:
    return False


def is_initialized() -> bool:
    """Whether init_process_group has made the default process group."""
    return _pg.is_initialized()


def is_torchelastic_launched() -> bool:
    """Whether torchrun started this process (its TORCHELASTIC_RUN_ID is set)."""
    return os.environ.get("TORCHELASTIC_RUN_ID") is not None


def init_process_group(backend: str | None = None, init_method: str | None = None,
                       timeout: datetime.timedelta | None = None, world_size: int = -1,
                       rank: int = -1, store=None, group_name: str = "", pg_options=None,
                       device_id=None) -> None:
    """Make the default process group over MPI's world (`timeout`: how long a collective waits
    for the other ranks before raising; 30 minutes unless given). `init_method` and `store`
    are accepted and unused: MPI's launcher has already connected the ranks."""
    _pg.init(backend, timeout, world_size, rank)


def destroy_process_group(group=None) -> None:
    """Forget the default process group."""
    _pg.destroy()


def get_rank(group=None) -> int:
    """This process's rank in the default group."""
    return _pg.get().rank()


def get_world_size(group=None) -> int:
    """The number of ranks in the default group."""
    return _pg.get().size()


def get_backend(group=None) -> str:
    """The backend name init_process_group was given ('mpi' or 'gloo')."""
    return _pg.get().backend
