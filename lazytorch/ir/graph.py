"""The IR: one immutable, hash-consed Node type, a Graph of output nodes, and the IR printer."""
from __future__ import annotations

import math
import weakref
from typing import Any, Iterable

from .dtypes import DType, scalar_value
from .ops import Op

Shape = tuple[int, ...]


class Node:
    """One operation: `op` applied to `srcs` with a static `arg`, giving `shape` and `dtype` on
    `device`.

    Nodes are hash-consed: building the same (op, srcs, arg, shape, dtype) twice returns the same
    object, so equality is identity and common subexpressions are shared for free. Side data
    (source lines, realized buffers) lives in side tables keyed by node, never in the node.

    `device` is "cpu" or "<type>:<index>" ("cuda:0"). A source (BUFFER, CONST) keeps the device
    it is given (a CONST may have none: a Python scalar, placed where it is used); any other
    node is on the common device of its sources, and sources on two devices are refused. (A
    FUNCTION node is its first source's value: its other sources are autograd's edges to a
    custom Function's inputs, which may be elsewhere, as a copy between devices has them.)
    """

    __slots__ = ("op", "srcs", "arg", "shape", "dtype", "device", "__weakref__")
    # key -> weakref to the live node; the weakref's callback drops the entry
    _cache: dict = {}

    op: Op
    srcs: tuple[Node, ...]
    arg: Any
    shape: Shape
    dtype: DType
    device: str | None

    def __new__(cls, op: Op, srcs: tuple[Node, ...], arg: Any, shape: Shape, dtype: DType,
                device: str | None = None):
        return new_node(op, srcs, arg, shape, dtype, device)

    def __setattr__(self, name, value):
        raise AttributeError("Node is immutable")

    def __reduce__(self):
        return (Node, (self.op, self.srcs, self.arg, self.shape, self.dtype, self.device))

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def __repr__(self) -> str:
        return f"Node({self.op.name}, {_fmt_type(self)})"


_CACHE = Node._cache
# the slots' own setters (Node.__setattr__ refuses): cheaper than object.__setattr__ by name
_SLOTS = ("op", "srcs", "arg", "shape", "dtype", "device")
_set_op, _set_srcs, _set_arg, _set_shape, _set_dtype, _set_device = (
    Node.__dict__[k].__set__ for k in _SLOTS)
# (an Enum member lookup costs a Python call on 3.11: bind them once)
_OP_CONST, _OP_FUNCTION = Op.CONST, Op.FUNCTION
# the side tables' dicts by id(node) (NodeTable.d): a node's entries are dropped when it dies, by
# its hash-consing entry's callback (every node has one), before its id can be reused
ID_TABLES: list[dict] = []


def new_node(op: Op, srcs: tuple[Node, ...], arg: Any, shape: Shape, dtype: DType,
             device: str | None = None) -> Node:
    """Node(op, srcs, arg, shape, dtype, device) as a plain function: the same hash-consed node,
    without the cost of calling a class (for the paths that record every op). `device` places a
    source; a node with sources takes theirs (their common one: two raise PyTorch's error)."""
    # (a node with sources is keyed without its device: they determine it)
    key = (op, srcs, arg, shape, dtype) if srcs else \
        (op, srcs, (type(arg), repr(arg)) if op is _OP_CONST else arg, shape, dtype, device)
    ref = _CACHE.get(key)
    if ref is not None:
        node = ref()
        if node is not None:
            return node
    if srcs:   # (a node found above was checked when it was made)
        device = srcs[0].device
        if len(srcs) > 1 and op is not _OP_FUNCTION:
            for s in srcs:
                d = s.device
                if d is not device and d is not None:
                    if device is not None and d != device:
                        raise mixed_devices(device, d)
                    device = d
    node = _new(Node)
    _set_op(node, op)
    _set_srcs(node, srcs)
    _set_arg(node, arg)
    _set_shape(node, shape)
    _set_dtype(node, dtype)
    _set_device(node, device)
    ref = _CACHE[key] = _Ref(node, _dead)
    ref.key = key
    ref.id = id(node)
    return node


