"""Compiler passes on hand-built graphs, checked against golden IR text.

Each graph is built from Nodes directly (no Tensor), so these tests pin what a pass does to the
IR, independent of how the frontend happens to record ops. Buffer ids are large numbers that
no real tensor in the test session uses.
"""
from __future__ import annotations

import textwrap

import pytest

from lazytorch.compiler.passes import PIPELINE, cse, dce, optimize, simplify, verify
from lazytorch.compiler.passes.memory import plan_memory
from lazytorch.ir import dtypes as dt
from lazytorch.ir.graph import Graph, Node, const, format_graph
from lazytorch.ir.ops import Op

F32, I32, F16, B8 = dt.float32, dt.int32, dt.float16, dt.bool_


def buf(i: int, shape=(4,), dtype=F32) -> Node:
    return Node(Op.BUFFER, (), 1000 + i, shape, dtype)


def un(op: Op, x: Node, dtype=None) -> Node:
    return Node(op, (x,), None, x.shape, dtype or x.dtype)


def bin_(op: Op, a: Node, b: Node, dtype=None) -> Node:
    return Node(op, (a, b), None, a.shape, dtype or a.dtype)


def golden(text: str) -> str:
    return textwrap.dedent(text).strip()


def show(*outputs: Node) -> str:
    return format_graph(Graph(outputs))


# ------------------------------------------------------------------------- the IR printer

def test_printer_line_format():
    x = buf(0, (4, 4))
    out = bin_(Op.ADD, un(Op.EXP, x), un(Op.NEG, x))
    assert show(out) == golden("""
        %0: f32[4,4] = buffer #1000
        %1: f32[4,4] = exp %0
        %2: f32[4,4] = neg %0
        %3: f32[4,4] = add %1 %2
        return %3
    """)


def test_printer_args_and_repr():
    x = buf(0, (2, 3))
    s = Node(Op.SUM, (x,), (1,), (2, 1), F32)
    h = Node(Op.CAST, (s,), F16, (2, 1), F16)
    p = Node(Op.PAD, (h,), (((1, 0), (0, 2)), 0.0), (3, 3), F16)
    g = Graph([p, s])
    assert repr(g) == format_graph(g) == golden("""
        %0: f32[2,3] = buffer #1000
        %1: f32[2,1] = sum %0 (1,)
        %2: f16[2,1] = cast %1 f16
        %3: f16[3,3] = pad %2 [(1, 0), (0, 2)] value=0.0
        return %3, %1
    """)


def test_printer_constants_scalars_and_comments():
    c = const(2, I32, (3,))
    g = Graph([c])
    text = format_graph(g, comments=lambda n: "seed" if n.op is Op.CONST else None)
    assert text == golden("""
        %0: i32[] = const 2  # seed
        %1: i32[1] = reshape %0 (1,)
        %2: i32[3] = expand %1 (3,)
        return %2
    """)
    assert len(g) == 3


# ------------------------------------------------------------------------- simplify

def test_simplify_mul_by_one_is_x():
    x = buf(0)
    assert show(*simplify(Graph([bin_(Op.MUL, x, const(1.0, F32, (4,)))])).outputs) == golden("""
        %0: f32[4] = buffer #1000
        return %0
    """)
    # the constant may be on either side
    g = simplify(Graph([bin_(Op.MUL, const(1.0, F32, (4,)), x)]))
    assert g.outputs == (x,)


def test_simplify_identities():
    x, i = buf(0), buf(1, dtype=I32)
    assert simplify(Graph([bin_(Op.SUB, x, const(0.0, F32, (4,)))])).outputs == (x,)
    assert simplify(Graph([bin_(Op.DIV, x, const(1.0, F32, (4,)))])).outputs == (x,)
    assert simplify(Graph([un(Op.NEG, un(Op.NEG, x))])).outputs == (x,)
    assert simplify(Graph([Node(Op.CAST, (x,), F32, (4,), F32)])).outputs == (x,)
    assert simplify(Graph([bin_(Op.ADD, i, const(0, I32, (4,)))])).outputs == (i,)
    assert simplify(Graph([bin_(Op.ADD, const(0, I32, (4,)), i)])).outputs == (i,)


