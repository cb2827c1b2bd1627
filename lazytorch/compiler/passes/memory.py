"""Memory planning: intermediate buffers of one realize share storage once they are dead."""
from __future__ import annotations

from ...ir.graph import Node


def plan_memory(order: list[tuple[Node, list[Node]]], keep: set[Node]) -> dict[Node, int]:
    """Assign each stored node an arena slot; a slot is reused once its node is last read.

    `order` is the kernel sequence as (stored node, nodes it reads); nodes in `keep` (outputs)
    get slots of their own. Slots are only shared between nodes of equal byte size.
    """
    last: dict[Node, int] = {}
    for i, (_, reads) in enumerate(order):
        for r in reads:
            last[r] = i
    slots: dict[Node, int] = {}
    free: dict[int, list[int]] = {}
    sizes: list[int] = []
    for i, (out, reads) in enumerate(order):
        nbytes = out.numel * out.dtype.itemsize
        pool = free.get(nbytes)
        if out not in keep and pool:
            slots[out] = pool.pop()
        else:
            slots[out] = len(sizes)
            sizes.append(nbytes)
        for r in reads:
            if r in slots and r not in keep and last.get(r) == i and slots[r] != slots[out]:
                free.setdefault(r.numel * r.dtype.itemsize, []).append(slots[r])
        if out not in keep and out not in last:  # stored but never read
            free.setdefault(nbytes, []).append(slots[out])
    return slots
