"""Realized data: each BUFFER node's array lives in a side table for as long as the node does."""
from __future__ import annotations

import itertools
import weakref

import numpy as np

from .. import dtypes as dt
from ..graph import Node
from ..ops import Op

_DATA: dict[int, np.ndarray] = {}
_ids = itertools.count()


def buffer_node(arr: np.ndarray, dtype: dt.DType | None = None) -> Node:
    """A new BUFFER node owning `arr` (C-contiguous, in the node's dtype; not copied if it
    already is)."""
    d = dtype or dt.from_numpy(arr.dtype)
    arr = np.asarray(arr)
    if arr.dtype != d.np:
        arr = arr.astype(d.np)
    if not arr.flags.c_contiguous:
        arr = arr.copy(order="C")
    bid = next(_ids)
    node = Node(Op.BUFFER, (), bid, tuple(arr.shape), d)
    _DATA[bid] = arr
    weakref.finalize(node, _DATA.pop, bid, None)
    return node


def data(node: Node) -> np.ndarray:
    return _DATA[node.arg]


def live_buffers() -> int:
    return len(_DATA)
