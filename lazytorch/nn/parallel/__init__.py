"""torch.nn.parallel: data-parallel wrappers, as PyTorch's behave without GPUs or a process group.

DataParallel with no GPU runs the module itself (its state_dict keys gain the `module.` prefix,
as PyTorch's); DistributedDataParallel (distributed.py) trains over the ranks of
lazytorch.distributed's process group, and fails as PyTorch's does without one.
"""
from __future__ import annotations

from typing import Any

from ..module import Module
from .distributed import DistributedDataParallel

__all__ = ["DataParallel", "DistributedDataParallel"]


class DataParallel(Module):
    """Runs `module` on the batch as it is: with no GPU there is nothing to split it over
    (`device_ids` is empty, as in PyTorch without CUDA)."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0):
        super().__init__()
        self.module = module
        self.device_ids: list = []
        self.dim = dim
        self.output_device = None

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        return self.module(*inputs, **kwargs)
