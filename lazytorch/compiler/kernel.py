"""The kernel IR: a loop nest over an output, an optional reduce or scan loop, SSA values.

A Kernel is backend-neutral: the C renderer (and later a CUDA renderer) print the same object.
`lower_kernel` builds one from the IR node it stores, walking its sources down to nodes that are
already buffers; movement ops become index arithmetic (see symbolic.py), so views cost no copy.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Any, Callable

from ..ir import dtypes as dt
from ..ir.graph import Node, toposort
from ..ir.ops import ELEMENTWISE, REDUCE, SCAN, Op
from .symbolic import Data, Lin, Var, reshape_index

Cond = tuple[Lin, int, int]  # lo <= expr < hi

# where a kernel's rendered code names its function: the code is rendered once and named as
# the kernel (`source`) or as the symbol a plan derives from the code's hash (`named`)
FNAME = "@fn@"


@dataclass(eq=False)
class Val:
    """An SSA value. kind: load | const | alu | acc | idx.

    load: arg = (param index, Lin index, conds); conds guard the read (outside them it reads 0)
    const: arg = Python value; alu: op over srcs (WHERE's first src is the condition)
    acc: the reduce/scan accumulator after the loop; cond: arg = conds, a bool
    """

    kind: str
    dtype: dt.DType
    op: Op | None = None
    srcs: tuple[Val, ...] = ()
    arg: Any = None
    name: str = ""


@dataclass(frozen=True)
class Param:
    name: str
    dtype: dt.DType
    size: int
    output: bool


@dataclass(eq=False)
class Kernel:
    name: str
    params: list[Param]
    loops: tuple[int, ...]              # output loop sizes; variables o0, o1, ...
    red_loops: tuple[int, ...]          # reduce/scan loop sizes; variables r0, r1, ...
    red_op: Op | None
    red_val: Val | None                 # the value folded into the accumulator
    acc: Val | None
    store_index: Lin
    store_val: Val
    vals: list[Val]                     # every value, sources first
    nodes: list[Node]                   # the IR nodes this kernel computes (for introspection)
    output: Node
    inputs: list[Node]                  # nodes read from buffers, in param order after outputs
    code: str = ""                      # the rendered source, its function named FNAME
    level: dict[int, int] = field(default_factory=dict)  # id(val) -> 0 outer, 1 body, 2 after
    # a scatter kernel stores in two loop nests: this kernel's (out = base), then `scatter`'s,
    # whose store_index reads data (Data atoms) and whose store_mode is None (plain store),
    # "add" (out += v) or "multiply" (out *= v); its vals are named w0, w1, ...
    scatter: Kernel | None = None
    store_mode: str | None = None

    @property
    def ops(self) -> list[str]:
        return [n.op.name.lower() for n in self.nodes
                if n.op in ELEMENTWISE or n.op in REDUCE or n.op in SCAN
                or n.op in (Op.GATHER, Op.SCATTER)]

    def __repr__(self) -> str:
        return f"<Kernel {self.name}: {', '.join(self.ops) or 'copy'}>"

    def named(self, fname: str) -> str:
        """The rendered source with its function named `fname`."""
        return self.code.replace(FNAME, fname)

    @property
    def source(self) -> str:
        """The rendered source with its function named after the kernel."""
        return self.code.replace(FNAME, self.name)


class NeedsBuffer(Exception):
    """Raised while lowering when a node must be materialized by a kernel of its own."""

    def __init__(self, node: Node):
        self.node = node


class LoweringError(RuntimeError):
    """A node no kernel can compute: a missing lowering rule (a bug in the compiler)."""

    def __init__(self, node: Node, why: str):
        shape = ",".join(map(str, node.shape))
        super().__init__(f"cannot compile Op.{node.op.name} ({node.dtype.short}[{shape}]): {why}")
        self.node = node


def _cond_key(conds: tuple[Cond, ...]):
    return tuple((c[0].key(), c[1], c[2]) for c in conds)


class _Lowerer:
    def __init__(self, root: Node, is_buffer: Callable[[Node], bool]):
        self.root, self.is_buffer = root, is_buffer
        self.inputs: list[Node] = []
        self.memo: dict[Any, Val] = {}
        self.lowered: dict[Any, Val] = {}
        self.vals: list[Val] = []
        self.nodes: dict[Node, None] = {}
        self.reduce: Node | None = None
        self.reduce_key: Any = None
        self.red_val: Val | None = None
        self.acc: Val | None = None
        self.red_loops: tuple[int, ...] = ()
        self.in_body = False

    def val(self, kind, dtype, op=None, srcs=(), arg=None) -> Val:
        if kind == "load":
            karg = (arg[0], arg[1].key(), _cond_key(arg[2]))
        elif kind == "cond":
            karg = _cond_key(arg)
        else:
            karg = repr(arg)
        key = (kind, dtype, op, tuple(id(s) for s in srcs), karg)
        v = self.memo.get(key)
        if v is None:
            v = Val(kind, dtype, op, tuple(srcs), arg, f"v{len(self.vals)}")
            self.memo[key] = v
            self.vals.append(v)
        return v

    def param(self, node: Node) -> int:
        for i, n in enumerate(self.inputs):
            if n is node:
                return i + 1
        self.inputs.append(node)
        return len(self.inputs)

    def lower(self, node: Node, idx: tuple[Lin, ...], conds: tuple[Cond, ...],
              expanded: bool) -> Val:
        """The value of `node` at index `idx` (memoized: shared subgraphs lower once)."""
        key = (node, tuple(map(Lin.key, idx)), _cond_key(conds) if conds else (), expanded)
        v = self.lowered.get(key)
        if v is not None:
            return v
        if node is not self.root and self.is_buffer(node):
            flat = Lin.of(0)
            for i, n in zip(idx, node.shape):
                flat = flat * n + i
            v = self.val("load", node.dtype, arg=(self.param(node), flat, conds))
        else:
            self.nodes[node] = None
            if node.numel == 0:  # nothing of it is ever read
                v = self.val("const", node.dtype, arg=node.dtype.np(0).item())
            else:
                rule = LOWER.get(node.op)
                if rule is None:
                    if node.op in STORED:
                        raise NeedsBuffer(node)
                    raise LoweringError(node, "the kernel IR has no lowering for it "
                                              "(kernel.LOWER)")
                v = rule(self, node, idx, conds, expanded)
        self.lowered[key] = v
        return v

    def lower_alu(self, node, idx, conds, expanded):
        srcs = [self.lower(s, idx, conds, expanded) for s in node.srcs]
        return self.val("alu", node.dtype, node.op, srcs, node.arg)

    def lower_const(self, node, idx, conds, expanded):
        return self.val("const", node.dtype, arg=node.arg)

    def lower_identity(self, node, idx, conds, expanded):
        return self.lower(node.srcs[0], idx, conds, expanded)

    def lower_reshape(self, node, idx, conds, expanded):
        return self.lower(node.srcs[0], reshape_index(idx, node.shape, node.srcs[0].shape),
                          conds, expanded)

    def lower_permute(self, node, idx, conds, expanded):
        src = [Lin.of(0)] * len(idx)
        for i, p in enumerate(node.arg):
            src[p] = idx[i]
        return self.lower(node.srcs[0], tuple(src), conds, expanded)

    def lower_expand(self, node, idx, conds, expanded):
        s = node.srcs[0]
        src = tuple(i if a == b else Lin.of(0) for i, a, b in zip(idx, s.shape, node.shape))
        grows = math.prod(node.shape) > math.prod(s.shape)
        return self.lower(s, src, conds, expanded or grows)

    def lower_slice(self, node, idx, conds, expanded):
        src = tuple(i * step + start for i, (start, step) in zip(idx, node.arg))
        return self.lower(node.srcs[0], src, conds, expanded)

    def lower_unfold(self, node, idx, conds, expanded):
        dim, _, step = node.arg
        src = list(idx[:-1])
        src[dim] = idx[dim] * step + idx[-1]
        return self.lower(node.srcs[0], tuple(src), conds, True)

    def lower_gather(self, node, idx, conds, expanded):
        x, index = node.srcs
        iv = self.lower(index, idx, conds, expanded)
        src = list(idx)
        src[node.arg] = Lin.of(Data(iv, 0, x.shape[node.arg] - 1))
        return self.lower(x, tuple(src), conds, True)

    def lower_pad(self, node, idx, conds, expanded):
        (pads, value), s = node.arg, node.srcs[0]
        new, src = [], []
        for i, (lo, _), n in zip(idx, pads, s.shape):
            j = i - lo
            src.append(j)
            blo, bhi = j.bounds()
            if blo >= n or bhi < 0:
                return self.val("const", node.dtype, arg=value)
            if blo < 0 or bhi >= n:
                new.append((j, 0, n))
        if not new:
            return self.lower(s, tuple(src), conds, expanded)
        inner = self.lower(s, tuple(src), conds + tuple(new), expanded)
        cond = self.val("cond", dt.bool_, arg=tuple(new))
        fill = self.val("const", node.dtype, arg=value)
        return self.val("alu", node.dtype, Op.WHERE, (cond, inner, fill))

    def lower_reduce(self, node, idx, conds, expanded):
        key = (node, tuple(i.key() for i in idx), _cond_key(conds))
        if self.reduce is node and self.reduce_key == key:
            return self.acc
        if self.reduce is not None or expanded or self.in_body:
            raise NeedsBuffer(node)
        self.reduce, self.reduce_key = node, key
        src = node.srcs[0]
        axes = node.arg
        self.red_loops = tuple(src.shape[a] for a in axes)
        ridx = list(idx)
        for j, a in enumerate(axes):
            ridx[a] = Lin.of(Var(f"r{j}", src.shape[a]))
        self.in_body = True
        self.red_val = self.lower(src, tuple(ridx), conds, expanded)
        self.in_body = False
        self.acc = Val("acc", node.dtype, node.op, (self.red_val,), None, "acc")
        return self.acc


# how each op is computed inside a kernel: rule(lowerer, node, index, conds, expanded) -> the
# node's value at `index` (movement ops rewrite the index, elementwise ops combine values)
LOWER: dict[Op, Callable[..., Val]] = {
    **{op: _Lowerer.lower_alu for op in ELEMENTWISE},
    **{op: _Lowerer.lower_reduce for op in REDUCE},
    Op.CONST: _Lowerer.lower_const,
    Op.CONTIGUOUS: _Lowerer.lower_identity,
    Op.DETACH: _Lowerer.lower_identity,
    Op.FUNCTION: _Lowerer.lower_identity,
    Op.RESHAPE: _Lowerer.lower_reshape,
    Op.PERMUTE: _Lowerer.lower_permute,
    Op.EXPAND: _Lowerer.lower_expand,
    Op.SLICE: _Lowerer.lower_slice,
    Op.PAD: _Lowerer.lower_pad,
    Op.UNFOLD: _Lowerer.lower_unfold,
    Op.GATHER: _Lowerer.lower_gather,
}
# ops a kernel never computes inline: it reads them from buffers (realized data, and the ops
# stored by kernels of their own, which lower_kernel lowers as a kernel's output)
STORED = {Op.BUFFER, Op.SCATTER} | SCAN


def lower_kernel(out: Node, is_buffer: Callable[[Node], bool], name: str,
                 depth: int | None = None) -> Kernel:
    """Build the kernel that stores `out`, reading every node for which is_buffer() holds.

    Lowering recurses through the sources: `depth` bounds the nodes it can meet (the graph's
    size, say); without it the kernel's nodes are counted first."""
    if depth is None:
        depth = len(toposort([out], lambda n: n is not out and is_buffer(n)))
    if sys.getrecursionlimit() < 4 * depth + 1000:
        sys.setrecursionlimit(4 * depth + 1000)
    if out.op is Op.SCATTER:
        return _lower_scatter(out, is_buffer, name)
    lw = _Lowerer(out, is_buffer)
    ovars = tuple(Lin.of(Var(f"o{i}", n)) for i, n in enumerate(out.shape))
    red_op = None
    if out.op in SCAN:
        axis = out.arg
        lw.nodes[out] = None
        src = out.srcs[0]
        idx = list(ovars)
        idx[axis] = Lin.of(Var("r0", src.shape[axis]))
        loops = tuple(1 if i == axis else n for i, n in enumerate(out.shape))
        ovars = tuple(Lin.of(0) if i == axis else v for i, v in enumerate(ovars))
        lw.red_loops = (src.shape[axis],)
        lw.in_body = True
        lw.red_val = lw.lower(src, tuple(idx), (), False)
        lw.acc = Val("acc", out.dtype, out.op, (lw.red_val,), None, "acc")
        store_index = Lin.of(0)
        for i, n in zip(idx, out.shape):
            store_index = store_index * n + i
        store_val, red_op = lw.acc, out.op
    else:
        loops = out.shape
        store_val = lw.lower(out, ovars, (), False)
        store_index = Lin.of(0)
        for i, n in zip(ovars, out.shape):
            store_index = store_index * n + i
        if lw.reduce is not None:
            red_op = lw.reduce.op
    params = [Param("out0", out.dtype, math.prod(out.shape), True)]
    params += [Param(f"in{i}", n.dtype, math.prod(n.shape), False)
               for i, n in enumerate(lw.inputs)]
    vals = [v for v in lw.vals]
    if lw.acc is not None:
        vals.append(lw.acc)
    k = Kernel(name, params, loops, lw.red_loops, red_op, lw.red_val, lw.acc, store_index,
               store_val, vals, list(lw.nodes), out, list(lw.inputs))
    _split_loops(k)
    _merge_loops(k)
    _assign_levels(k)
    return k


def _lower_scatter(out: Node, is_buffer: Callable[[Node], bool], name: str) -> Kernel:
    """A scatter kernel: copy the base into the output, then loop over the index's shape and
    store (or fold in) src at the position the index reads. Reductions among the sources get
    buffers of their own (NeedsBuffer), so both loop nests are plain."""
    base, index, src = out.srcs
    axis, mode = out.arg
    lw = _Lowerer(out, is_buffer)
    lw.in_body = True
    lw.nodes[out] = None
    ovars = tuple(Lin.of(Var(f"o{i}", n)) for i, n in enumerate(out.shape))
    copy_val = lw.lower(base, ovars, (), False)
    sw = _Lowerer(out, is_buffer)
    sw.inputs, sw.nodes, sw.in_body = lw.inputs, lw.nodes, True
    svars = tuple(Lin.of(Var(f"o{i}", n)) for i, n in enumerate(index.shape))
    iv = sw.lower(index, svars, (), False)
    sv = sw.lower(src, svars, (), False)
    dst = list(svars)
    dst[axis] = Lin.of(Data(iv, 0, out.shape[axis] - 1))
    for i, v in enumerate(sw.vals):
        v.name = f"w{i}"
    params = [Param("out0", out.dtype, math.prod(out.shape), True)]
    params += [Param(f"in{i}", n.dtype, math.prod(n.shape), False)
               for i, n in enumerate(lw.inputs)]
    flat = Lin.of(0)
    for i, n in zip(ovars, out.shape):
        flat = flat * n + i
    k = Kernel(name, params, out.shape, (), None, None, None, flat, copy_val, list(lw.vals),
               list(lw.nodes), out, list(lw.inputs))
    sflat = Lin.of(0)
    for i, n in zip(dst, out.shape):
        sflat = sflat * n + i
    k.scatter = Kernel(name, params, index.shape, (), None, None, None, sflat, sv,
                       list(sw.vals), k.nodes, out, k.inputs, store_mode=mode)
    for kk in (k, k.scatter):
        _merge_loops(kk)
        _assign_levels(kk)
    return k


def _all_lins(k: Kernel):
    yield k.store_index
    for v in k.vals:
        if v.kind == "load":
            yield v.arg[1]
            for c in v.arg[2]:
                yield c[0]
        elif v.kind == "cond":
            for c in v.arg:
                yield c[0]


# reductions whose result does not depend on how their loop is nested (ARGMAX/ARGMIN store
# the reduce variable itself; scans run one loop in order)
_SPLIT_REDUCE = {Op.SUM, Op.PROD, Op.RMAX, Op.RMIN}


def _atoms(e: Lin):
    for a, _ in e.terms:
        yield a
        x = getattr(a, "x", None)
        if x is not None:
            yield from _atoms(x)


def _substitute(k: Kernel, mapping: dict[str, Lin]) -> None:
    """Rewrite every index expression of k through `mapping` (variable name -> Lin)."""
    _rewrite_indices(k, lambda e: e.substitute(mapping))


def _rewrite_indices(k: Kernel, sub) -> None:
    """Replace every index expression e of k (the store's, the loads', the guards') by sub(e)."""
    k.store_index = sub(k.store_index)
    for v in k.vals:
        if v.kind == "load":
            v.arg = (v.arg[0], sub(v.arg[1]), tuple((sub(c), lo, hi) for c, lo, hi in v.arg[2]))
        elif v.kind == "cond":
            v.arg = tuple((sub(c), lo, hi) for c, lo, hi in v.arg)


def _split_loops(k: Kernel) -> None:
    """Split each loop that index expressions read as (v / c) and (v % c) into loops over the
    quotient and the remainder (v = hi * c + lo), so that those reads become plain strides.
    A view that merges dims after moving them reads its source this way: attention's
    (N, h, L, d) -> (L, N, h*d) makes the heads' stride a div/mod of the merged dim, which
    keeps a product over it from being a GEMM and every read from being a stride."""
    for _ in range(4):  # a split can expose a div/mod of the new quotient loop
        cuts: dict[str, set[int]] = {}
        for e in _all_lins(k):
            for a in _atoms(e):
                x = getattr(a, "x", None)
                if x is not None and x.const == 0 and len(x.terms) == 1 and \
                        x.terms[0][1] == 1 and isinstance(x.terms[0][0], Var):
                    cuts.setdefault(x.terms[0][0].name, set()).add(a.c)
        mapping: dict[str, Lin] = {}
        sizes = {"o": list(k.loops), "r": list(k.red_loops)}
        pieces: dict[str, list[int]] = {}
        for name, cs in cuts.items():
            prefix, d = name[0], int(name[1:])
            if prefix == "r" and k.red_op not in _SPLIT_REDUCE:
                continue
            n = sizes[prefix][d]
            chain = sorted(c for c in cs if 1 < c < n)
            if not chain or any(b % a for a, b in zip(chain, chain[1:] + [n])):
                continue
            bounds = [n] + chain[::-1]   # n > c_k > ... > c_1: sizes from the outermost
            pieces[name] = [a // b for a, b in zip(bounds, bounds[1:])] + [chain[0]]
        if not pieces:
            return
        for prefix in ("o", "r"):
            new_sizes: list[int] = []
            for d, n in enumerate(sizes[prefix]):
                name = f"{prefix}{d}"
                parts = pieces.get(name, [n])
                e, stride = Lin.of(0), n
                for size in parts:
                    stride //= size
                    e = e + Lin.of(Var(f"{prefix}{len(new_sizes)}x", size)) * stride
                    new_sizes.append(size)
                mapping[name] = e
            sizes[prefix] = new_sizes
        _substitute(k, mapping)
        k.loops, k.red_loops = tuple(sizes["o"]), tuple(sizes["r"])
        rename = {f"{p}{i}x": Lin.of(Var(f"{p}{i}", n))
                  for p in ("o", "r") for i, n in enumerate(sizes[p])}
        _substitute(k, rename)


def _merge_loops(k: Kernel) -> None:
    """Merge adjacent loops that every index expression walks as one (a flat loop when all
    accesses are contiguous). Loops of size 1 disappear."""
    lins = list(_all_lins(k))
    nonlinear: set[str] = set()
    for e in lins:
        nonlinear |= e.nonlinear_vars()

    def plan(prefix: str, sizes: tuple[int, ...]):
        groups: list[list[int]] = []
        for d, n in enumerate(sizes):
            if n == 1 and f"{prefix}{d}" not in nonlinear:
                continue
            if groups:
                p = groups[-1][-1]
                a, b = f"{prefix}{p}", f"{prefix}{d}"
                if a not in nonlinear and b not in nonlinear and all(
                        e.coef(a) == e.coef(b) * n for e in lins):
                    groups[-1].append(d)
                    continue
            groups.append([d])
        mapping: dict[str, Lin] = {}
        new_sizes = []
        for g, dims in enumerate(groups):
            size = math.prod(sizes[d] for d in dims)
            new_sizes.append(size)
            w = Lin.of(Var(f"{prefix}{g}x", size))
            for d in dims[:-1]:
                mapping[f"{prefix}{d}"] = Lin.of(0)
            mapping[f"{prefix}{dims[-1]}"] = w
        for d in range(len(sizes)):
            mapping.setdefault(f"{prefix}{d}", Lin.of(0))
        return mapping, tuple(new_sizes)

    mo, k.loops = plan("o", k.loops)
    mr, k.red_loops = plan("r", k.red_loops) if k.red_loops else ({}, ())
    mapping = {**mo, **mr}
    # rename the merged variables back to o0.. / r0..
    rename = {}
    for prefix, sizes in (("o", k.loops), ("r", k.red_loops)):
        for g, n in enumerate(sizes):
            rename[f"{prefix}{g}x"] = Lin.of(Var(f"{prefix}{g}", n))
    _rewrite_indices(k, lambda e: e.substitute(mapping).substitute(rename))


def _assign_levels(k: Kernel) -> None:
    """0: needs only the output loops; 1: inside the reduce loop; 2: after it (uses acc)."""
    lv = k.level
    if k.acc is not None:  # acc is listed last, but consumers of the reduce come before it
        lv[id(k.acc)] = 2
    for v in k.vals:
        if v.kind == "acc":
            lv[id(v)] = 2
            continue
        if v.kind in ("load", "cond"):
            lins = [v.arg[1]] + [c[0] for c in v.arg[2]] if v.kind == "load" else \
                [c[0] for c in v.arg]
            names = set().union(*(e.vars() for e in lins))
            level = 1 if any(n.startswith("r") for n in names) else 0
            for e in lins:
                for a, _ in e.terms:
                    level = max(level, _data_level(a, lv))
        else:
            level = max((lv[id(s)] for s in v.srcs), default=0)
        lv[id(v)] = level


def _data_level(atom, lv) -> int:
    if isinstance(atom, Data):
        return lv[id(atom.value)]
    x = getattr(atom, "x", None)
    if x is not None:
        return max((_data_level(a, lv) for a, _ in x.terms), default=0)
    return 0
