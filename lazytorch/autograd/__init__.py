"""Autograd as a graph transformation.

`loss.backward()` walks the loss's graph from the loss to the leaves that require grad, applies
one rule per Op (autograd_rules.GRAD) and stores the resulting *lazy* gradients in `.grad`.
Nothing runs: forward, backward and the optimizer update are realized together later.

Tracking: a leaf that requires grad has a node of its own (a BUFFER, or a DETACH marker with the
leaf's id), registered in LEAVES. A tensor requires grad when its node depends on such a leaf and
grad mode was on when it was made. Results made under no_grad are wrapped in DETACH so that
later ops on them are not tracked, even though hash-consing shares their nodes.
"""
from __future__ import annotations

import functools
import itertools
import threading
import weakref
from collections import OrderedDict
from typing import Callable, Sequence

from .. import config
from ..ir import sites
from ..ir.graph import Node, NodeTable, const, new_node
from ..ir.ops import Op
from .rules import NO_GRAD

LEAVES: NodeTable = NodeTable()   # node -> weakref(Tensor)
COMPANIONS: list = []  # weakrefs to tensors backward() started from, realized with the next
_tracked = NodeTable()  # node -> bool (memo)
_consumed = NodeTable()  # freed by a backward: when
# node -> when an op last returned it: hash-consing hands a re-run forward (x * w again, while
# the old result is alive) the node a backward consumed; a node made anew is a fresh graph
_born = NodeTable()
_clock = itertools.count(1)
_results = NodeTable()  # nodes ops returned
_leaf_ids = itertools.count(1)
# the tables as dicts by id(node), for the loops that run for every op
_LEAF_D, _TRACKED, _CONSUMED, _BORN, _RESULTS = (LEAVES.d, _tracked.d, _consumed.d, _born.d,
                                                 _results.d)
_STOP = frozenset({Op.BUFFER, Op.CONST, Op.DETACH})  # never tracked (unless a leaf)
_DETACH = Op.DETACH


class _GradState(threading.local):
    enabled = True  # a class default: a missing attribute would cost an exception per lookup


_state = _GradState()


# ------------------------------------------------------------------------------- grad mode
def is_grad_enabled() -> bool:
    return _state.enabled


def _set(mode: bool) -> None:
    _state.enabled = bool(mode)


class _GradMode:
    """Base of no_grad / enable_grad / set_grad_enabled: a context manager and a decorator."""

    mode = True

    def __enter__(self):
        self._prev = is_grad_enabled()
        _set(self.mode)
        return self

    def __exit__(self, *exc):
        _set(self._prev)
        if self._prev and not self.mode and exc[0] is None:
            _flush_updates()
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__() if type(self) is not set_grad_enabled else \
                    set_grad_enabled(self.mode):
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    mode = False


class enable_grad(_GradMode):
    mode = True


class set_grad_enabled(_GradMode):
    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._prev = is_grad_enabled()
        _set(self.mode)  # also works as a plain function call, as in PyTorch

    def __enter__(self):
        return self


class inference_mode(_GradMode):
    def __init__(self, mode: bool = True):
        self.mode = not mode


# ------------------------------------------------------------------------------- updates
# tensors updated in place with grad mode off, by id (a WeakSet would compare tensors with ==)
_updated: dict[int, weakref.ref] = {}


def note_update(t) -> None:
    """Tensor._assign under no_grad: remember t until the no_grad block ends."""
    _updated[id(t)] = weakref.ref(t)


# leaves that require grad, written through .data (or a detach()ed view) with grad mode on, by
# id: their new value is computed before anything reads them (Tensor.node), as an eager
# framework would have it; otherwise the next forward would hold the update's graph, which
# holds the previous forward's, and so on: one training step's graph more at every step
WRITTEN: dict[int, weakref.ref] = {}


def flush_written() -> None:
    """Compute the pending values of the tensors in WRITTEN, in one realize."""
    pending = [t for r in list(WRITTEN.values())
               if (t := r()) is not None and t._node.op is not Op.BUFFER]
    WRITTEN.clear()
    if pending:
        from ..frontend.tensor import realize_tensors
        realize_tensors(pending)


