"""The multi-tensor update (`foreach=True`, `fused=True`): one parameter group's update recorded
once and instantiated for every parameter.

The per-parameter path records each parameter's update op by op through the tensor API (about
twenty ops for Adam, each with its broadcasting, type promotion, autograd and source-line
bookkeeping). Here the parameters of a group are bucketed by what the update's graph depends on
(dtypes, device, which state they hold); the first parameter of a bucket is updated by the
per-parameter code, and the graph it recorded becomes a template: the nodes between its inputs
(the parameter, its gradient and its state tensors as they were before the step) and its
outputs (their new values). Every other parameter of the bucket gets the template's nodes
rebuilt on its own inputs and shape, one `new_node` per node, which is the same graph the
per-parameter code would have recorded for it (the same ops in the same order, so the same
numbers): the update of a whole group costs one recording plus a substitution loop.

A template is only made of elementwise ops, casts, constants and the reshapes and expands that
broadcast scalars, with every shape the template parameter's, all ones of its rank, or 0-d: what
a parameter's shape changes is then unambiguous. Anything else (a first step that creates the
state, a view parameter, a reduction) keeps the per-parameter path, as does eager (op by op)
mode. The rebuilt nodes carry the template's source lines, so errors, the printed IR and the
profiler name the user's `optimizer.step()` line as for the per-parameter path.
"""
from __future__ import annotations

from typing import Any

from ..config import eager_mode
from ..frontend.tensor import Tensor
from ..ir.graph import Node, new_node, toposort
from ..ir.ops import COMPARE, ELEMENTWISE, Op
from ..ir.sites import SITES

__all__ = ["foreach_enabled", "update_group_foreach"]

_DETACH, _RESHAPE, _EXPAND = Op.DETACH, Op.RESHAPE, Op.EXPAND
# the ops a template may rebuild (a DETACH only as autograd's cut, whose arg is None, or as an
# intermediate in-place write to the parameter, rebuilt as a cut)
_TEMPLATE_OPS = frozenset(ELEMENTWISE | COMPARE | {Op.RESHAPE, Op.EXPAND, Op.CAST, Op.CONST,
                                                   Op.DETACH})
_SITES_D = SITES.d
_NONE: dict = {}   # the state of a parameter that has none (read, never written)


def foreach_enabled(opt, group: dict[str, Any]) -> bool:
    """Whether `group`'s update takes the multi-tensor path: asked for by `foreach=True` or
    `fused=True`, or by default (both None) for the optimizers that have it, except in eager
    mode (each op runs as it is recorded) and for `differentiable` groups."""
    if not getattr(opt, "_FOREACH", False) or group.get("differentiable"):
        return False
    foreach, fused = group.get("foreach"), group.get("fused")
    if foreach is None and fused is None:
        wanted = opt._FOREACH_DEFAULT
    else:
        wanted = bool(foreach) or bool(fused)
    return wanted and eager_mode() is None


def _signature(p: Tensor, state: dict) -> tuple | None:
    """What the update graph of p depends on besides p's shape, or None if p must take the
    per-parameter path (no gradient, a view, a complex dtype, state that is not a tensor of p's
    shape or 0-d, inputs that share a node: a template maps each input node to one role)."""
    g = p.grad
    if g is None or p._base is not None or g._base is not None or p.dtype.kind != "f" or \
            g.shape != p.shape:
        return None
    parts = [p.dtype, g.dtype, p._node.device, p.requires_grad, p.ndim == 0]
    nodes = {id(p._node), id(g._node)}
    for k in sorted(state):
        v = state[k]
        if not isinstance(v, Tensor) or v._base is not None or \
                (v.shape != p.shape and v.ndim != 0):
            return None
        parts.append((k, v.dtype, v.ndim == 0))
        nodes.add(id(v._node))
    if len(nodes) != 2 + len(state):
        return None  # (two inputs are one node, as SGD's first momentum buffer and its grad)
    return tuple(parts)


def _inputs(p: Tensor, state: dict, keys: list[str]) -> list[Tensor]:
    return [p, p.grad] + [state[k] for k in keys]


