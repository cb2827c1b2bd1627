"""Matrix products with PyTorch's semantics and messages: matmul (`@`), mm, bmm, mv, dot, vdot,
outer/ger, addmm, baddbmm, tensordot and einsum.

Every product is views plus two ops: the operands are reshaped, permuted and expanded so that
the contracted axes line up, multiplied (MUL) and summed over those axes (SUM). The scheduler
turns MUL+SUM into one reduce kernel and fuses elementwise epilogues (bias, activation) into it.
Shapes and dtypes are checked at the call, with PyTorch's messages; like PyTorch, products do
not promote dtypes (both operands must agree), except outer and einsum's plain multiplications.
"""
from __future__ import annotations

import math
from typing import Sequence

from .frontend.elementwise import cast_node
from .frontend.tensor import Tensor, _canon_dim
from .ir import dtypes as dt
from .ir.graph import Node, const, new_node
from .ir.ops import Op
from .ir.sites import record

_SCALAR = dt.SCALAR_TYPE_NAMES
_CTYPE = dt.CPP_TYPE_NAMES
# the ops the helpers build, bound once (an Enum member lookup costs a Python call on 3.11)
_RESHAPE, _PERMUTE, _EXPAND, _MUL, _SUM = Op.RESHAPE, Op.PERMUTE, Op.EXPAND, Op.MUL, Op.SUM


# --------------------------------------------------------------------------- node helpers
def _reshape(n: Node, shape: Sequence[int]) -> Node:
    shape = tuple(shape)
    return n if n.shape == shape else new_node(_RESHAPE, (n,), shape, shape, n.dtype)


def _permute(n: Node, perm: Sequence[int]) -> Node:
    perm = tuple(perm)
    if perm == tuple(range(len(perm))):
        return n
    return new_node(_PERMUTE, (n,), perm, tuple(n.shape[p] for p in perm), n.dtype)


def _expand(n: Node, shape: Sequence[int]) -> Node:
    shape = tuple(shape)
    return n if n.shape == shape else new_node(_EXPAND, (n,), shape, shape, n.dtype)


def _product(ops: Sequence[Node], shape: Sequence[int], axes: Sequence[int],
             dtype: dt.DType) -> Node:
    """Sum over `axes` of the product of `ops` (each broadcastable to `shape`, same rank).

    Each operand is expanded before it is cast, so the cast fuses into the reduce kernel
    instead of making the scheduler store a broadcast computed node. bfloat16 and half are
    multiplied and summed in float and rounded once, as PyTorch's CPU matmul does: their
    operands are widened before they are broadcast, so the widened operands are stored (the
    float GEMM reads them) and the gradients reaching them are summed in float.
    """
    shape = tuple(shape)
    out_dtype = dtype
    wide = (dtype is dt.bfloat16 or dtype is dt.float16) and bool(axes)
    if wide:
        dtype = dt.float32
    prod = None
    for n in ops:
        n = _expand(cast_node(n, dtype), shape) if wide else cast_node(_expand(n, shape), dtype)
        prod = n if prod is None else new_node(_MUL, (prod, n), None, shape, dtype)
    axes = tuple(sorted(axes))
    if not axes:
        return prod
    kept = tuple(1 if i in axes else s for i, s in enumerate(shape))
    r = cast_node(new_node(_SUM, (prod,), axes, kept, dtype), out_dtype)
    return _reshape(r, tuple(s for i, s in enumerate(shape) if i not in axes))


def _matmul_node(a: Node, b: Node, batch: tuple[int, ...], dtype: dt.DType | None = None) -> Node:
    """(*ba, m, k) @ (*bb, k, n) -> (*batch, m, n); ba and bb broadcast to batch (same rank)."""
    nb = len(batch)
    *ba, m, k = a.shape
    *bb, _, n = b.shape
    a3 = _reshape(a, (*ba, m, 1, k))
    b3 = _reshape(_permute(b, (*range(nb), nb + 1, nb)), (*bb, 1, n, k))
    return _product([a3, b3], (*batch, m, n, k), (nb + 2,), dtype or a.dtype)


def _wrap(node: Node) -> Tensor:
    record(node)
    return Tensor._make(node)


# --------------------------------------------------------------------------- checks
def _need_tensor(x, fn: str, name: str, pos: int) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}(): argument '{name}' (position {pos}) must be Tensor, not "
                        f"{type(x).__name__}")