def test_simplify_keeps_float_add_zero():
    # -0.0 + 0.0 is +0.0: adding a float zero is not an identity
    x = buf(0)
    g = simplify(Graph([bin_(Op.ADD, x, const(0.0, F32, (4,)))]))
    assert str(g) == golden("""
        %0: f32[4] = buffer #1000
        %1: f32[] = const 0.0
        %2: f32[1] = reshape %1 (1,)
        %3: f32[4] = expand %2 (4,)
        %4: f32[4] = add %0 %3
        return %4
    """)


def test_simplify_folds_constants():
    two, three = const(2, I32, (3,)), const(3, I32, (3,))
    out = bin_(Op.MUL, bin_(Op.ADD, two, three), three)  # (2 + 3) * 3
    assert str(simplify(Graph([out]))) == golden("""
        %0: i32[] = const 15
        %1: i32[1] = reshape %0 (1,)
        %2: i32[3] = expand %1 (3,)
        return %2
    """)


def test_simplify_folds_with_the_ops_semantics():
    # floor division and a comparison on constants follow the interpreter's rules
    q = bin_(Op.IDIV, const(-7, I32, (2,)), const(2, I32, (2,)))
    lt = bin_(Op.CMPLT, const(1.5, F32, (2,)), const(2.0, F32, (2,)), B8)
    assert str(simplify(Graph([q, lt]))) == golden("""
        %0: i32[] = const -4
        %1: i32[1] = reshape %0 (1,)
        %2: i32[2] = expand %1 (2,)
        %3: b8[] = const True
        %4: b8[1] = reshape %3 (1,)
        %5: b8[2] = expand %4 (2,)
        return %2, %5
    """)


def test_simplify_where():
    a, b = buf(0), buf(1)
    c = buf(2, dtype=B8)
    assert simplify(Graph([Node(Op.WHERE, (const(True, B8, (4,)), a, b), None, (4,), F32)])
                    ).outputs == (a,)
    assert simplify(Graph([Node(Op.WHERE, (const(False, B8, (4,)), a, b), None, (4,), F32)])
                    ).outputs == (b,)
    assert simplify(Graph([Node(Op.WHERE, (c, a, a), None, (4,), F32)])).outputs == (a,)


def test_simplify_movement_chains():
    x = buf(0, (2, 3, 4))
    r1 = Node(Op.RESHAPE, (x,), (6, 4), (6, 4), F32)
    r2 = Node(Op.RESHAPE, (r1,), (24,), (24,), F32)
    assert show(*simplify(Graph([r2])).outputs) == golden("""
        %0: f32[2,3,4] = buffer #1000
        %1: f32[24] = reshape %0 (24,)
        return %1
    """)
    p1 = Node(Op.PERMUTE, (x,), (1, 2, 0), (3, 4, 2), F32)
    p2 = Node(Op.PERMUTE, (p1,), (2, 0, 1), (2, 3, 4), F32)  # undoes p1
    assert simplify(Graph([p2])).outputs == (x,)
    p3 = Node(Op.PERMUTE, (p1,), (1, 0, 2), (4, 3, 2), F32)
    assert show(*simplify(Graph([p3])).outputs) == golden("""
        %0: f32[2,3,4] = buffer #1000
        %1: f32[4,3,2] = permute %0 (2, 1, 0)
        return %1
    """)
    same = Node(Op.RESHAPE, (x,), (2, 3, 4), (2, 3, 4), F32)
    assert simplify(Graph([same])).outputs == (x,)


def test_simplify_leaves_other_nodes_alone():
    x, y = buf(0), buf(1)
    g = Graph([bin_(Op.MUL, un(Op.EXP, x), y)])
    assert str(simplify(g)) == str(g)


# ------------------------------------------------------------------------- cse

def test_cse_merges_commutative_operands():
    a, b = buf(0), buf(1)
    out = bin_(Op.MUL, bin_(Op.ADD, a, b), bin_(Op.ADD, b, a))
    assert str(Graph([out])) == golden("""
        %0: f32[4] = buffer #1000
        %1: f32[4] = buffer #1001
        %2: f32[4] = add %0 %1
        %3: f32[4] = add %1 %0
        %4: f32[4] = mul %2 %3
        return %4
    """)
    assert str(cse(Graph([out]))) == golden("""
        %0: f32[4] = buffer #1000
        %1: f32[4] = buffer #1001
        %2: f32[4] = add %0 %1
        %3: f32[4] = mul %2 %2
        return %3
    """)