def _flush_updates() -> None:
    """Leaving no_grad: if the block updated a leaf that requires grad in place (an SGD step
    written by hand, `w -= lr * w.grad`), realize everything it updated in one plan, with
    the forward and backward those updates need. Otherwise each step's parameters would be
    graphs holding the previous step's graph: a training loop would grow without bound.
    (optimizer.step() realizes its own updates the same way, at the end of its block.)"""
    if not _updated:
        return
    pending = [t for r in list(_updated.values())
               if (t := r()) is not None and t._node.op is not Op.BUFFER]
    _updated.clear()
    if any(t.requires_grad and t._grad_node is None for t in pending):
        from ..frontend.tensor import realize_tensors
        realize_tensors(pending)


# ------------------------------------------------------------------------------- tracking
def tracked(n: Node) -> bool:
    """Does n depend on a leaf that requires grad (through ops that carry gradients)?"""
    leaves = _LEAF_D
    if not leaves:
        return False
    i = id(n)
    if i in leaves:
        return True
    r = _TRACKED.get(i)  # (never holds a leaf, a buffer or a constant)
    if r is not None:
        return r
    if n.op in _STOP:
        return False
    # memoize n and the nodes under it that are not known yet, sources first
    memo = _TRACKED
    stack = [n]
    while stack:
        m = stack[-1]
        j = id(m)
        if j in memo:
            stack.pop()
            continue
        r = pending = False
        for s in m.srcs:
            k = id(s)
            if k in leaves:
                r = True
            else:
                v = memo.get(k)
                if v is None:
                    if s.op not in _STOP:
                        stack.append(s)
                        pending = True
                elif v:
                    r = True
        if pending:
            continue  # (m comes back once its sources are known)
        stack.pop()
        # integer and boolean results (comparisons, argmax, casts) carry no gradient
        memo[j] = r and m.dtype.kind == "f" and m.op not in NO_GRAD
    return memo[i]


def register_leaf(t) -> None:
    """Make t's current node its own (unique) and remember it as t's leaf node."""
    n = t._node
    if n.op is not Op.BUFFER:
        n = Node(Op.DETACH, (n,), next(_leaf_ids), n.shape, n.dtype)
        t._node = n
    LEAVES[n] = weakref.ref(t)
    _tracked.clear()


def unregister_leaf(t) -> None:
    """requires_grad_(False): ops on t's current node are no longer tracked."""
    ref = LEAVES.get(t._node)
    if ref is not None and ref() is t:
        del LEAVES[t._node]
        _tracked.clear()


def on_new_tensor(t) -> None:
    """Called for every op result: set requires_grad, or cut tracking under no_grad."""
    n = t._node
    if not tracked(n):
        return
    if _state.enabled:
        t._requires_grad = True
        t._grad_node = n
        now = _BORN[id(n)] = next(_clock)
        _RESULTS[id(n)] = True
        consumed = _CONSUMED
        if consumed:
            # the op's internal nodes (a reduction under its reshape, broadcasts) are made
            # anew with it; the results of earlier ops (other tensors' graphs) are not
            born = _BORN
            stack = [*n.srcs]
            while stack:
                m = stack.pop()
                j = id(m)
                c = consumed.get(j)
                if c is not None and born.get(j, 0) < c and j not in _LEAF_D and \
                        j not in _RESULTS:
                    born[j] = now
                    stack.extend(m.srcs)
    else:
        t._node = new_node(_DETACH, (n,), None, n.shape, n.dtype)


def on_assign(t, node: Node, untracked: bool = False) -> Node:
    """An in-place update of t to `node`: returns the node t should hold. `untracked`: the
    write came through a detach()ed view, which autograd does not see (as in PyTorch)."""
    if t._grad_node is None and t.requires_grad:  # a leaf
        if is_grad_enabled():
            if not untracked:
                raise RuntimeError("a leaf Variable that requires grad is being used in an "
                                   "in-place operation.")
            WRITTEN[id(t)] = weakref.ref(t)
        leaf = Node(Op.DETACH, (node,), next(_leaf_ids), node.shape, node.dtype)
        LEAVES[leaf] = weakref.ref(t)
        return leaf
    if is_grad_enabled() and tracked(node):
        t._requires_grad = True
        t._grad_node = node
    elif tracked(node):
        node = Node(Op.DETACH, (node,), None, node.shape, node.dtype)
    return node