def _no_bool(d: dt.DType, kernel: str) -> None:
    if d == dt.bool_:
        raise NotImplementedError(f'"{kernel}" not implemented for \'Bool\'')


def _check_mm(s1, s2, d1: dt.DType, d2: dt.DType) -> None:
    if s1[1] != s2[0]:
        raise RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({s1[0]}x{s1[1]} and "
                           f"{s2[0]}x{s2[1]})")
    if d1 != d2:
        raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {_CTYPE[d1]} "
                           f"!= {_CTYPE[d2]}")
    _no_bool(d1, "addmm_impl_cpu_")


def _check_mv(sm, sv, dm: dt.DType, dv: dt.DType) -> None:
    if sm[1] != sv[0]:
        raise RuntimeError(f"size mismatch, got input ({sm[0]}), mat ({sm[0]}x{sm[1]}), vec "
                           f"({sv[0]})")
    if dm != dv:
        raise RuntimeError(f"addmv input tensors must have the same dtype, but got "
                           f"{_SCALAR[dv]}, {_SCALAR[dm]}, and {_SCALAR[dv]}")
    _no_bool(dm, "addmv_impl_cpu")


def _check_bmm(s1, s2, d1: dt.DType, d2: dt.DType, kernel: str = "bmm") -> dt.DType:
    """bmm's checks on (b, n, m) and (b, m, p) shapes; returns the result dtype."""
    if s2[0] != s1[0] or s2[1] != s1[2]:
        raise RuntimeError(f"Expected size for first two dimensions of batch2 tensor to be: "
                           f"[{s1[0]}, {s1[2]}] but got: [{s2[0]}, {s2[1]}].")
    return _bmm_dtype(d1, d2, math.prod(s1) == 0 or math.prod(s2) == 0, kernel)


def _bmm_dtype(d1: dt.DType, d2: dt.DType, empty: bool, kernel: str = "bmm") -> dt.DType:
    """bmm's dtype checks; PyTorch skips them for empty operands and answers batch2's dtype."""
    if empty:
        return d2
    _no_bool(d1, kernel)
    if d1 != d2:
        raise RuntimeError(f"expected scalar type {_SCALAR[d1]} but found {_SCALAR[d2]}")
    return d1


def _infer_size(a: Sequence[int], b: Sequence[int]) -> tuple[int, ...]:
    """Broadcast two batch shapes, with the message of PyTorch's infer_size."""
    n = max(len(a), len(b))
    out = [1] * n
    for i in range(n - 1, -1, -1):
        off = n - 1 - i
        sa = a[len(a) - 1 - off] if len(a) - 1 - off >= 0 else 1
        sb = b[len(b) - 1 - off] if len(b) - 1 - off >= 0 else 1
        if sa != sb and sa != 1 and sb != 1:
            raise RuntimeError(f"The size of tensor a ({sa}) must match the size of tensor b "
                               f"({sb}) at non-singleton dimension {i}")
        out[i] = sb if sa == 1 else sa
    return tuple(out)


# --------------------------------------------------------------------------- products
def dot(input: Tensor, other: Tensor) -> Tensor:
    """torch.dot: the inner product of two 1-D tensors of the same dtype."""
    _need_tensor(input, "dot", "input", 1)
    _need_tensor(other, "dot", "tensor", 2)
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {other.ndim}D "
                           f"tensors")
    if input.dtype != other.dtype:
        raise RuntimeError(f"dot : expected both vectors to have same dtype, but found "
                           f"{_SCALAR[input.dtype]} and {_SCALAR[other.dtype]}")
    n1, n2 = input.numel(), other.numel()
    if n1 != n2:
        raise RuntimeError(f"inconsistent tensor size, expected tensor [{n1}] and src [{n2}] to "
                           f"have the same number of elements, but got {n1} and {n2} elements "
                           f"respectively")
    _no_bool(input.dtype, "dot")
    return _wrap(_product([input.node, other.node], (n1,), (0,), input.dtype))


def vdot(input: Tensor, other: Tensor) -> Tensor:
    """torch.vdot: dot with the first argument conjugated (the same as dot for real tensors)."""
    return dot(input, other)


