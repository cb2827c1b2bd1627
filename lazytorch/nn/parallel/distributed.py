"""DistributedDataParallel over the MPI process group (lazytorch.distributed).

At construction rank 0's parameters and buffers are broadcast to every rank. After a
backward() of an output of this module's forward, the gradients are averaged across ranks in
buckets: all gradients are computed in one realize, each bucket's are concatenated into one
array, each bucket is averaged by one all_reduce (all in flight together), and the .grad
tensors take views of the received arrays as their values (no copies). (Lazy views of a lazy
division fused the update into the next forward's matmuls: 20x slower steps.)
"""
from __future__ import annotations

import contextlib
import weakref
from typing import Any, Iterator

import numpy as np

from ... import autograd
from ...frontend.tensor import Tensor, realize_tensors
from ...runtime import memory
from ...serialization.values import host_arrays
from ..module import Module

__all__ = ["DistributedDataParallel"]


def _buckets(tensors: list[Tensor], cap_bytes: int) -> list[list[Tensor]]:
    """The tensors in groups of one dtype each, in order, each group at most `cap_bytes` (or one
    tensor)."""
    out: list[list[Tensor]] = []
    open_by_dtype: dict[Any, tuple[list[Tensor], list[int]]] = {}
    for t in tensors:
        nbytes = t.numel() * t.dtype.itemsize
        b = open_by_dtype.get(t.dtype)
        if b is None or (b[1][0] + nbytes > cap_bytes and b[0]):
            b = ([], [0])
            open_by_dtype[t.dtype] = b
            out.append(b[0])
        b[0].append(t)
        b[1][0] += nbytes
    return out


def _flat(ts: list[Tensor]) -> Tensor:
    from ...frontend.joining import cat
    return cat([t.detach().reshape(-1) for t in ts])


def _split_into(flat: np.ndarray, targets: list[Tensor]) -> None:
    """Make consecutive pieces of `flat` the targets' values, in place (views: no copies)."""
    o = 0
    with autograd.no_grad():
        for t in targets:
            n = t.numel()
            t._assign(memory.buffer_node(flat[o:o + n].reshape(tuple(t.shape)), t.dtype))
            o += n


class DistributedDataParallel(Module):
    """Data-parallel training over the ranks of the default process group: gradients are
    averaged across ranks after each backward() (see the module docstring); `no_sync()` skips
    that for gradient accumulation. `state_dict()` is the wrapped module's, its keys prefixed
    with "module." as PyTorch's."""

    def __init__(self, module: Module, device_ids=None, output_device=None, dim: int = 0,
                 broadcast_buffers: bool = True, process_group=None, bucket_cap_mb=None,
                 find_unused_parameters: bool = False, check_reduction: bool = False,
                 gradient_as_bucket_view: bool = False, static_graph: bool = False,
                 **kwargs: Any) -> None:
        super().__init__()
        from ... import distributed as dist
        from ...distributed import group as pg
        self._group = pg.get()                # (ValueError as PyTorch's without a group)
        if process_group is not None and process_group is not self._group:
            raise ValueError("DistributedDataParallel: only the default process group exists")
        if device_ids and any(str(d) not in ("cpu", "-1") for d in device_ids):
            raise ValueError("DistributedDataParallel: the MPI backend runs on CPU modules; "
                             f"device_ids must be None, got {device_ids}")
        self.module = module
        self.device_ids = None
        self.output_device = None
        self.dim = dim
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.static_graph = static_graph
        self.bucket_cap_mb = 25 if bucket_cap_mb is None else bucket_cap_mb
        self.require_backward_grad_sync = True
        self._dist = dist
        self._sync_pending = False
        params = [p for p in module.parameters() if p.requires_grad]
        # in reverse order of registration, as PyTorch's: the last layers' gradients first
        self._param_buckets = _buckets(params[::-1], int(self.bucket_cap_mb * 2 ** 20))
        self._broadcast_from_0(list(module.parameters()) + list(module.buffers()))
        ref = weakref.ref(self)

        def after_backward(done: set[int], ref=ref) -> None:
            me = ref()
            if me is None:
                handle.remove()
            else:
                me._after_backward(done)
        handle = autograd.register_post_backward(after_backward)
        self._backward_handle = handle

    def _broadcast_from_0(self, tensors: list[Tensor]) -> None:
        """Every rank's tensors take rank 0's values (one broadcast per bucket)."""
        buckets = _buckets(tensors, int(self.bucket_cap_mb * 2 ** 20))
        flats = [_flat(b) for b in buckets]
        if self._group.rank() == 0:
            realize_tensors(flats)
        for b, f in zip(buckets, flats):
            self._dist.broadcast(f, 0)
            if self._group.rank() != 0:
                _split_into(host_arrays([f])[0], b)

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        if self.broadcast_buffers and self._group.size() > 1:
            bufs = list(self.module.buffers())
            if bufs:
                self._broadcast_from_0(bufs)
        self._sync_pending = self.require_backward_grad_sync and autograd.is_grad_enabled()
        return self.module(*inputs, **kwargs)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Backward passes of forwards run inside this block accumulate gradients locally,
        without averaging them across ranks; the first synchronized backward after it averages
        the accumulated gradients."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    def _after_backward(self, done: set[int]) -> None:
        if self._sync_pending and any(id(p) in done for b in self._param_buckets for p in b):
            self._sync_pending = False
            self.reduce_gradients()

    def reduce_gradients(self) -> None:
        """Average the parameters' .grad across ranks now (what backward() does after a
        synchronized forward); a parameter with no gradient on this rank counts as zeros."""
        from ...frontend.creation import zeros
        world = self._group.size()
        if world == 1:
            return
        targets = []
        for b in self._param_buckets:
            for p in b:
                if p.grad is None:     # unused here: zeros, and it gets the average
                    p.grad = zeros(tuple(p.shape), dtype=p.dtype)
            targets.append([p.grad for p in b])
        # every gradient in one plan, each by its own kernel (a lazy concatenation would fuse
        # the weight gradients' matmuls into the copy: 20x slower), then one array per bucket
        arrays = iter(host_arrays([g for grads in targets for g in grads]))
        flats = [Tensor._make(memory.buffer_node(np.concatenate(
            [next(arrays).reshape(-1) for _ in grads]))) for grads in targets]
        works = [self._dist.all_reduce(f, self._dist.ReduceOp.AVG, async_op=True)
                 for f in flats]
        for w, f, grads in zip(works, flats, targets):
            w.wait()
            _split_into(host_arrays([f])[0], grads)
