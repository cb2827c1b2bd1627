"""Every Op has every per-op entry its kind needs: a new op that lacks its reference rule, its
C expression, its lowering, its gradient rule (or a mark that it has none) or its accumulator
fails here, naming the op and the table.

Adding an elementwise op touches: ir/ops.py (Op, its arity group, COMPARE if its result is
bool, TRANSCENDENTAL if it calls libm), runtime/interpreter.py NUMPY, compiler/codegen/cstyle.py
EXPR (and the C dialect's DECLARATIONS of a libm function libmvec has), autograd/rules.py GRAD
or NO_GRAD, and the API (frontend/methods.py, functional.py or frontend/pointwise.py).
kernel.LOWER gives every elementwise op its lowering (docs/architecture.md has the checklist)."""
from __future__ import annotations

import numpy as np
import pytest

import lazytorch  # noqa: F401  (autograd/function.py registers GRAD[Op.FUNCTION])
from lazytorch.autograd.rules import GRAD, NO_GRAD
from lazytorch.compiler import kernel
from lazytorch.compiler.codegen.c import CRenderer
from lazytorch.compiler.codegen.cstyle import ACC_START, ACC_UPDATE, EXPR, CStyleRenderer
from lazytorch.compiler.schedule import schedule_graph
from lazytorch.ir import dtypes as dt
from lazytorch.ir.graph import Graph, Node
from lazytorch.ir.ops import (
    BINARY,
    COMPARE,
    ELEMENTWISE,
    MOVEMENT,
    REDUCE,
    SCAN,
    SOURCE,
    TERNARY,
    TRANSCENDENTAL,
    UNARY,
    Op,
)
from lazytorch.runtime.interpreter import NUMPY, eval_node

F32, I64, BOOL = dt.float32, dt.int64, dt.bool_
# ops of a kind of their own, each checked below like the others
ONE_OFF = {Op.GATHER, Op.SCATTER, Op.CONTIGUOUS, Op.DETACH, Op.FUNCTION}
KINDS = {"SOURCE": SOURCE, "UNARY": UNARY, "BINARY": BINARY, "TERNARY": TERNARY,
         "REDUCE": REDUCE, "SCAN": SCAN, "MOVEMENT": MOVEMENT, "one-off": ONE_OFF}
# elementwise ops on booleans and integers only
LOGICAL = {Op.NOT, Op.AND, Op.OR, Op.XOR}
ALL = pytest.mark.parametrize("op", list(Op), ids=lambda op: op.name)


def _entries(op: Op) -> dict[str, bool]:
    """Each table op needs an entry in: whether it has one."""
    need = {"interpreter.NUMPY": op in NUMPY or op in SOURCE,
            "kernel.LOWER or kernel.STORED": (op in kernel.LOWER) != (op in kernel.STORED),
            "autograd_rules.GRAD or NO_GRAD": (op in GRAD) != (op in NO_GRAD)}
    if op in ELEMENTWISE and op is not Op.CAST:   # CAST is rendered by CStyleRenderer.cast
        need["cstyle.EXPR"] = op in EXPR
    if op in REDUCE or op in SCAN:
        need["cstyle.ACC_START"] = op in ACC_START
        need["cstyle.ACC_UPDATE"] = op in ACC_UPDATE
    return need


@ALL
def test_every_op_is_of_one_kind(op):
    kinds = [name for name, group in KINDS.items() if op in group]
    assert len(kinds) == 1, f"Op.{op.name} is in {kinds or 'no group of ir/ops.py'}"


def test_every_group_of_ops_py_is_a_set_of_ops():
    from lazytorch.ir import ops
    groups = {name: v for name, v in vars(ops).items()
              if name.isupper() and isinstance(v, (set, frozenset))}
    assert set(KINDS) - {"one-off"} <= set(groups) and {"VIEW", "STRIDED"} <= set(groups)
    for name, group in groups.items():
        assert group and all(isinstance(op, Op) for op in group), name


def test_groups_by_meaning_and_their_users():
    from lazytorch.autograd import rules as autograd_rules
    from lazytorch.engine import live, plan, realize
    from lazytorch.ir.ops import STRIDED, VIEW
    assert MOVEMENT < VIEW and VIEW - MOVEMENT == {Op.DETACH}
    assert STRIDED < MOVEMENT and not STRIDED & {Op.PAD, Op.UNFOLD}   # they make new values
    # each user's set, built from the groups, is what it wrote out before it was built so
    views = {Op.RESHAPE, Op.PERMUTE, Op.EXPAND, Op.SLICE, Op.DETACH}
    assert live.VIEW_OPS == views
    assert live.FREE_OPS == views | {Op.PAD, Op.UNFOLD, Op.CONST}
    assert realize._VIEW_OPS == views | {Op.PAD, Op.UNFOLD, Op.CONTIGUOUS, Op.CONST, Op.BUFFER}
    assert autograd_rules._VIEWS == views | {Op.PAD}
    assert plan._QUIET == {Op.RESHAPE, Op.EXPAND, Op.CONST, Op.BUFFER, Op.DETACH}


@ALL
def test_every_op_has_its_table_entries(op):
    missing = [table for table, ok in _entries(op).items() if not ok]
    assert not missing, f"Op.{op.name} lacks its entry in {', '.join(missing)}"


def test_a_missing_entry_names_the_op_and_the_table(monkeypatch):
    monkeypatch.delitem(EXPR, Op.EXPM1)
    monkeypatch.delitem(kernel.LOWER, Op.EXPM1)
    with pytest.raises(AssertionError, match=r"Op\.EXPM1 lacks its entry in kernel\.LOWER or "
                                             r"kernel\.STORED, cstyle\.EXPR"):
        test_every_op_has_its_table_entries(Op.EXPM1)