def mv(input: Tensor, vec: Tensor) -> Tensor:
    """torch.mv: matrix (n, m) times vector (m,)."""
    _need_tensor(input, "mv", "input", 1)
    _need_tensor(vec, "mv", "vec", 2)
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got 1, {input.ndim}, "
                           f"{vec.ndim}")
    _check_mv(input.shape, vec.shape, input.dtype, vec.dtype)
    m, k = input.shape
    v = _reshape(vec.node, (1, k))
    return _wrap(_product([input.node, v], (m, k), (1,), input.dtype))


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """torch.mm: (n, m) @ (m, p), no broadcasting."""
    _need_tensor(input, "mm", "input", 1)
    _need_tensor(mat2, "mm", "mat2", 2)
    if input.ndim != 2:
        raise RuntimeError("self must be a matrix")
    if mat2.ndim != 2:
        raise RuntimeError("mat2 must be a matrix")
    a, b = input._node, mat2._node
    _check_mm(a.shape, b.shape, a.dtype, b.dtype)
    return _wrap(_matmul_node(a, b, ()))


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """torch.bmm: (b, n, m) @ (b, m, p), no broadcasting."""
    _need_tensor(input, "bmm", "input", 1)
    _need_tensor(mat2, "bmm", "mat2", 2)
    if input.ndim != 3:
        raise RuntimeError("batch1 must be a 3D tensor")
    if mat2.ndim != 3:
        raise RuntimeError("batch2 must be a 3D tensor")
    d = _check_bmm(input.shape, mat2.shape, input.dtype, mat2.dtype)
    return _wrap(_matmul_node(input.node, mat2.node, (input.shape[0],), d))


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """torch.matmul / `@`: dot, mv, mm, or a batched product broadcasting the batch dims."""
    _need_tensor(input, "matmul", "input", 1)
    _need_tensor(other, "matmul", "other", 2)
    d1, d2 = input.ndim, other.ndim
    if d1 == 0 or d2 == 0:
        raise RuntimeError(f"both arguments to matmul need to be at least 1D, but they are "
                           f"{d1}D and {d2}D")
    if d1 == 1 and d2 == 1:
        return dot(input, other)
    if d1 == 2 and d2 == 1:
        return mv(input, other)
    if d1 == 2 and d2 == 2:
        return mm(input, other)
    sa, sb = tuple(input.shape), tuple(other.shape)
    if d1 == 1 and d2 == 2:
        _check_mm((1, sa[0]), sb, input.dtype, other.dtype)
        out = _matmul_node(_reshape(input.node, (1, sa[0])), other.node, ())
        return _wrap(_reshape(out, (sb[1],)))
    if d1 >= 3 and d2 <= 2:
        # PyTorch folds the batch into the rows and calls mm or mv: same checks and messages
        batch, k = sa[:-2], sa[-1]
        rows = math.prod(sa[:-1])
        if d2 == 2:
            _check_mm((rows, k), sb, input.dtype, other.dtype)
            b = _reshape(other.node, (1,) * len(batch) + sb)
            return _wrap(_matmul_node(input.node, b, batch))
        _check_mv((rows, k), sb, input.dtype, other.dtype)
        v = _reshape(other.node, (1,) * (d1 - 1) + sb)
        return _wrap(_product([input.node, v], sa, (d1 - 1,), input.dtype))
    # batched: broadcast the batch dims, then bmm's checks on the flattened batch
    n = sa[-2] if d1 > 1 else 1
    m1 = sa[-1]
    batch_a = sa[:-2] if d1 > 1 else ()
    m2 = sb[-2] if d2 > 1 else sb[0]
    p = sb[-1] if d2 > 1 else 1
    batch_b = sb[:-2] if d2 > 1 else ()
    batch = _infer_size(batch_a, batch_b)
    nb = math.prod(batch)
    d = _check_bmm((nb, n, m1), (nb, m2, p), input.dtype, other.dtype)
    pad = len(batch)
    a = _reshape(input.node, (1,) * (pad - len(batch_a)) + batch_a + (n, m1))
    b = _reshape(other.node, (1,) * (pad - len(batch_b)) + batch_b + (m2, p))
    out = _matmul_node(a, b, batch, d)
    shape = batch + ((n,) if d1 > 1 else ()) + ((p,) if d2 > 1 else ())
    return _wrap(_reshape(out, shape))


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """torch.outer / ger: input[i] * vec2[j], with type promotion."""
    _need_tensor(input, "outer", "input", 1)
    _need_tensor(vec2, "outer", "vec2", 2)
    if input.ndim != 1:
        raise RuntimeError(f"outer: Expected 1-D argument self, but got {input.ndim}-D")
    if vec2.ndim != 1:
        raise RuntimeError(f"outer: Expected 1-D argument vec2, but got {vec2.ndim}-D")
    from .frontend.elementwise import mul
    return mul(_wrap(_reshape(input.node, (input.shape[0], 1))), vec2)


