"""Per-op tables are complete: a new Op without a C expression or a numpy rule fails here."""
from __future__ import annotations

import pytest

from lazytorch.compiler.codegen_c import C_EXPR
from lazytorch.ops import ELEMENTWISE, Op
from lazytorch.runtime.interpreter import NUMPY


@pytest.mark.parametrize("op", list(Op), ids=lambda op: op.name)
def test_every_op_has_its_table_entries(op):
    if op in ELEMENTWISE and op is not Op.CAST:  # CAST is rendered by codegen_c._cast
        assert op in C_EXPR, f"codegen_c.C_EXPR lacks {op.name}"
    if op not in (Op.BUFFER, Op.CONST):  # sources hold data, they compute nothing
        assert op in NUMPY, f"interpreter.NUMPY lacks {op.name}"


def test_tables_hold_only_real_ops():
    assert set(C_EXPR) <= ELEMENTWISE
    assert set(NUMPY) <= set(Op) - {Op.BUFFER, Op.CONST}


def test_c_expr_arity_matches_the_op():
    from lazytorch import dtypes as dt
    from lazytorch.ops import BINARY, TERNARY, UNARY
    for op, fn in C_EXPR.items():
        n = 1 if op in UNARY else 2 if op in BINARY else 3 if op in TERNARY else None
        assert n is not None, op
        text = fn(dt.float32, *(f"a{i}" for i in range(n)))
        assert all(f"a{i}" in text for i in range(n)), (op, text)