# ------------------------------------------------------------------------------- grad_fn
_NAMES = {Op.ADD: "Add", Op.SUB: "Sub", Op.MUL: "Mul", Op.DIV: "Div", Op.NEG: "Neg",
          Op.EXP: "Exp", Op.LOG: "Log", Op.POW: "Pow", Op.SUM: "Sum", Op.RMAX: "Amax",
          Op.RMIN: "Amin", Op.RESHAPE: "View", Op.PERMUTE: "Permute", Op.EXPAND: "Expand",
          Op.TANH: "Tanh", Op.SIGMOID: "Sigmoid", Op.SQRT: "Sqrt", Op.MAX: "Maximum",
          Op.MIN: "Minimum", Op.WHERE: "Where", Op.CAST: "ToCopy", Op.SLICE: "Slice",
          Op.GATHER: "Gather", Op.PAD: "ConstantPadNd", Op.ABS: "Abs", Op.PROD: "Prod",
          Op.CUMSUM: "Cumsum", Op.SIN: "Sin", Op.COS: "Cos"}


class GradFn:
    """The `grad_fn` of a non-leaf tensor: names the op that made it."""

    def __init__(self, node: Node):
        self._node = node

    def name(self) -> str:
        n = self._node
        if n.op is Op.FUNCTION:                  # a custom Function: MyFnBackward, as PyTorch
            from .function import backward_name
            return backward_name(n)
        if n.op is Op.RESHAPE and n.srcs[0].op in _NAMES and n.srcs[0].numel == n.numel and \
                n.srcs[0].op not in (Op.RESHAPE, Op.PERMUTE, Op.EXPAND, Op.SLICE):
            n = n.srcs[0]  # a reduction without keepdim
        return f"{_NAMES.get(n.op, n.op.name.capitalize())}Backward0"

    @property
    def next_functions(self):
        out = []
        for s in self._node.srcs:
            if s in LEAVES:
                out.append((AccumulateGrad(LEAVES[s]()), 0))
            elif tracked(s):
                out.append((GradFn(s), 0))
            else:
                out.append((None, 0))
        return tuple(out)

    def __repr__(self) -> str:
        return f"<{self.name()} object>"


class AccumulateGrad:
    def __init__(self, variable):
        self.variable = variable

    def name(self) -> str:
        return "torch::autograd::AccumulateGrad"


