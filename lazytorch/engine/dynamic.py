"""Scalars that change between realizes become plan inputs instead of constants.

A Python scalar is recorded as a CONST node, and a plan is keyed by its graph's structure with
the constants' values in it: `(x * (1 + i * 1e-3)).sum()` in a loop would compile a plan per
value. Here the plan cache's misses are compared with the graphs seen before once the 0-d
constants' values are left out of the key (the *shape* of the key): when a graph of a known
shape comes back with other values at some constants, those constants become inputs of the
plan (0-d buffers filled with each realize's values), and every later value at them reuses that
plan. A constant that has kept its value stays a constant, with the simplifications constants
allow (x * 1, x + 0, x ** 2).

The first value of a graph is compiled as constants, the second builds the plan with inputs,
and no later value compiles. LAZYTORCH_DYNAMIC_SCALARS=0 turns this off; =all makes every 0-d
constant an input from the first realize (the tests run the op suites so, to check that every
op computes the same from a constant and from a loaded scalar)."""
from __future__ import annotations

import ast
import itertools
import os
from dataclasses import dataclass, field

import numpy as np

from ..ir import dtypes as dt
from ..ir.graph import Node, new_node, toposort
from ..ir.ops import Op
from ..ir.sites import inherit
from ..runtime import memory

_CONST = Op.CONST
_SHAPES_KEPT = 1024   # key shapes remembered (the oldest forgotten first)
_serial = itertools.count(1).__next__


@dataclass
class Shape:
    """What is known of one key shape: the values of its scalars the first time it was seen,
    and the positions (in the key) of those that have changed since."""

    first: tuple
    varying: frozenset = frozenset()
    serial: int = field(default_factory=_serial)   # names this shape in plan keys


SHAPES: dict[tuple, Shape] = {}


def mode() -> str:
    """"auto" (scalars that change become inputs), "0" (never), "all" (always)."""
    v = os.environ.get("LAZYTORCH_DYNAMIC_SCALARS", "auto").strip().lower()
    return {"": "auto", "1": "auto", "off": "0", "false": "0"}.get(v, v)


def scalar_positions(key: tuple) -> list[int]:
    """The positions of the key's 0-d constants (a CONST entry: (op, (spelling, device), shape,
    dtype name, sources))."""
    return [i for i, e in enumerate(key) if e[0] is _CONST and not e[2]]


def split(key: tuple) -> tuple[tuple, list[int], tuple]:
    """The key without its 0-d constants' values (its shape), their positions, their values'
    spellings."""
    pos = scalar_positions(key)
    if not pos:
        return key, pos, ()
    shape = list(key)
    for i in pos:
        e = key[i]
        shape[i] = (_CONST, e[1][1], e[2], e[3], e[4])
    return tuple(shape), pos, tuple(key[i][1][0] for i in pos)


def lookup(key: tuple) -> tuple[tuple, list[int]] | None:
    """For a key whose plan is not cached: the key of the plan taking some of its scalars as
    inputs, and their positions in the key; None where the constants stay constants."""
    how = mode()
    if how == "0":
        return None
    shape, pos, values = split(key)
    if not pos:
        return None
    seen = SHAPES.get(shape)
    if seen is None:
        if len(SHAPES) >= _SHAPES_KEPT:
            del SHAPES[next(iter(SHAPES))]
        seen = SHAPES[shape] = Shape(values, frozenset(range(len(pos))) if how == "all"
                                     else frozenset())
    varying_set = seen.varying   # (read once: another thread may widen it meanwhile)
    if how != "all":
        changed = frozenset(j for j, (a, b) in enumerate(zip(seen.first, values)) if a != b)
        if not changed <= varying_set:
            varying_set = seen.varying = varying_set | changed
    if not varying_set:
        return None
    varying = sorted(varying_set)
    fixed = tuple(v for j, v in enumerate(values) if j not in varying_set)
    return ("scalars", seen.serial, tuple(varying), fixed), [pos[j] for j in varying]


def value(spelling: str, d: dt.DType) -> np.ndarray:
    """The 0-d array of dtype d holding the constant spelled `spelling` (a Python scalar's
    repr)."""
    try:
        v = float(spelling) if spelling in ("inf", "-inf", "nan") else ast.literal_eval(spelling)
    except (ValueError, SyntaxError):
        v = float(spelling)
    return dt.astype(np.asarray(v), d)


def inputs_of(key: tuple, positions: list[int], allocator) -> tuple[list, list[int]]:
    """The buffers and addresses holding the scalars of `key` at `positions`, on the memory of
    `allocator`."""
    bufs, addrs = [], []
    for i in positions:
        e = key[i]
        b, a = allocator.from_host(value(e[1][0], dt.by_name(e[3])))
        bufs.append(b)
        addrs.append(a)
    return bufs, addrs


def walk(outputs: list[Node]) -> list[Node]:
    """The nodes of a prepared graph (its leaves buffers and constants) in the order of its
    key: realize.prepare's post-order, sources in order, each node once."""
    order: list[Node] = []
    seen: set[Node] = set()
    for out in outputs:
        stack = [(out, False)]
        while stack:
            n, done = stack.pop()
            if done:
                order.append(n)
                continue
            if n in seen:
                continue
            seen.add(n)
            stack.append((n, True))
            if n.op is not Op.BUFFER:
                stack.extend((s, False) for s in reversed(n.srcs) if s not in seen)
    return order


def with_inputs(outputs: list[Node], inputs: list[Node], key: tuple, positions: list[int],
                device_type: str) -> tuple[list[Node], list[Node]] | None:
    """`outputs` (prepared, with the structure `key`) with the 0-d constants at the key's
    `positions` replaced by new input buffers, appended to `inputs` in that order; None if the
    graph's walk does not match `key`."""
    order = walk(outputs)
    if len(order) != len(key) - 1 or any(
            order[i].op is not _CONST or repr(order[i].arg) != key[i][1][0] for i in positions):
        return None
    device = next((b.device for b in inputs), None) or next(
        (o.device for o in outputs if o.device), device_type)
    new: dict[Node, Node] = {}
    extra = []
    for i in positions:
        c = order[i]
        b = new[c] = memory.placeholder(c.shape, c.dtype, device)
        extra.append(b)
    get = new.get
    for n in toposort(outputs, lambda n: n.op is Op.BUFFER or n in new):
        if n.op is not Op.BUFFER and n not in new:
            srcs = tuple([get(s, s) for s in n.srcs])
            if srcs != n.srcs:
                m = new[n] = new_node(n.op, srcs, n.arg, n.shape, n.dtype, n.device)
                inherit(m, n)
    return [get(o, o) for o in outputs], list(inputs) + extra