class _Template:
    """One parameter's update graph as a function of its inputs' nodes (see the module's
    docstring); `instantiate` records it for another parameter of the same bucket."""

    __slots__ = ("keys", "inputs", "nodes", "outputs", "shape", "ones")

    def __init__(self, keys: list[str], inputs: list[Node], nodes: list[Node],
                 outputs: list[tuple[int, Node]], shape: tuple[int, ...]) -> None:
        self.keys, self.inputs, self.nodes, self.outputs = keys, inputs, nodes, outputs
        self.shape, self.ones = shape, (1,) * len(shape)

    @classmethod
    def build(cls, keys: list[str], inputs: list[Node], outputs: list[tuple[int, Node]],
              shape: tuple[int, ...]) -> _Template | None:
        """The template of the graph from `inputs` to `outputs`, or None where it cannot be
        trusted for other shapes."""
        ones = (1,) * len(shape)
        if not shape or shape == ones:
            return None  # (its shapes would be ambiguous)
        is_input = set(map(id, inputs))
        order = toposort([n for _, n in outputs], is_leaf=lambda n: id(n) in is_input)
        rebuilt: set[int] = set(is_input)
        nodes = []
        for n in order:
            if id(n) in is_input:
                continue
            depends = any(id(s) in rebuilt for s in n.srcs)
            if not depends and n.shape != shape and n.shape != ones:
                continue  # (the same for every parameter: learning rate, bias corrections)
            if n.op not in _TEMPLATE_OPS or (n.shape != shape and n.shape != ones and n.shape):
                return None
            if n.op is _DETACH and n.arg is not None and not isinstance(n.arg, int):
                return None
            rebuilt.add(id(n))
            nodes.append(n)
        return cls(keys, inputs, nodes, outputs, shape)

    def instantiate(self, tensors: list[Tensor], updated: list[Tensor]) -> None:
        """Record the update for the parameter whose inputs are `tensors` (as _inputs orders
        them) and assign its outputs."""
        m = {id(a): b._node for a, b in zip(self.inputs, tensors)}
        shape0, ones0 = self.shape, self.ones
        shape = tensors[0]._node.shape
        ones = (1,) * len(shape)
        sites = _SITES_D
        for n in self.nodes:
            srcs = tuple([m.get(id(s), s) for s in n.srcs])
            s = n.shape
            s = shape if s == shape0 else ones if s == ones0 and s else s
            op, arg = n.op, n.arg
            if op is _RESHAPE or op is _EXPAND:
                arg = shape if arg == shape0 else ones if arg == ones0 else arg
            elif op is _DETACH and arg is not None:
                arg = None  # an intermediate write to the parameter: only its last is a leaf
            new = new_node(op, srcs, arg, s, n.dtype)
            m[id(n)] = new
            site = sites.get(id(n))
            if site is not None and id(new) not in sites:
                sites[id(new)] = site
        for role, out in self.outputs:
            t = tensors[role]
            t._assign(m.get(id(out), out))
            updated.append(t)


def update_group_foreach(opt, group: dict[str, Any], updated: list[Tensor]) -> None:
    """`opt._update_group(group, updated)` through templates: the same updates, recorded once per
    bucket of parameters whose update graphs differ only by shape.

    The parameters that are recorded (each bucket's first, and those that cannot take a
    template) are recorded by one `_update_group` call, so they share the group's per-step
    scalars (learning rate, bias corrections) as on the per-parameter path, and the templates
    reuse them: the whole graph is the one the per-parameter path records."""
    state = opt.state
    buckets: dict[tuple, list[Tensor]] = {}
    recorded: list[Tensor] = []
    for p in group["params"]:
        if p.grad is None:
            continue
        sig = _signature(p, state.get(p, _NONE))
        if sig is None:
            recorded.append(p)
            continue
        params = buckets.get(sig)
        if params is None:
            params = buckets[sig] = []
            recorded.append(p)
        params.append(p)
    firsts = []
    for params in buckets.values():
        if len(params) > 1:
            first = params[0]
            keys = sorted(state.get(first, _NONE))
            before = _inputs(first, state.get(first, _NONE), keys)
            firsts.append((params, keys, before, [t._node for t in before]))
    start = len(updated)
    opt._update_group({**group, "params": recorded}, updated)
    written = updated[start:]
    later: list[Tensor] = []
    for params, keys, before, inputs in firsts:
        first = params[0]
        template = None
        if sorted(state.get(first, _NONE)) == keys:
            template = _template(before, inputs, keys, written, first.shape)
        if template is None:
            later += params[1:]
            continue
        for p in params[1:]:
            template.instantiate(_inputs(p, state.get(p, _NONE), keys), updated)
    if later:
        opt._update_group({**group, "params": later}, updated)
    # in the per-parameter path's order (the order of the realize's outputs, which the
    # schedule follows)
    rank: dict[int, int] = {}
    for i, p in enumerate(group["params"]):
        rank[id(p)] = i
        for v in state.get(p, _NONE).values():
            rank.setdefault(id(v), i)
    updated[start:] = sorted(updated[start:], key=lambda t: rank.get(id(t), -1))


def _template(before: list[Tensor], inputs: list[Node], keys: list[str],
              written: list[Tensor], shape: tuple[int, ...]) -> _Template | None:
    """The template of the update of `before[0]`, whose written tensors are those of `written`
    that are among `before` (the others are other parameters' and their state), or None."""
    roles = {id(t): i for i, t in enumerate(before)}
    outputs: list[tuple[int, Node]] = []
    seen: set[int] = set()
    for t in written:
        role = roles.get(id(t))
        if role is None:
            continue
        if role == 1:
            return None  # (an update that writes the gradient)
        if role in seen:
            continue
        seen.add(role)
        out = t._node
        if role == 0 and out.op is _DETACH and isinstance(out.arg, int):
            out = out.srcs[0]  # the parameter's leaf node: its value is under it
        outputs.append((role, out))
    return _Template.build(keys, inputs, outputs, tuple(shape))