_new = object.__new__
new_node_py = new_node   # the reference for the compiled one (see use_native)


def mixed_devices(a: str, b: str) -> RuntimeError:
    """PyTorch's error for an op whose inputs are on devices `a` and `b`."""
    return RuntimeError(f"Expected all tensors to be on the same device, but found at least two "
                        f"devices, {a} and {b}!")


class _Ref(weakref.ref):
    """The hash-consing table's weak reference to a node: its key, and the node's id."""

    __slots__ = ("key", "id")


def _dead(r: _Ref, cache=_CACHE, tables=ID_TABLES) -> None:
    # uses only its defaults: it may run while the interpreter shuts down
    live = cache.pop(r.key, r)  # (one hash of the key: the entry is nearly always r)
    if live is not r:
        cache[r.key] = live
    i = r.id
    for t in tables:
        if t and i in t:
            del t[i]


class NodeTable:
    """A map keyed by node identity whose entries vanish with their nodes: the side tables'
    WeakKeyDictionary, without a weakref per entry. It is a plain dict by id(node) (`d`, which
    hot loops and the compiled host loops read directly: id(node) -> value), registered in
    ID_TABLES, which the hash-consing table's callback clears of a node's entries as it dies."""

    __slots__ = ("d",)

    def __init__(self):
        self.d: dict[int, Any] = {}
        ID_TABLES.append(self.d)

    def __contains__(self, n: Node) -> bool:
        return id(n) in self.d

    def get(self, n: Node, default: Any = None) -> Any:
        return self.d.get(id(n), default)

    def __getitem__(self, n: Node) -> Any:
        try:
            return self.d[id(n)]
        except KeyError:
            raise KeyError(n) from None

    def __setitem__(self, n: Node, value: Any) -> None:
        self.d[id(n)] = value

    def __delitem__(self, n: Node) -> None:
        try:
            del self.d[id(n)]
        except KeyError:
            raise KeyError(n) from None

    def add(self, n: Node) -> None:
        """Use as a set: n is in the table."""
        self.d[id(n)] = True

    def pop(self, n: Node, *default: Any) -> Any:
        try:
            return self.d.pop(id(n))
        except KeyError:
            if default:
                return default[0]
            raise KeyError(n) from None

    def __len__(self) -> int:
        return len(self.d)

    def __bool__(self) -> bool:
        return bool(self.d)

    def clear(self) -> None:
        self.d.clear()


_CONSTS: dict = {}


def const(value: Any, dtype: DType, shape: Shape = (), device: str | None = None) -> Node:
    """A constant, broadcast to `shape` (a CONST of shape () expanded, so it costs no memory),
    on `device` (None: a scalar, placed by what it meets)."""
    # floats by spelling where == cannot tell them apart: 0.0 == -0.0, and nan != nan
    key = (type(value), value if not isinstance(value, float) or (value == value and value != 0.0)
           else repr(value), dtype, shape, device)
    node = _CONSTS.get(key)
    if node is not None:
        return node
    v = scalar_value(value, dtype)
    node = Node(Op.CONST, (), v, (), dtype, device)
    if shape != ():
        ones = (1,) * len(shape)
        node = Node(Op.EXPAND, (Node(Op.RESHAPE, (node,), ones, ones, dtype),), shape, shape,
                    dtype)
    if len(_CONSTS) < 8192:  # the scalars a program uses, kept alive: they are tiny
        _CONSTS[key] = node
    return node


def toposort(outputs: Iterable[Node], is_leaf=None) -> list[Node]:
    """Nodes reachable from `outputs`, sources before users; `is_leaf(n)` stops the walk at n.

    A depth-first walk with an explicit stack (graphs can be deeper than Python's recursion
    allows); each node is visited once. Compiled (runtime/native) unless that is off."""
    return _toposort(outputs, is_leaf)