ger = outer


def _scaled_sum(bias: Node, prod: Node, beta, alpha) -> Node:
    """beta * bias + alpha * prod, as addmm/baddbmm compute it (a zero factor drops its term,
    so nan/inf there do not propagate; integer results truncate beta and alpha)."""
    d = prod.dtype
    if not d.is_floating_point:
        beta, alpha = int(beta), int(alpha)
    shape = prod.shape

    def scale(n: Node, s) -> Node:
        if s == 1:
            return n
        return Node(Op.MUL, (n, const(s, d, shape)), None, shape, d)

    if beta == 0 and alpha == 0:
        return const(0, d, shape)
    if beta == 0:
        return scale(prod, alpha)
    if alpha == 0:
        return scale(bias, beta)
    return Node(Op.ADD, (scale(bias, beta), scale(prod, alpha)), None, shape, d)


def _bias(input: Tensor, shape: tuple[int, ...]) -> Node:
    """input broadcast to shape, with expand's message when it cannot be."""
    from .frontend.views import expand
    return expand(input, shape).node


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """torch.addmm: beta * input + alpha * (mat1 @ mat2), input broadcast to the result."""
    _need_tensor(input, "addmm", "input", 1)
    _need_tensor(mat1, "addmm", "mat1", 2)
    _need_tensor(mat2, "addmm", "mat2", 3)
    if input.dtype != mat2.dtype:
        raise RuntimeError(f"self and mat2 must have the same dtype, but got "
                           f"{_SCALAR[input.dtype]} and {_SCALAR[mat2.dtype]}")
    if mat1.dtype != mat2.dtype:
        raise RuntimeError(f"mat1 and mat2 must have the same dtype, but got "
                           f"{_SCALAR[mat1.dtype]} and {_SCALAR[mat2.dtype]}")
    for name, m in (("mat1", mat1), ("mat2", mat2)):
        if m.ndim != 2:
            raise RuntimeError(f"{name} must be a matrix, got {m.ndim}-D tensor")
    _check_mm(mat1.shape, mat2.shape, mat1.dtype, mat2.dtype)
    bias = _bias(input, (mat1.shape[0], mat2.shape[1]))
    return _wrap(_scaled_sum(bias, _matmul_node(mat1.node, mat2.node, ()), beta, alpha))


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """torch.baddbmm: beta * input + alpha * bmm(batch1, batch2), input broadcast."""
    _need_tensor(input, "baddbmm", "input", 1)
    _need_tensor(batch1, "baddbmm", "batch1", 2)
    _need_tensor(batch2, "baddbmm", "batch2", 3)
    if input.dtype != batch1.dtype:
        raise RuntimeError(f"Input dtypes must be the same, got: input {_CTYPE[input.dtype]}, "
                           f"batch1: {_CTYPE[batch1.dtype]}, batch2: {_CTYPE[batch2.dtype]}")
    if batch1.ndim != 3:
        raise RuntimeError("batch1 must be a 3D tensor")
    if batch2.ndim != 3:
        raise RuntimeError("batch2 must be a 3D tensor")
    d = _check_bmm(batch1.shape, batch2.shape, batch1.dtype, batch2.dtype, "baddbmm")
    b, n, _ = batch1.shape
    bias = cast_node(_bias(input, (b, n, batch2.shape[2])), d)
    prod = _matmul_node(batch1.node, batch2.node, (b,), d)
    return _wrap(_scaled_sum(bias, prod, beta, alpha))


