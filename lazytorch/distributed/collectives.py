"""Collectives on tensors over MPI: all_reduce, broadcast, all_gather, reduce_scatter, barrier.

A collective realizes only the tensors whose values it sends (in one plan), hands their host
buffers to MPI as they are (a view is copied to a contiguous array first), receives into a
fresh array, and makes that array the tensor's new value in place (no copy: it becomes the
tensor's buffer). Everything else the program has recorded stays lazy.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..autograd import no_grad
from ..frontend.tensor import Tensor
from ..ir import dtypes as dt
from ..runtime import memory
from ..serialization.values import host_arrays
from . import group as pg
from .reduce_op import BOOL_OPS, MPI_OPS, ReduceOp, check_op, from_wire, wire, wire_reduce

__all__ = ["Work", "all_gather", "all_gather_into_tensor", "all_gather_object", "all_reduce",
           "barrier", "broadcast", "broadcast_object_list", "reduce_scatter",
           "reduce_scatter_tensor"]


class Work:
    """The handle an `async_op=True` collective returns: wait() blocks until it is done and
    the result is in the tensors (a collective that is not waited for leaves them as they
    were)."""

    def __init__(self, g: pg.ProcessGroup, request, finish: Callable[[], None], what: str,
                 buffers: tuple):
        self._g, self._request, self._finish, self._what = g, request, finish, what
        self._buffers = buffers     # MPI reads and writes them until the request completes
        self._done = False

    def wait(self, timeout=None) -> bool:
        """Block until the collective has finished on this rank (RuntimeError naming it when
        the other ranks have not joined within the group's timeout, or `timeout`)."""
        if not self._done:
            limit = self._g.timeout if timeout is None else _seconds(timeout)
            _wait(self._request, limit, self._what)
            self._complete()
        return True

    def is_completed(self) -> bool:
        """Whether it has finished (its result is then in the tensors)."""
        if not self._done and self._request.Test():
            self._complete()
        return self._done

    def is_success(self) -> bool:
        return self.is_completed()

    def _complete(self) -> None:
        self._done = True
        self._buffers = ()
        self._finish()


def _seconds(timeout) -> float:
    return timeout.total_seconds() if hasattr(timeout, "total_seconds") else float(timeout)


SPIN_S = 0.5   # how long a wait polls without sleeping (see _wait)


def _wait(request, limit: float, what: str) -> None:
    """Wait for an MPI request, at most `limit` seconds: polling without pause for the first
    SPIN_S (a non-blocking collective advances only while its ranks call into MPI, round by
    round: a 1 MB all_reduce has tens of rounds, and a sleep between polls cost each of them a
    millisecond), then sleeping between polls, so that a rank that waits long for a stopped one
    does not hold a core."""
    start = time.monotonic()
    spin_until, deadline = start + SPIN_S, start + limit
    while not request.Test():
        now = time.monotonic()
        if now > deadline:
            raise RuntimeError(f"{what} timed out after {limit:g} s: not every rank joined it "
                               "(a rank stopped, failed, or is running different collectives)")
        if now > spin_until:
            time.sleep(1e-3)


def _run(g: pg.ProcessGroup, request, finish: Callable[[], None], what: str,
         async_op: bool, *buffers: np.ndarray) -> Work | None:
    work = Work(g, request, finish, what, buffers)
    if async_op:
        return work
    work.wait()
    return None


def _group(group, what: str) -> pg.ProcessGroup:
    g = pg.get()
    if group is not None and group is not g:
        raise ValueError(f"{what}(): only the default process group (group=None) exists")
    return g


def _check(t, what: str, name: str = "tensor") -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(f"{what}(): {name} must be a Tensor, not {type(t).__name__}")
    if t.device.type != "cpu":
        raise RuntimeError(f"{what}(): the MPI backend runs on CPU tensors, but {name} is on "
                           f"{t.device}")
    return t


def _set(t: Tensor, arr: np.ndarray) -> None:
    """Make `arr` (a fresh array of t's shape and dtype) t's value, in place."""
    with no_grad():
        t._assign(memory.buffer_node(arr.reshape(tuple(t.shape)), t.dtype))


def _mpi_op(g: pg.ProcessGroup, op: ReduceOp, d: dt.DType):
    return getattr(g.MPI, (BOOL_OPS if d is dt.bool_ else MPI_OPS)[op])


def all_reduce(tensor: Tensor, op: ReduceOp = ReduceOp.SUM, group=None,
               async_op: bool = False) -> Work | None:
    """Reduce `tensor` across all ranks with `op`; every rank's tensor holds the result."""
    g = _group(group, "all_reduce")
    _check(tensor, "all_reduce")
    d = tensor.dtype
    op = check_op(op, d, "all_reduce")
    send = wire_reduce(host_arrays([tensor])[0], d)
    recv = np.empty_like(send)
    request = g.comm.Iallreduce(send, recv, _mpi_op(g, op, d))

    def finish() -> None:
        if op is ReduceOp.AVG:
            recv.__itruediv__(g.size())
        _set(tensor, from_wire(recv, d))
    return _run(g, request, finish, "all_reduce", async_op, send, recv)


def broadcast(tensor: Tensor, src: int, group=None, async_op: bool = False) -> Work | None:
    """Every rank's `tensor` takes rank `src`'s value (only `src` computes its tensor)."""
    g = _group(group, "broadcast")
    _check(tensor, "broadcast")
    _check_rank(g, src, "broadcast", "src")
    d = tensor.dtype
    if g.rank() == src:
        buf = host_arrays([tensor])[0]
        request = g.comm.Ibcast(wire(buf, d), root=src)
        return _run(g, request, lambda: None, "broadcast", async_op, buf)
    buf = np.empty(tuple(tensor.shape), d.np)
    request = g.comm.Ibcast(wire(buf, d), root=src)
    return _run(g, request, lambda: _set(tensor, buf), "broadcast", async_op, buf)


def _check_rank(g: pg.ProcessGroup, r: int, what: str, name: str) -> None:
    if not isinstance(r, int) or not 0 <= r < g.size():
        raise ValueError(f"{what}(): {name} {r!r} is not a rank of the group (world size "
                         f"{g.size()})")


def _check_like(t: Tensor, ref: Tensor, what: str, name: str) -> None:
    _check(t, what, name)
    if t.dtype is not ref.dtype:
        raise TypeError(f"{what}(): {name} has dtype {t.dtype!r} but the input has "
                        f"{ref.dtype!r}")


def all_gather(tensor_list: list[Tensor], tensor: Tensor, group=None,
               async_op: bool = False) -> Work | None:
    """tensor_list[i] takes rank i's `tensor`, on every rank."""
    g = _group(group, "all_gather")
    _check(tensor, "all_gather")
    if len(tensor_list) != g.size():
        raise ValueError(f"all_gather(): tensor_list has {len(tensor_list)} tensors but the "
                         f"world size is {g.size()}")
    for i, t in enumerate(tensor_list):
        _check_like(t, tensor, "all_gather", f"tensor_list[{i}]")
        if t.numel() != tensor.numel():
            raise RuntimeError(f"all_gather(): tensor_list[{i}] has {t.numel()} elements but "
                               f"the input has {tensor.numel()}")
    d = tensor.dtype
    send = host_arrays([tensor])[0]
    recv = np.empty((g.size(),) + tuple(send.shape), d.np)
    request = g.comm.Iallgather(wire(send, d), wire(recv, d))

    def finish() -> None:
        for i, t in enumerate(tensor_list):
            _set(t, recv[i])      # (a view of the received array: no copy)
    return _run(g, request, finish, "all_gather", async_op, send, recv)


def all_gather_into_tensor(output_tensor: Tensor, input_tensor: Tensor, group=None,
                           async_op: bool = False) -> Work | None:
    """output_tensor takes the ranks' `input_tensor`s one after another (concatenated along
    its first dimension, or stacked when it has one more)."""
    g = _group(group, "all_gather_into_tensor")
    _check(input_tensor, "all_gather_into_tensor", "input_tensor")
    _check_like(output_tensor, input_tensor, "all_gather_into_tensor", "output_tensor")
    if output_tensor.numel() != g.size() * input_tensor.numel():
        raise ValueError(f"all_gather_into_tensor(): output_tensor must have world size "
                         f"({g.size()}) times the input's {input_tensor.numel()} elements, "
                         f"got {output_tensor.numel()}")
    d = input_tensor.dtype
    send = host_arrays([input_tensor])[0]
    recv = np.empty(tuple(output_tensor.shape), d.np)
    request = g.comm.Iallgather(wire(send, d), wire(recv, d))
    return _run(g, request, lambda: _set(output_tensor, recv), "all_gather_into_tensor",
                async_op, send, recv)


def _reduce_scatter(g: pg.ProcessGroup, output: Tensor, send_t: Tensor, op: ReduceOp,
                    what: str, async_op: bool) -> Work | None:
    d = output.dtype
    op = check_op(op, d, what)
    send = wire_reduce(host_arrays([send_t])[0], d)
    recv = np.empty(tuple(output.shape), send.dtype)
    request = g.comm.Ireduce_scatter_block(send, recv, _mpi_op(g, op, d))

    def finish() -> None:
        if op is ReduceOp.AVG:
            recv.__itruediv__(g.size())
        _set(output, from_wire(recv, d))
    return _run(g, request, finish, what, async_op, send, recv)


def reduce_scatter(output: Tensor, input_list: list[Tensor], op: ReduceOp = ReduceOp.SUM,
                   group=None, async_op: bool = False) -> Work | None:
    """Rank i's `output` takes input_list[i] reduced with `op` across the ranks."""
    from ..frontend.joining import stack
    g = _group(group, "reduce_scatter")
    _check(output, "reduce_scatter", "output")
    if len(input_list) != g.size():
        raise ValueError(f"reduce_scatter(): input_list has {len(input_list)} tensors but the "
                         f"world size is {g.size()}")
    for i, t in enumerate(input_list):
        _check_like(t, output, "reduce_scatter", f"input_list[{i}]")
        if tuple(t.shape) != tuple(output.shape):
            raise RuntimeError(f"reduce_scatter(): input_list[{i}] has shape "
                               f"{list(t.shape)} but output has {list(output.shape)}")
    # the inputs, stacked lazily: realized as one contiguous buffer MPI sends as it is
    return _reduce_scatter(g, output, stack([t.detach() for t in input_list]), op,
                           "reduce_scatter", async_op)


def reduce_scatter_tensor(output: Tensor, input: Tensor, op: ReduceOp = ReduceOp.SUM,
                          group=None, async_op: bool = False) -> Work | None:
    """Rank i's `output` takes the i-th of the world-size equal parts of `input` (along its
    first dimension), reduced with `op` across the ranks."""
    g = _group(group, "reduce_scatter_tensor")
    _check(output, "reduce_scatter_tensor", "output")
    _check_like(input, output, "reduce_scatter_tensor", "input")
    if input.numel() != g.size() * output.numel():
        raise ValueError(f"reduce_scatter_tensor(): input must have world size ({g.size()}) "
                         f"times the output's {output.numel()} elements, got {input.numel()}")
    return _reduce_scatter(g, output, input, op, "reduce_scatter_tensor", async_op)


def barrier(group=None, async_op: bool = False, device_ids=None) -> Work | None:
    """Wait until every rank has reached the barrier."""
    g = _group(group, "barrier")
    return _run(g, g.comm.Ibarrier(), lambda: None, "barrier", async_op)


def all_gather_object(object_list: list, obj, group=None) -> None:
    """object_list[i] takes rank i's picklable `obj`."""
    g = _group(group, "all_gather_object")
    object_list[:] = g.comm.allgather(obj)


def broadcast_object_list(object_list: list, src: int = 0, group=None, device=None) -> None:
    """object_list takes rank `src`'s picklable objects, on every rank."""
    g = _group(group, "broadcast_object_list")
    _check_rank(g, src, "broadcast_object_list", "src")
    object_list[:] = g.comm.bcast(list(object_list), root=src)

