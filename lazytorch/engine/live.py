"""Live state: the values a realize computes that something outside its graph still holds.

A realize computes a graph; some of its inner values are also held by live tensors (a hidden
state kept for the next step, a parameter updated through `.data`, a corpus built once) or by
graphs still pending. If those values were computed and dropped, the next realize would compute
them again, and a value that the next step builds on would carry every earlier step's graph:
an eager program that runs in constant time per step would grow quadratic. So such values are
stored as extra outputs of the same plan, remembered in `realize.REALIZED`, and a tensor holding
one is rebound to its buffer the next time it is used (`Tensor.node`).

Who holds a node is read from its reference count: the references the graph itself accounts
for (its consumers in the graph, their rebuilt copies, the walk's two lists) are subtracted; any
other reference is a holder outside the graph. Misjudging costs time (a value stored that was
not needed again, or computed twice), never a wrong value.
"""
from __future__ import annotations

import sys

from ..ir.ops import STRIDED, VIEW, Op

# ops that compute nothing: a node built only from these over buffers and constants is not
# worth storing (its value is a view, or a copy numpy makes when it is asked for)
FREE_OPS = VIEW | {Op.CONST}

# ops that make a view of their one source; a held chain of them that broadcasts or reorders
# holds the computed value beneath instead
VIEW_OPS = STRIDED | {Op.DETACH}
_TO_BASE = {Op.EXPAND, Op.PERMUTE}


def held_bases(held: list[int], key: tuple) -> list[int]:
    """The values to store for the held nodes `held`. A held broadcast or transpose of a
    computed value stands for that value (stored once; the view of its buffer is free), as a
    PyTorch view keeps its base's storage: storing the view itself would copy it, at its full
    size for a broadcast (a matmul's input expanded against the weight, which the weight's
    pending gradient holds, is hundreds of times the input). Reshapes and slices are stored
    as they are (the plan keeps them views of the stored value)."""
    outs = set(key[-1])
    found: dict[int, None] = {}
    for i in held:
        j, moved = i, False
        while key[j][0] in VIEW_OPS:
            moved = moved or key[j][0] in _TO_BASE
            j = key[j][4][0]
        if moved:
            i = j
        if i not in outs:
            found[i] = None
    return list(found)


def held_py(order: list, order_new: list, key: tuple) -> list[int]:
    """The numbers (in `key`, from prepare) of the computed nodes that something outside the
    graph holds, outputs excepted."""
    outs = set(key[-1])
    size = len(order)
    refs = [0] * size           # references the graph accounts for, beyond the two lists
    changed = [False] * size
    free = [False] * size
    for i in range(size):
        e = key[i]
        changed[i] = order_new[i] is not order[i]
        if e[0] == "B":
            free[i] = True
            continue
        srcs = e[4]
        free[i] = e[0] in FREE_OPS and all(free[s] for s in srcs)
        ch = changed[i]
        for s in srcs:
            refs[s] += 1                    # the consumer's own srcs
            if ch and not changed[s]:
                refs[s] += 1                # its rebuilt copy's srcs
    found = []
    getrefcount = sys.getrefcount
    for i in range(size):
        if free[i] or i in outs:
            continue
        n = order[i]
        # the lists: order (and order_new, where n stands for itself); here: n and the argument
        own = 2 if changed[i] is False else 1
        if getrefcount(n) - 2 - own > refs[i]:
            found.append(i)
        n = None
    return found