def tensordot(a: Tensor, b: Tensor, dims=2, out=None) -> Tensor:
    """torch.tensordot: contract dims of a with dims of b (an int n: a's last n with b's
    first n; or two lists)."""
    if out is not None:
        raise NotImplementedError("tensordot(out=) is not supported")
    _need_tensor(a, "tensordot", "a", 1)
    _need_tensor(b, "tensordot", "b", 2)
    if isinstance(dims, Tensor):
        if dims.numel() > 1:
            dims = dims.tolist()
        else:
            dims = int(dims.item())
    if isinstance(dims, int) and not isinstance(dims, bool):
        if dims < 0:
            raise RuntimeError(f"tensordot expects dims >= 0, but got dims={dims}")
        if dims > min(a.ndim, b.ndim):
            raise RuntimeError(f"tensordot expects dims < ndim_a or ndim_b, but got dims={dims}")
        dims_a, dims_b = list(range(-dims, 0)), list(range(dims))
    elif isinstance(dims, (tuple, list)):
        dims_a, dims_b = dims
        for i, x in enumerate((dims_a, dims_b)):
            if not isinstance(x, (list, tuple)):
                raise TypeError(f"tensordot(): argument '{('dims_self', 'dims_other')[i]}' "
                                f"(position {3 + i}) must be tuple of ints, not "
                                f"{type(x).__name__}")
    else:
        raise RuntimeError("tensordot expects dims to be int or tuple[list[int], list[int]] or "
                           f"list[list[int]] containing two lists, but got dims={dims}")
    if len(dims_a) != len(dims_b):
        raise RuntimeError("both dimension lists should have same length")
    if a.dtype != b.dtype:
        raise RuntimeError("both inputs should have same dtype")
    ca = [_canon_dim(int(x), a.ndim) for x in dims_a]
    cb = [_canon_dim(int(x), b.ndim) for x in dims_b]
    for c in (ca, cb):
        for x in c:
            if c.count(x) > 1:
                raise RuntimeError(f"dim {x} appears multiple times in the list of dims")
    csizes = []
    for x, y, ox, oy in zip(ca, cb, dims_a, dims_b):
        s1, s2 = a.shape[x], b.shape[y]
        if s1 != s2 and s1 != 1 and s2 != 1:
            raise RuntimeError(f"contracted dimensions need to match, but first has size {s1} "
                               f"in dim {ox} and second has size {s2} in dim {oy}")
        csizes.append(s1 if s2 == 1 else s2)
    _no_bool(a.dtype, "addmm_impl_cpu_")
    fa = [i for i in range(a.ndim) if i not in ca]
    fb = [i for i in range(b.ndim) if i not in cb]
    sa = [a.shape[i] for i in fa]
    sb = [b.shape[i] for i in fb]
    an = _reshape(_permute(a.node, fa + ca), sa + [1] * len(sb) + [a.shape[i] for i in ca])
    bn = _reshape(_permute(b.node, fb + cb), [1] * len(sa) + sb + [b.shape[i] for i in cb])
    full = sa + sb + csizes
    nf = len(sa) + len(sb)
    return _wrap(_product([an, bn], full, range(nf, len(full)), a.dtype))


# ----------------------------------------------------------------------------- more products
def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta=1, alpha=1) -> Tensor:
    """torch.addmv: beta * input + alpha * (mat @ vec), input broadcast to the result."""
    _need_tensor(input, "addmv", "input", 1)
    prod = mv(mat, vec)
    return _wrap(_scaled_sum(_bias(input.to(prod.dtype), prod.shape), prod.node, beta, alpha))


def addr(input: Tensor, vec1: Tensor, vec2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """torch.addr: beta * input + alpha * outer(vec1, vec2), input broadcast to the result."""
    _need_tensor(input, "addr", "input", 1)
    prod = outer(vec1, vec2)
    if prod.dtype == dt.bool_:  # PyTorch: logical and/or for bool
        return (input & bool(beta)) | (prod & bool(alpha))
    return _wrap(_scaled_sum(_bias(input.to(prod.dtype), prod.shape), prod.node, beta, alpha))


def addbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta=1, alpha=1) -> Tensor:
    """torch.addbmm: beta * input + alpha * (the sum over the batch of batch1[i] @ batch2[i])."""
    _need_tensor(input, "addbmm", "input", 1)
    prod = bmm(batch1, batch2).sum(0)
    return _wrap(_scaled_sum(_bias(input.to(prod.dtype), prod.shape), prod.node, beta, alpha))


def inner(input: Tensor, other: Tensor) -> Tensor:
    """torch.inner: sums of products over the last dims (a product when either is 0-d)."""
    _need_tensor(input, "inner", "input", 1)
    _need_tensor(other, "inner", "other", 2)
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    if input.shape[-1] != other.shape[-1]:
        raise RuntimeError(f"inner() the last dimension must match on both input tensors but "
                           f"got shapes {list(input.shape)} and {list(other.shape)}")
    return tensordot(input, other, ([-1], [-1]))