def test_cse_canonical_order_does_not_depend_on_spelling():
    a, b = buf(0), buf(1)
    ab = cse(Graph([bin_(Op.MAX, a, b)])).outputs[0]
    ba = cse(Graph([bin_(Op.MAX, b, a)])).outputs[0]
    assert ab is ba


def test_cse_keeps_non_commutative_order():
    a, b = buf(0), buf(1)
    g = Graph([bin_(Op.SUB, a, b), bin_(Op.SUB, b, a)])
    assert str(cse(g)) == golden("""
        %0: f32[4] = buffer #1000
        %1: f32[4] = buffer #1001
        %2: f32[4] = sub %0 %1
        %3: f32[4] = sub %1 %0
        return %2, %3
    """)


def test_cse_merges_across_outputs():
    a, b = buf(0), buf(1)
    g = cse(Graph([un(Op.EXP, bin_(Op.MUL, a, b)), un(Op.LOG, bin_(Op.MUL, b, a))]))
    assert str(g) == golden("""
        %0: f32[4] = buffer #1000
        %1: f32[4] = buffer #1001
        %2: f32[4] = mul %0 %1
        %3: f32[4] = exp %2
        %4: f32[4] = log %2
        return %3, %4
    """)


# ------------------------------------------------------------------------- dce

def test_dce_drops_what_outputs_do_not_need():
    a, b = buf(0), buf(1)
    dead = un(Op.EXP, b)
    live = un(Op.NEG, a)
    g = Graph([live], nodes=[a, b, dead, live])
    assert str(g) == golden("""
        %0: f32[4] = buffer #1000
        %1: f32[4] = buffer #1001
        %2: f32[4] = exp %1
        %3: f32[4] = neg %0
        return %3
    """)
    assert str(dce(g)) == golden("""
        %0: f32[4] = buffer #1000
        %1: f32[4] = neg %0
        return %1
    """)


def test_dce_keeps_a_live_graph():
    a = buf(0)
    g = Graph([un(Op.EXP, a)])
    assert str(dce(g)) == str(g)


# ------------------------------------------------------------------------- verify

def test_verify_accepts_well_formed_graphs():
    a, b = buf(0, (2, 3)), buf(1, (2, 3))
    s = Node(Op.SUM, (bin_(Op.ADD, a, b),), (1,), (2, 1), F32)
    lt = bin_(Op.CMPLT, a, b, B8)
    w = Node(Op.WHERE, (lt, a, b), None, (2, 3), F32)
    g = Graph([s, w, Node(Op.ARGMAX, (a,), (0,), (1, 3), dt.int64)])
    assert verify(g) is g


def test_verify_quotes_the_bad_line():
    a, b = buf(0, (4,)), buf(1, (3,))
    bad = Node(Op.ADD, (a, b), None, (4,), F32)
    g = Graph([un(Op.EXP, bad)])
    with pytest.raises(ValueError) as e:
        verify(g)
    assert str(e.value) == golden("""
        invalid IR at %2 (add): srcs must have the node's shape
          %0: f32[4] = buffer #1000
          %1: f32[3] = buffer #1001
        > %2: f32[4] = add %0 %1
          %3: f32[4] = exp %2
          return %3
    """)


@pytest.mark.parametrize("make, problem", [
    (lambda a, i: bin_(Op.CMPLT, a, a), "comparisons give bool"),
    (lambda a, i: bin_(Op.MUL, a, i), "srcs of an elementwise op must share a dtype"),
    (lambda a, i: Node(Op.SUM, (a,), (1,), (4,), F32), "reduce axis out of range"),
    (lambda a, i: Node(Op.SUM, (a,), (0,), (4,), F32),
     "reduce keeps reduced dims as 1: expected (1,)"),
    (lambda a, i: Node(Op.ARGMAX, (a,), (0,), (1,), F32), "argmax/argmin give int64"),
    (lambda a, i: Node(Op.RESHAPE, (a,), (5,), (5,), F32), "reshape changes numel"),
    (lambda a, i: Node(Op.EXPAND, (a,), (2, 4), (2, 4), F32),
     "expand only broadcasts size-1 dims"),
    (lambda a, i: Node(Op.WHERE, (a, a, a), None, (4,), F32),
     "where takes (bool cond, a, b) of the node's shape"),
    (lambda a, i: Node(Op.EXP, (a, a), None, (4,), F32), "expects 1 srcs"),
])
def test_verify_problems(make, problem):
    a, i = buf(0), buf(1, dtype=I32)
    with pytest.raises(ValueError, match="invalid IR at") as e:
        verify(Graph([make(a, i)]))
    first, *ctx = str(e.value).splitlines()
    assert first.endswith(": " + problem)
    assert sum(line.startswith("> ") for line in ctx) == 1


