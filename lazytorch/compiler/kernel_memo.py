"""Lowering once per kernel structure: a graph that repeats a block (a deep network's layers,
a loop's body) repeats its kernels, and lowering costs ten times what finding a repeat does.

A kernel's structure is the walk from its output down to the nodes it reads from buffers:
ops, args, shapes and dtypes, how the nodes share sources, and each buffer's shape, dtype and
first-seen position. Two kernels with one structure lower to the same loops and values, with
their own nodes in the same places; `lower_kernel_memo` lowers the first and copies it for the
rest (the values are copied too: later passes rewrite them in place).
"""
from __future__ import annotations

from typing import Callable

from ..ir.graph import Node, toposort
from ..ir.ops import Op
from .kernel import Kernel, Val, lower_kernel

# kernels whose index expressions read values (Data atoms refer to Val objects) are lowered
# every time rather than copied
_DATA_OPS = frozenset({Op.GATHER, Op.SCATTER})
_CONST = Op.CONST


def structure(out: Node, is_buffer: Callable[[Node], bool]) -> tuple[tuple, list[Node]]:
    """(key, the walk's nodes in post-order): the kernel's structure as described above."""
    bufs: set[Node] = set()

    def stop(n: Node) -> bool:
        if n is not out and is_buffer(n):
            bufs.add(n)
            return True
        return False
    order = toposort([out], stop)
    num = {n: i for i, n in enumerate(order)}
    key: list[tuple] = []
    leaves = 0
    for n in order:
        if n in bufs:
            key.append(("L", leaves, n.shape, n.dtype))
            leaves += 1
        else:
            arg = (type(n.arg), repr(n.arg)) if n.op is _CONST else n.arg
            key.append((n.op, arg, n.shape, n.dtype, tuple([num[s] for s in n.srcs])))
    return tuple(key), order


def _copy(k: Kernel, old: list[Node], new: list[Node]) -> Kernel:
    """k for the nodes `new` (the same walk positions as `old`), with values of its own."""
    where = {n: i for i, n in enumerate(old)}
    # (the accumulator is listed last, after the values that use it: sources in a second pass)
    vals = {id(v): Val(v.kind, v.dtype, v.op, (), v.arg, v.name) for v in k.vals}
    for v in k.vals:
        if v.srcs:
            vals[id(v)].srcs = tuple(vals[id(s)] for s in v.srcs)

    def val(v: Val | None) -> Val | None:
        return None if v is None else vals[id(v)]

    c = Kernel(k.name, list(k.params), k.loops, k.red_loops, k.red_op, val(k.red_val),
               val(k.acc), k.store_index, val(k.store_val), list(vals.values()),
               [new[where[n]] for n in k.nodes], new[where[k.output]],
               [new[where[n]] for n in k.inputs], store_mode=k.store_mode)
    c.level = {id(vals[i]): lv for i, lv in k.level.items() if i in vals}
    return c


def lower_kernel_memo(out: Node, is_buffer: Callable[[Node], bool], memo: dict,
                      depth: int | None = None) -> Kernel:
    """lower_kernel(out, is_buffer, "", depth), or a copy of an equal structure's kernel from
    `memo` (which the caller owns: one per schedule)."""
    key, order = structure(out, is_buffer)
    hit = memo.get(key)
    if hit is not None:
        k, old = hit
        return _copy(k, old, order)
    k = lower_kernel(out, is_buffer, "", depth)
    if k.scatter is None and not any(n.op in _DATA_OPS for n in k.nodes):
        # (memo keeps a pristine copy: the kernel handed out may be rewritten in place)
        memo[key] = (_copy(k, order, order), order)
    return k