def multi_dot(tensors: Sequence[Tensor]) -> Tensor:
    """torch.linalg.multi_dot: the product of a chain of matrices (the first may be a vector,
    as may the last), multiplied left to right."""
    ts = list(tensors)
    if len(ts) < 2:
        raise RuntimeError(f"multi_dot(): expected at least 2 tensors but got {len(ts)}")
    for i, t in enumerate(ts):
        _need_tensor(t, "multi_dot", "tensors", 1)
        ok = t.ndim == 2 or (t.ndim == 1 and i in (0, len(ts) - 1))
        if not ok:
            where = "first" if i == 0 else "last" if i == len(ts) - 1 else None
            raise RuntimeError(
                f"multi_dot(): the {where} tensor must be 1D or 2D but got {t.ndim}D" if where
                else f"multi_dot(): tensor {i} must be 2D but got {t.ndim}D")
    out = ts[0]
    for t in ts[1:]:
        out = matmul(out, t)
    return out


def chain_matmul(*matrices: Tensor) -> Tensor:
    """torch.chain_matmul (deprecated for linalg.multi_dot): the product of 2-D matrices."""
    if len(matrices) == 1 and isinstance(matrices[0], (list, tuple)):
        matrices = tuple(matrices[0])
    if len(matrices) == 1:
        return matrices[0].clone()
    return multi_dot(matrices)


def vecdot(x: Tensor, y: Tensor, *, dim: int = -1) -> Tensor:
    """torch.linalg.vecdot: sum(x * y, dim), broadcast."""
    _need_tensor(x, "linalg_vecdot", "x", 1)
    _need_tensor(y, "linalg_vecdot", "y", 2)
    return (x * y).sum(dim)


def matrix_power(A: Tensor, n: int) -> Tensor:
    """A @ A @ ... (n times) by repeated squaring; n = 0 gives the identity. A negative n needs
    the inverse, which lazytorch does not compute."""
    _need_tensor(A, "matrix_power", "input", 1)
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise RuntimeError(f"linalg.matrix_power: A must be batches of square matrices, but "
                           f"they are {A.shape[-2] if A.ndim >= 2 else 0} by "
                           f"{A.shape[-1] if A.ndim else 0} matrices")
    n = int(n)
    if n < 0:
        raise NotImplementedError("linalg.matrix_power with a negative power needs the matrix "
                                  "inverse, which lazytorch does not compute")
    if n == 0:
        from .frontend.creation import eye
        return eye(A.shape[-1], dtype=A.dtype, device=A.device).expand(*A.shape).clone()
    result, base = None, A
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result


from .frontend.einsum import einsum  # noqa: E402  (einsum builds on the helpers above)

__all__ = ["matmul", "mm", "bmm", "mv", "dot", "vdot", "outer", "ger", "addmm", "baddbmm",
           "tensordot", "einsum", "addmv", "addr", "addbmm", "inner", "chain_matmul"]


# torch.linalg's own names (this module is torch.linalg; they stay out of __all__, which is
# what torch.* takes from here: torch.norm and torch.cross differ from linalg's)
def cross(input: Tensor, other: Tensor, *, dim: int = -1) -> Tensor:
    """torch.linalg.cross: the 3-D cross product along dim, broadcast."""
    from .frontend.structure import _cross
    from .frontend.tensor import broadcast_shapes
    if input.ndim != other.ndim:
        raise RuntimeError("linalg.cross: inputs must have the same number of dimensions.")
    return _cross(input, other, dim, broadcast_shapes(input.shape, other.shape))


def diagonal(A: Tensor, *, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """torch.linalg.diagonal: torch.diagonal over the last two dims by default."""
    from .frontend.structure import diagonal as _diagonal
    return _diagonal(A, offset, dim1, dim2)


def vander(x: Tensor, *, N: int | None = None) -> Tensor:
    """torch.linalg.vander: x (..., n) to (..., n, N), the powers x^0, ..., x^(N-1)."""
    _need_tensor(x, "linalg_vander", "x", 1)
    if x.ndim == 0:
        raise RuntimeError("linalg.vander: x must have at least one dimension")
    n = x.shape[-1] if N is None else int(N)
    if n <= 1:
        raise RuntimeError("N must be greater than 1.")
    from .frontend.joining import cat
    col = x.unsqueeze(-1)
    powers = col.expand(*x.shape, n - 1).cumprod(-1)
    return cat([col ** 0, powers], -1)


from .frontend.norms import linalg_norm as norm  # noqa: E402,F401
from .frontend.norms import matrix_norm, vector_norm  # noqa: E402,F401