def test_passes_keep_graphs_valid():
    a, b = buf(0), buf(1)
    one = const(1.0, F32, (4,))
    out = bin_(Op.ADD, bin_(Op.MUL, a, one), un(Op.EXP, bin_(Op.ADD, b, a)))
    seen = []
    g = optimize(Graph([out, bin_(Op.ADD, a, b)]),
                 after_each=lambda name, g: seen.append(name) or verify(g))
    assert seen == [p.__name__ for p in PIPELINE] == ["simplify", "distribute_sums", "cse", "dce"]
    assert str(g) == golden("""
        %0: f32[4] = buffer #1000
        %1: f32[4] = buffer #1001
        %2: f32[4] = add %0 %1
        %3: f32[4] = exp %2
        %4: f32[4] = add %0 %3
        return %4, %2
    """)


def test_passes_are_pure():
    a = buf(0)
    g = Graph([bin_(Op.MUL, a, const(1.0, F32, (4,)))])
    before = str(g)
    for p in (simplify, cse, dce, verify):
        p(g)
    assert str(g) == before


# ------------------------------------------------------------------------- memory plan

def test_plan_memory_reuses_dead_buffers():
    x = buf(0)
    t1, t2, t3 = un(Op.EXP, x), un(Op.LOG, x), un(Op.SIN, x)
    out = un(Op.COS, x)
    # a chain: t1 <- x, t2 <- t1, t3 <- t2, out <- t3
    order = [(t1, [x]), (t2, [t1]), (t3, [t2]), (out, [t3])]
    assert plan_memory(order, {out}) == {t1: 0, t2: 1, t3: 0, out: 2}


def test_plan_memory_never_shares_live_or_kept_buffers():
    x = buf(0)
    t1, t2, out = un(Op.EXP, x), un(Op.LOG, x), un(Op.SIN, x)
    # t1 is read by the last kernel, so it is live while t2 is written
    order = [(t1, [x]), (t2, [x, t1]), (out, [t1, t2])]
    slots = plan_memory(order, {out, t2})
    assert len(set(slots.values())) == 3


def test_plan_memory_only_shares_equal_sizes():
    x, big = buf(0), buf(1, (8,))
    t1 = un(Op.EXP, x)
    t2 = un(Op.EXP, big)
    t3 = un(Op.LOG, x)
    order = [(t1, [x]), (t2, [t1, big]), (t3, [t2]), (un(Op.SIN, x), [t3])]
    slots = plan_memory(order, set())
    assert slots[t2] != slots[t1]      # 32 bytes vs 16 bytes
    assert slots[t3] == slots[t1]      # t1 is dead and has t3's size


def test_plan_memory_frees_unread_nodes():
    x = buf(0)
    t1, t2 = un(Op.EXP, x), un(Op.LOG, x)
    slots = plan_memory([(t1, [x]), (t2, [x])], set())
    assert slots == {t1: 0, t2: 0}


def test_simplify_gather_at_own_argmax_is_max():
    x = buf(1, (3, 4))
    am = Node(Op.ARGMAX, (x,), (1,), (3, 1), dt.int64)
    g = Node(Op.GATHER, (x, am), 1, (3, 1), F32)
    out = simplify(Graph([g])).outputs[0]
    assert out.op is Op.RMAX and out.srcs == (x,) and out.arg == (1,) and out.shape == (3, 1)
    amin = Node(Op.ARGMIN, (x,), (1,), (3, 1), dt.int64)
    out = simplify(Graph([Node(Op.GATHER, (x, amin), 1, (3, 1), F32)])).outputs[0]
    assert out.op is Op.RMIN
    # another tensor's argmax, or another axis: a real gather stays
    y = buf(2, (3, 4))
    other = Node(Op.GATHER, (y, am), 1, (3, 1), F32)
    assert simplify(Graph([other])).outputs[0].op is Op.GATHER
    am0 = Node(Op.ARGMAX, (x,), (0,), (1, 4), dt.int64)
    across = Node(Op.GATHER, (x, am0), 1, (1, 4), F32)
    assert simplify(Graph([across])).outputs[0].op is Op.GATHER