# ------------------------------------------------------------------------------- backward
def _grad_graph(roots: Sequence[Node], grads: Sequence[Node], targets: set[Node] | None,
                retain_graph: bool, hooks: dict | None = None) -> dict[Node, Node]:
    """Gradients of sum(root * grad) for every tracked node on a path to a leaf (`hooks`: the
    tensor hooks by id(node), each run on its node's complete gradient; see register_hook)."""
    leaves, memo, consumed, born = _LEAF_D, _TRACKED, _CONSUMED, _BORN
    # graph.toposort(roots, is_leaf=a leaf or untracked), inlined to ask about each node once:
    # `live` are the nodes needing a gradient in that order, `live_set` all the nodes it has
    live: list[Node] = []
    live_set: set[Node] = set()
    seen: set[int] = set()
    for out in roots:
        if id(out) in seen:
            continue
        stack: list = [(out, None)]
        while stack:
            n, needs = stack.pop()
            if needs is not None:  # (its sources are done)
                live_set.add(n)
                if needs:
                    live.append(n)
                continue
            i = id(n)
            if i in seen:
                continue
            seen.add(i)
            if i in leaves:
                stack.append((n, True))
                continue
            r = memo.get(i)
            needs = tracked(n) if r is None else r
            stack.append((n, needs))
            if needs:
                for s in reversed(n.srcs):
                    if id(s) not in seen:
                        stack.append((s, None))
    for n in live:
        c = consumed.get(id(n))
        if c is not None and born.get(id(n), c) < c:
            _complain("freed", n)
    known: set[Node] = set(grads)
    acc: dict[Node, Node] = {}
    for r, g in zip(roots, grads):
        acc[r] = _add(acc.get(r), g)
    from .rules import GRAD, NO_GRAD
    for n in reversed(live):
        g = acc.get(n)
        if hooks is not None and g is not None and id(n) in hooks:
            g = acc[n] = _run_hooks(hooks[id(n)], g)
        if g is None or id(n) in leaves or (targets is not None and n in targets and
                                            not n.srcs):
            continue
        if n.op in NO_GRAD:
            continue
        rule = GRAD.get(n.op)
        if rule is None:
            _complain("rule", n)
        results = rule(n, g)
        # the nodes this rule built (for debug output: backward, at n's line)
        made, stack = [], [r for r in results if r is not None]
        while stack:
            m = stack.pop()
            if m in known or m in live_set:
                continue
            known.add(m)
            made.append(m)
            stack.extend(m.srcs)
        sites.mark_backward(made, n)
        for s, gs in zip(n.srcs, results):
            if gs is None:
                continue
            i = id(s)
            if i not in leaves:
                r = memo.get(i)
                if not (tracked(s) if r is None else r):
                    continue
            if gs.dtype is not s.dtype:
                gs = new_node(_CAST, (gs,), s.dtype, gs.shape, s.dtype)
            a = acc.get(s)
            acc[s] = gs if a is None else new_node(_ADD, (a, gs), None, a.shape, a.dtype)
    if not retain_graph:
        now = next(_clock)
        for n in live:
            if id(n) not in leaves:
                consumed[id(n)] = now
    return acc


_CAST, _ADD = Op.CAST, Op.ADD


def _complain(what: str, n: Node) -> None:
    """The errors backward raises."""
    if what == "freed":
        raise RuntimeError(
            "Trying to backward through the graph a second time (or directly access saved "
            "tensors after they have already been freed). Saved intermediate values of the "
            "graph are freed when you call .backward() or autograd.grad(). Specify "
            "retain_graph=True if you need to backward through the graph a second time or "
            "if you need to access saved tensors after calling backward.")
    raise RuntimeError(f"derivative for {n.op.name.lower()} is not implemented")


def _add(a: Node | None, b: Node) -> Node:
    return b if a is None else new_node(_ADD, (a, b), None, a.shape, a.dtype)


def _root_grads(tensors, grad_tensors, what: str):
    from ..frontend.tensor import Tensor
    roots, grads = [], []
    for i, (t, g) in enumerate(zip(tensors, grad_tensors)):
        if not t.requires_grad:
            raise RuntimeError(f"element {i} of tensors does not require grad and does not have "
                               "a grad_fn")
        if g is None:
            if t.numel() != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            gn = const(1, t.dtype, tuple(t.shape), t.node.device)   # on the output's device
        else:
            g = g if isinstance(g, Tensor) else Tensor._make(const(g, t.dtype, (),
                                                                     t.node.device))
            if tuple(g.shape) != tuple(t.shape):
                raise RuntimeError(f"Mismatch in shape: grad_output[{i}] has a shape of "
                                   f"{g.shape} and output[{i}] has a shape of {t.shape}.")
            gn = g.node
        roots.append(t._grad_node if t._grad_node is not None else t.node)
        grads.append(gn)
    return roots, grads


def _as_list(x):
    from ..frontend.tensor import Tensor
    if x is None:
        return None
    return [x] if isinstance(x, Tensor) else list(x)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph: bool = False,
             inputs=None) -> None:
    """Accumulate d(sum(tensors * grad_tensors))/d(leaf) into each leaf's .grad (lazily)."""
    done = _backward(tensors, grad_tensors, retain_graph, create_graph, inputs)
    # (after _backward has returned: a realize while its gradient graph is still referenced
    # stores every node of it, unfused; a DDP step took 10x as long)
    for fn in list(_POST_BACKWARD.values()):
        fn(done)