def test_tables_hold_only_real_ops():
    assert set(EXPR) <= ELEMENTWISE
    assert set(CRenderer.EXPR) == set(EXPR)   # a dialect overrides entries, adds no ops
    assert set(NUMPY) <= set(Op) - SOURCE
    assert TRANSCENDENTAL <= ELEMENTWISE and COMPARE <= ELEMENTWISE
    assert set(ACC_START) == set(ACC_UPDATE) == REDUCE | SCAN
    assert not set(kernel.LOWER) & kernel.STORED


@pytest.mark.parametrize("renderer", [CStyleRenderer(), CRenderer()], ids=lambda r: r.name)
def test_expression_arity_matches_the_op(renderer):
    for op, fn in renderer.EXPR.items():
        n = 1 if op in UNARY else 2 if op in BINARY else 3 if op in TERNARY else None
        assert n is not None, op
        text = fn(renderer, dt.float32, *(f"a{i}" for i in range(n)))
        assert all(f"a{i}" in text for i in range(n)), (op, text)


# ------------------------------------------------------------------ every op, in use
def _buf(i: int, shape=(3, 4), dtype=F32) -> Node:
    return Node(Op.BUFFER, (), 3000 + i, shape, dtype)


def _sample(op: Op) -> Node:
    """A small node of op over buffers, as the front end builds them."""
    x = _buf(0)
    if op in ELEMENTWISE:
        arity = 1 if op in UNARY else 2 if op in BINARY else 3
        dtypes = [BOOL] * arity if op in LOGICAL else [BOOL, F32, F32] if op is Op.WHERE \
            else [F32] * arity
        srcs = tuple(_buf(i, dtype=d) for i, d in enumerate(dtypes))
        out = BOOL if op in COMPARE or op in LOGICAL else I64 if op is Op.CAST else F32
        return Node(op, srcs, I64 if op is Op.CAST else None, x.shape, out)
    if op in REDUCE:
        return Node(op, (x,), (1,), (3, 1), I64 if op in (Op.ARGMAX, Op.ARGMIN) else F32)
    if op in SCAN:
        return Node(op, (x,), 1, x.shape, F32)
    movement = {
        Op.RESHAPE: ((2, 6), (2, 6)),
        Op.PERMUTE: ((1, 0), (4, 3)),
        Op.EXPAND: ((3, 4), (3, 4)),
        Op.PAD: ((((1, 0), (0, 2)), 0.0), (4, 6)),
        Op.SLICE: (((2, -1), (1, 2)), (3, 2)),
        Op.UNFOLD: ((1, 2, 1), (3, 3, 2)),
    }
    if op in movement:
        arg, shape = movement[op]
        src = _buf(0, (3, 1)) if op is Op.EXPAND else x
        return Node(op, (src,), arg, shape, F32)
    if op is Op.GATHER:
        return Node(op, (x, _buf(1, (3, 2), I64)), 1, (3, 2), F32)
    if op is Op.SCATTER:
        return Node(op, (x, _buf(1, (3, 2), I64), _buf(2, (3, 2))), (1, None), x.shape, F32)
    if op in (Op.CONTIGUOUS, Op.DETACH):
        return Node(op, (x,), None, x.shape, F32)
    if op is Op.FUNCTION:
        return Node(op, (x, _buf(1)), 7, x.shape, F32)
    if op is Op.CONST:
        return Node(op, (), 1.5, x.shape, F32)
    assert op is Op.BUFFER, f"no sample node for Op.{op.name} in test_op_tables._sample"
    return x


def _data(n: Node, rng) -> np.ndarray:
    if n.dtype == I64:   # indices: in range for the gather/scatter samples' axis 1
        return rng.integers(0, 4, n.shape)
    if n.dtype == BOOL:
        return rng.random(n.shape) < 0.5
    return (rng.random(n.shape) * 0.8 + 0.1).astype(np.float32)


@ALL
@pytest.mark.parametrize("renderer", [CStyleRenderer(), CRenderer()], ids=lambda r: r.name)
def test_every_op_is_scheduled_and_rendered(op, renderer):
    n = _sample(op)
    sched = schedule_graph(Graph([n]), renderer.caps)
    if op is Op.BUFFER:
        assert sched.kernels == []
        return
    assert [k.output for k in sched.kernels] == [n]
    for k in sched.kernels:
        src = renderer.render_kernel(k, "f")
        assert "void f(" in src and src.count("{") == src.count("}"), src


@ALL
def test_every_op_runs_in_the_interpreter(op, rng):
    n = _sample(op)
    if op in SOURCE:
        return
    out = eval_node(n, *(_data(s, rng) for s in n.srcs))
    assert out.shape == n.shape and out.dtype == n.dtype.np


@ALL
def test_every_gradient_rule_gives_one_gradient_per_source(op):
    if op not in GRAD:
        return
    n = _sample(op)
    if op is Op.FUNCTION:
        pytest.skip("needs an autograd.Function application (tests/test_autograd_function.py)")
    g = _buf(9, n.shape, n.dtype)
    if op is Op.IDIV:   # PyTorch defines none, and says so when backward reaches one
        with pytest.raises(RuntimeError, match="derivative for aten::floor_divide"):
            GRAD[op](n, g)
        return
    grads = GRAD[op](n, g)
    assert len(grads) == len(n.srcs), f"Op.{op.name}: {len(grads)} gradients"
    for s, g in zip(n.srcs, grads):
        assert g is None or (g.shape == s.shape and g.dtype == s.dtype), (op, s, g)