def toposort_py(outputs: Iterable[Node], is_leaf=None) -> list[Node]:
    """toposort() in Python: a stack of source iterators."""
    order: list[Node] = []
    append = order.append
    seen: set[int] = set()
    mark = seen.add
    none = iter(())
    for out in outputs:
        if id(out) in seen:
            continue
        mark(id(out))
        stack = [(out, none if is_leaf is not None and is_leaf(out) else iter(out.srcs))]
        while stack:
            node, it = stack[-1]
            for s in it:
                if id(s) not in seen:
                    mark(id(s))
                    stack.append((s, none if is_leaf is not None and is_leaf(s)
                                  else iter(s.srcs)))
                    break
            else:
                stack.pop()
                append(node)
    return order


_toposort = toposort_py


class Graph:
    """A program: the nodes needed to compute `outputs`, in topological order."""

    __slots__ = ("outputs", "nodes")

    def __init__(self, outputs: Iterable[Node], nodes: Iterable[Node] | None = None):
        self.outputs: tuple[Node, ...] = tuple(outputs)
        self.nodes: tuple[Node, ...] = tuple(toposort(self.outputs) if nodes is None else nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        return format_graph(self)

    def users(self) -> dict[Node, list[Node]]:
        out: dict[Node, list[Node]] = {n: [] for n in self.nodes}
        for n in self.nodes:
            for s in n.srcs:
                if s in out and (not out[s] or out[s][-1] is not n):
                    out[s].append(n)
        return out


def _fmt_type(n: Node) -> str:
    return f"{n.dtype.short}[{','.join(map(str, n.shape))}]"


def _fmt_arg(n: Node) -> str:
    a = n.arg
    if n.op is Op.BUFFER:
        return f"#{a}"
    if n.op is Op.CAST:
        return a.short
    if n.op is Op.PAD:
        return f"{list(a[0])} value={a[1]!r}"
    if isinstance(a, tuple):
        return "(" + ", ".join(map(str, a)) + ("," if len(a) == 1 else "") + ")"
    return repr(a)


def format_graph(g: Graph, names: dict[Node, str] | None = None, comments=None) -> str:
    """Print a graph as a readable program: `%3: f32[4,4] = add %1 %2`, one line per node
    (a node on a device other than the CPU shows it: `%3: f32[4,4]@cuda:0 = ...`).

    Names are numbered in topological order, so the text is stable for golden tests.
    `comments(node)` may return a string shown after `#` (e.g. the user's source line).
    """
    names = {} if names is None else dict(names)
    lines = []
    for n in g.nodes:
        if n in names:
            continue
        names[n] = f"%{len(names)}"
        parts = [n.op.name.lower()] + [names.get(s, "?") for s in n.srcs]
        if n.arg is not None:
            parts.append(_fmt_arg(n))
        dev = "" if n.device is None or n.device == "cpu" else f"@{n.device}"
        line = f"{names[n]}: {_fmt_type(n)}{dev} = {' '.join(parts)}"
        if comments is not None and (c := comments(n)):
            line += f"  # {c}"
        lines.append(line)
    lines.append("return " + ", ".join(names[o] for o in g.outputs))
    return "\n".join(lines)


def use_native(mod) -> None:
    """The compiled constructor, death callback and toposort (runtime/native/graph.c) take over
    from new_node, _dead and toposort_py (both share the cache, its key format and its weakref
    type, so their nodes are one population). runtime/native calls it when `import lazytorch`
    begins, before any other module binds new_node by name."""
    global new_node, _dead, _toposort
    mod.setup_graph(_CACHE, ID_TABLES, Node, _Ref,
                    tuple(Node.__dict__[k] for k in _SLOTS),
                    (_Ref.__dict__["key"], _Ref.__dict__["id"]), mod.dead, Op.CONST,
                    Op.FUNCTION)
    mod.fast_slots(Node, ("op", "srcs", "arg", "shape", "dtype"))
    mod.fast_slots(_Ref, ("key", "id"))
    mod.fast_slots(DType, ("name",))
    _dead = mod.dead
    new_node = mod.new_node
    _toposort = mod.toposort