def _backward(tensors, grad_tensors, retain_graph, create_graph: bool, inputs) -> set[int]:
    """backward(); returns the ids of the tensors whose .grad it wrote."""
    from ..frontend.tensor import Tensor
    tensors = _as_list(tensors)
    grad_tensors = _as_list(grad_tensors) or [None] * len(tensors)
    retain = create_graph if retain_graph is None else retain_graph
    roots, grads = _root_grads(tensors, grad_tensors, "backward")
    acc = _walk(roots, grads, retain, create_graph)
    COMPANIONS.extend(weakref.ref(t) for t in tensors)
    wanted = None if inputs is None else {id(t) for t in _as_list(inputs)}
    targets: list[tuple[Tensor, Node]] = []
    # (by id: acc holds its nodes, so an id in both tables is the same live node)
    acc_ids = {id(n): g for n, g in acc.items()}
    for i, ref in list(_LEAF_D.items()):
        t = ref()
        if t is not None and i in acc_ids and (wanted is None or id(t) in wanted):
            targets.append((t, acc_ids[i]))
    for t in _retaining(acc):
        targets.append((t, acc[t._grad_node]))
    with set_grad_enabled(create_graph):
        for t, g in targets:
            gt = Tensor._make(g if create_graph else new_node(_DETACH, (g,), None, g.shape,
                                                            g.dtype))
            if create_graph:
                on_new_tensor(gt)
            if t.grad is None:
                t.grad = gt
            else:
                t.grad = Tensor._make(Node(Op.ADD, (t.grad.node, gt.node), None, g.shape,
                                           g.dtype)) if create_graph else _accumulate(t.grad, gt)
    return {id(t) for t, _ in targets}


# callbacks run when a backward() has accumulated its gradients, given the ids of the tensors
# whose .grad it wrote (DistributedDataParallel averages its gradients across ranks there)
_POST_BACKWARD: OrderedDict[int, Callable[[set[int]], None]] = OrderedDict()


def register_post_backward(fn: Callable[[set[int]], None]):
    """Call `fn(ids)` at the end of every backward(), with the ids of the tensors whose .grad
    it accumulated; returns a handle whose remove() unregisters it."""
    from ..utils.hooks import RemovableHandle
    handle = RemovableHandle(_POST_BACKWARD)
    _POST_BACKWARD[handle.id] = fn
    return handle


def _accumulate(old, new):
    old._node = new_node(_ADD, (old.node, new.node), None, old.shape, old.dtype)
    old._version += 1
    return old


_retain: dict[int, weakref.ref] = {}  # by id: a WeakSet compares tensors with ==


def _retaining(acc):
    alive = [t for r in list(_retain.values()) if (t := r()) is not None]
    return [t for t in alive if t._grad_node is not None and t._grad_node in acc]


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False,
         allow_unused: bool | None = None, is_grads_batched: bool = False,
         materialize_grads: bool = False):
    """The gradients of outputs with respect to inputs, as new (lazy) tensors."""
    from ..frontend.tensor import Tensor
    outputs = _as_list(outputs)
    inputs_l = _as_list(inputs)
    grad_outputs = _as_list(grad_outputs) or [None] * len(outputs)
    retain = create_graph if retain_graph is None else retain_graph
    roots, grads = _root_grads(outputs, grad_outputs, "grad")
    acc = _walk(roots, grads, retain, create_graph)
    result = []
    with set_grad_enabled(create_graph):
        for t in inputs_l:
            if not t.requires_grad:
                raise RuntimeError("One of the differentiated Tensors does not require grad")
            n = t._grad_node if t._grad_node is not None else t.node
            g = acc.get(n)
            if g is None:
                if not (allow_unused or materialize_grads):
                    raise RuntimeError("One of the differentiated Tensors appears to not have "
                                       "been used in the graph. Set allow_unused=True if this "
                                       "is the desired behavior.")
                result.append(Tensor._make(const(0, t.dtype, tuple(t.shape), n.device))
                              if materialize_grads else None)
                continue
            gt = Tensor._make(g if create_graph else Node(Op.DETACH, (g,), None, g.shape,
                                                            g.dtype))
            if create_graph:
                on_new_tensor(gt)
            result.append(gt)
    return tuple(result)


