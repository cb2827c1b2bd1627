"""log_softmax and cross_entropy's common case built node by node and recorded as one op.

They build exactly the nodes the composition of tensor ops in functional_activation and loss
builds (hash-consing makes them the same objects: tests check it), so kernels and gradients
are the same; what goes is the work each tensor op does around its nodes (a tensor, a
source-line walk, an autograd check), about 20 times per cross_entropy call.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ..frontend.elementwise import expand_node
from ..frontend.reduce import reduce_node
from ..ir import dtypes as dt
from ..ir.graph import Node, const, new_node
from ..ir.ops import Op
from ..runtime import memory

_SUB, _EXP, _LOG, _DETACH, _RESHAPE = Op.SUB, Op.EXP, Op.LOG, Op.DETACH, Op.RESHAPE
_CMPNE, _CMPEQ, _AND, _WHERE, _NEG, _CAST, _DIV = (Op.CMPNE, Op.CMPEQ, Op.AND, Op.WHERE, Op.NEG,
                                                   Op.CAST, Op.DIV)
_I64, _BOOL = dt.int64, dt.bool_

# (class count, device) -> the BUFFER node of arange(count) (int64) there: one per class count
# and device, kept, so that a training loop's loss reuses it rather than making a buffer each step
_IOTA: OrderedDict[tuple[int, str], Node] = OrderedDict()
_IOTA_KEEP = 64


def iota(c: int, device: str | None) -> Node:
    """arange(c) as int64 on `device` (None: the CPU), shared by every loss over c classes
    there (never written to)."""
    key = (c, device or "cpu")
    n = _IOTA.get(key)
    if n is None:
        arr = np.arange(c, dtype=np.int64)
        arr.flags.writeable = False
        n = _IOTA[key] = memory.buffer_node(arr, device=key[1])
        if len(_IOTA) > _IOTA_KEEP:
            _IOTA.popitem(last=False)
    else:
        _IOTA.move_to_end(key)
    return n


def _sub(a: Node, b: Node) -> Node:
    """a - b, b broadcast to a's shape (a tensor op between tensors of one float dtype)."""
    return new_node(_SUB, (a, expand_node(b, a.shape)), None, a.shape, a.dtype)


def log_softmax_node(x: Node, dim: int) -> Node:
    """x - max(x).detach() - log(sum(exp(x - max(x).detach()))) along dim (x float)."""
    m = reduce_node(Op.RMAX, x, (dim,), True)
    z = _sub(x, new_node(_DETACH, (m,), None, m.shape, m.dtype))
    s = reduce_node(Op.SUM, new_node(_EXP, (z,), None, z.shape, z.dtype), (dim,), True)
    return _sub(z, new_node(_LOG, (s,), None, s.shape, s.dtype))


def _unsqueeze1(n: Node) -> Node:
    shape = n.shape[:1] + (1,) + n.shape[1:]
    return new_node(_RESHAPE, (n,), shape, shape, n.dtype)


def _sum_all(n: Node) -> Node:
    return reduce_node(Op.SUM, n, tuple(range(len(n.shape))), False)


def nll_node(logp: Node, target: Node, ignore_index: int, reduction: str) -> Node:
    """nll_loss of log-probabilities logp (N, C, d...) against int64 class indices target
    (N, d...), without class weights: loss._nll's nodes."""
    c, f, full = logp.shape[1], logp.dtype, logp.shape
    cls = (c,) + (1,) * (len(full) - 2)
    valid = new_node(_CMPNE, (target, const(ignore_index, _I64, target.shape)), None,
                     target.shape, _BOOL)
    ar = iota(c, logp.device)
    ar = new_node(_RESHAPE, (ar,), cls, cls, _I64)
    hit = new_node(_CMPEQ, (expand_node(_unsqueeze1(target), full), expand_node(ar, full)), None,
                   full, _BOOL)
    mask = new_node(_AND, (hit, expand_node(_unsqueeze1(valid), full)), None, full, _BOOL)
    picked = new_node(_WHERE, (mask, logp, const(0.0, f, full)), None, full, f)
    loss = new_node(_NEG, (reduce_node(Op.SUM, picked, (1,), False),), None,
                    full[:1] + full[2:], f)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return _sum_all(loss)
    w = new_node(_CAST, (valid,), f, valid.shape, f)
    return new_node(_DIV, (_sum_all(loss), _sum_all(w)), None, (), f)
