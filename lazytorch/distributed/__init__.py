"""torch.distributed, as on a PyTorch build without distributed support: is_available() is False.

The names scripts import at start-up exist (nanoGPT does `from torch.distributed import
init_process_group, destroy_process_group` before it knows whether it will run distributed);
asking for a process group fails as PyTorch's does when none was initialized, and creating
one fails saying that this build has no distributed backend.
"""
from __future__ import annotations

__all__ = ["ReduceOp", "barrier", "destroy_process_group", "get_backend", "get_rank",
           "get_world_size", "init_process_group", "is_available", "is_initialized",
           "is_torchelastic_launched"]

_NO_GROUP = ("Default process group has not been initialized, please make sure to call "
             "init_process_group.")


def is_available() -> bool:
    """False: this build has no distributed backend."""
    return False


def is_initialized() -> bool:
    """False: no process group can exist."""
    return False


def is_torchelastic_launched() -> bool:
    """Whether torchrun started this process (its TORCHELASTIC_RUN_ID is set)."""
    import os
    return os.environ.get("TORCHELASTIC_RUN_ID") is not None


def init_process_group(backend=None, init_method=None, timeout=None, world_size: int = -1,
                       rank: int = -1, store=None, group_name: str = "", pg_options=None,
                       device_id=None) -> None:
    raise RuntimeError("torch.distributed is not available in lazytorch: it has no "
                       "distributed backend (gloo, nccl, mpi), so no process group can be "
                       "made. Run the script as a single process.")


def destroy_process_group(group=None) -> None:
    raise ValueError(_NO_GROUP)


def get_rank(group=None) -> int:
    raise ValueError(_NO_GROUP)


def get_world_size(group=None) -> int:
    raise ValueError(_NO_GROUP)


def get_backend(group=None) -> str:
    raise ValueError(_NO_GROUP)


def barrier(group=None, async_op: bool = False, device_ids=None) -> None:
    raise ValueError(_NO_GROUP)


class ReduceOp:
    """The reduction names collectives take (no collective can run here)."""

    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