def retain_grad(t) -> None:
    if t._grad_node is None:
        return  # leaves keep .grad anyway
    t._retains_grad = True
    key = id(t)
    _retain[key] = weakref.ref(t, lambda _, k=key: _retain.pop(k, None))


# ------------------------------------------------------------------------------- tensor hooks
# Tensor.register_hook: hooks on a non-leaf live with its node as it was made then (its gradient
# is the node's; an op that returns the node again, hash-consed, makes a fresh graph without
# them, as PyTorch's new grad_fn would be); hooks on a leaf live with the tensor (a leaf's node
# changes with every in-place update)
_NODE_HOOKS: NodeTable = NodeTable()  # node -> (when it was made, OrderedDict(id -> hook))
_LEAF_HOOKS: dict[int, tuple] = {}  # id(tensor) -> (weakref(tensor), OrderedDict)


def register_hook(t, hook):
    """Tensor.register_hook: `hook(grad)` is called with t's gradient (a lazy tensor) when a
    backward() or autograd.grad() computes it, and may return a tensor to use instead; a
    leaf's hooks run before its gradient is accumulated into .grad. Returns a handle whose
    remove() unregisters the hook."""

    from ..utils.hooks import RemovableHandle
    if not t.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    if t._grad_node is not None:
        n = t._grad_node
        born = _BORN.get(id(n))
        entry = _NODE_HOOKS.get(n)
        if entry is None or entry[0] != born:
            entry = _NODE_HOOKS[n] = (born, OrderedDict())
        table = entry[1]
    else:
        entry = _LEAF_HOOKS.get(id(t))
        if entry is None:
            key = id(t)
            ref = weakref.ref(t, lambda _, k=key: _LEAF_HOOKS.pop(k, None))
            entry = _LEAF_HOOKS[key] = (ref, OrderedDict())
        table = entry[1]
    handle = RemovableHandle(table)
    table[handle.id] = hook
    return handle


def _hook_table() -> dict | None:
    """The registered hooks by id(node) (leaves' by their current node), or None."""
    table = {}
    for i, (born, hooks) in list(_NODE_HOOKS.d.items()):
        if _BORN.get(i) != born or not hooks:
            _NODE_HOOKS.d.pop(i, None)  # made again since (a fresh graph), or all removed
        else:
            table[i] = hooks
    for ref, hooks in list(_LEAF_HOOKS.values()):
        t = ref()
        if t is not None and hooks and id(t._node) in _LEAF_D:
            table[id(t._node)] = hooks
    return table or None


def _run_hooks(hooks, g: Node) -> Node:
    from ..frontend.tensor import Tensor
    for hook in list(hooks.values()):
        out = hook(Tensor._make(g))
        if out is None:
            continue
        if not isinstance(out, Tensor):
            raise TypeError(f"hook '{getattr(hook, '__name__', hook)}' returned an object of "
                            f"type {type(out).__name__}, but a Tensor or None was expected")
        if tuple(out.shape) != g.shape:
            raise RuntimeError(f"hook '{getattr(hook, '__name__', hook)}' has changed the size "
                               f"of value")
        g = out.node if out.dtype is g.dtype else \
            new_node(_CAST, (out.node,), g.dtype, g.shape, g.dtype)
    return g


def _walk(roots, grads, retain: bool, create_graph: bool) -> dict[Node, Node]:
    """_grad_graph, through the Python walk (which runs hooks) when hooks are registered;
    hooks run with grad mode on only for create_graph, as PyTorch's."""
    hooks = _hook_table() if (_NODE_HOOKS.d or _LEAF_HOOKS) else None
    if hooks is None:
        return _grad_graph(roots, grads, None, retain)
    with set_grad_enabled(create_graph):
        return _grad_graph(roots, grads, None, retain, hooks)


class detect_anomaly:
    """Context manager: realize op by op on the interpreter and stop at the first op, forward or
    backward, that makes nan or inf, naming it and the user line that created it."""

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan

    def __enter__(self):
        self._ctx = config._setting("anomaly", self.check_nan)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)
        return False


def set_detect_anomaly(mode: bool) -> None:
    config._local.anomaly = bool(mode)


def is_anomaly_enabled() -> bool:
    return config.anomaly_mode()
