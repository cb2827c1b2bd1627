"""torch.einsum with PyTorch's checks, messages and result dtypes: the equation (or sublist
form) is parsed to labels, repeated labels within an operand take a diagonal, and every operand
is permuted and reshaped to one aligned shape; the result is a single MUL+SUM product
(linalg._product), which the scheduler makes one reduce kernel."""
from __future__ import annotations

from ..ir import dtypes as dt
from ..ir.graph import Node
from ..ir.ops import Op
from ..linalg import _bmm_dtype, _permute, _product, _reshape, _wrap
from .tensor import Tensor

_ELLIPSIS = 52


def _label(c: str) -> int:
    return ord(c) - ord("A") if c.isupper() else ord(c) - ord("a") + 26


def _label_char(s: int) -> str:
    return chr(ord("A") + s) if s < 26 else chr(ord("a") + s - 26)


def _is_letter(c: str) -> bool:
    return c.isascii() and c.isalpha()


def _sublist_char(n) -> str:
    if n is Ellipsis:
        return "..."
    if 0 <= n < 26:
        return chr(ord("A") + n)
    if 26 <= n < 52:
        return chr(ord("a") + n - 26)
    raise ValueError("einsum(): subscript in subscript list is not within the valid range "
                     "[0, 52)")


def einsum(*args) -> Tensor:
    """torch.einsum(equation, *operands), or the sublist form einsum(op, [0, 1], op, [1, 2])."""
    if len(args) < 2:
        raise ValueError("einsum(): must specify the equation string and at least one operand, "
                         "or at least one operand and its subscripts list")
    if isinstance(args[0], Tensor):
        equation = ",".join("".join(_sublist_char(s) for s in lst) for lst in args[1::2])
        if len(args) % 2 == 1:
            equation += "->" + "".join(_sublist_char(s) for s in args[-1])
            operands = list(args[:-1:2])
        else:
            operands = list(args[::2])
    else:
        equation, operands = args[0], list(args[1:])
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = list(operands[0])
    for i, op in enumerate(operands):
        if not isinstance(op, Tensor):
            raise TypeError(f"expected Tensor as element {i} in argument 1, but got "
                            f"{type(op).__name__}")
    if not operands:
        raise RuntimeError("einsum(): must provide at least one operand")
    return _einsum(equation, operands)


def _parse_operands(lhs: str, num_ops: int) -> list[list[int]]:
    op_labels: list[list[int]] = [[] for _ in range(num_ops)]
    cur, ell_seen, i = 0, False, 0
    while i < len(lhs):
        c = lhs[i]
        if c == " ":
            pass
        elif c == ".":
            if ell_seen:
                raise RuntimeError(f"einsum(): found '.' for operand {cur} for which an ellipsis "
                                   f"was already found")
            if not (i + 2 < len(lhs) and lhs[i + 1] == "." and lhs[i + 2] == "."):
                raise RuntimeError(f"einsum(): found '.' for operand {cur} that is not part of "
                                   f"any ellipsis")
            i += 2
            op_labels[cur].append(_ELLIPSIS)
            ell_seen = True
        elif c == ",":
            cur += 1
            if cur >= num_ops:
                raise RuntimeError("einsum(): fewer operands were provided than specified in "
                                   "the equation")
            ell_seen = False
        elif _is_letter(c):
            op_labels[cur].append(_label(c))
        else:
            raise RuntimeError(f"einsum(): invalid subscript given at index {i} in the equation "
                               f"string, subscripts must be in [a-zA-Z]")
        i += 1
    if cur != num_ops - 1:
        raise RuntimeError("einsum(): more operands were provided than specified in the "
                           "equation")
    return op_labels


def _diagonal(n: Node, d0: int, d1: int) -> Node:
    """The diagonal over dims d0 < d1 (equal sizes), kept at position d0; d1 is removed."""
    s = n.shape[d0]
    rest = [i for i in range(len(n.shape)) if i not in (d0, d1)]
    x = _permute(n, rest + [d0, d1])
    lead = tuple(n.shape[i] for i in rest)
    x = _reshape(x, lead + (s * s,))
    arg = tuple((0, 1) for _ in lead) + ((0, s + 1),)
    x = Node(Op.SLICE, (x,), arg, lead + (s,), n.dtype)
    perm = list(range(len(lead)))
    perm.insert(d0, len(lead))
    return _permute(x, perm)


def _sum_dtype(d: dt.DType) -> dt.DType:
    return d if d.is_floating_point else dt.int64


def _positions(equation: str, arrow: int, label_count: list[int],
               ell_num_dim: int) -> tuple[list[int], int, int, int]:
    """Each label's dim in the aligned shape (output dims first, then the contracted ones);
    returns (position per label, number of dims, number of output dims, first ellipsis dim)."""
    lhs = equation if arrow < 0 else equation[:arrow]
    perm_index_of = [-1] * 52
    perm_index = ell_index = 0
    ell_in_output = False
    if arrow < 0:
        perm_index = ell_num_dim
        ell_in_output = True
        for s in range(52):
            if label_count[s] == 1:
                perm_index_of[s] = perm_index
                perm_index += 1
    else:
        rhs = equation[arrow + 2:]
        i = 0
        while i < len(rhs):
            c = rhs[i]
            if c == " ":
                pass
            elif c == ".":
                if ell_in_output:
                    raise RuntimeError("einsum(): found '.' for output but an ellipsis (...) "
                                       "was already found")
                if not (i + 2 < len(rhs) and rhs[i + 1] == "." and rhs[i + 2] == "."):
                    raise RuntimeError("einsum(): found '.' for output that is not part of any "
                                       "ellipsis (...)")
                i += 2
                ell_index = perm_index
                perm_index += ell_num_dim
                ell_in_output = True
            elif _is_letter(c):
                s = _label(c)
                if label_count[s] == 0 or perm_index_of[s] != -1:
                    why = ("appears more than once in the output" if perm_index_of[s] != -1
                           else "does not appear in the equation for any input operand")
                    raise RuntimeError(f"einsum(): output subscript {c} {why}")
                perm_index_of[s] = perm_index
                perm_index += 1
            else:
                raise RuntimeError(f"einsum(): invalid subscript given at index "
                                   f"{len(lhs) + 2 + i} in the equation string, subscripts "
                                   f"must be in [a-zA-Z]")
            i += 1
    out_num_dim = perm_index
    if not ell_in_output:
        ell_index = perm_index
        perm_index += ell_num_dim
    for s in range(52):
        if label_count[s] > 0 and perm_index_of[s] == -1:
            perm_index_of[s] = perm_index
            perm_index += 1

    return perm_index_of, perm_index, out_num_dim, ell_index


def _align(operands: list[Tensor], op_labels: list[list[int]], perm_index_of: list[int],
           perm_index: int, ell_index: int, ell_num_dim: int) -> tuple[list[Node], list[int]]:
    """Every operand as a node of perm_index dims (diagonals taken for repeated labels, size-1
    dims for missing ones), with PyTorch's size checks; and per dim, how many operands have it
    with a size other than 1."""
    label_size = [1] * 52
    ell_sizes = [1] * ell_num_dim
    dim_counts = [0] * perm_index
    nodes: list[Node] = []
    for i, (op, labels) in enumerate(zip(operands, op_labels)):
        n = op.node
        perm = [-1] * perm_index
        dim = 0
        for s in labels:
            if s == _ELLIPSIS:
                ndim = op.ndim - (len(labels) - 1)
                for j in range(ell_num_dim - ndim, ell_num_dim):
                    size = n.shape[dim]
                    if size != 1:
                        if ell_sizes[j] != 1 and ell_sizes[j] != size:
                            raise RuntimeError(
                                f"einsum(): dimension {dim} covered by ellipsis in operand "
                                f"{i}has size {size} which does not broadcast with previously "
                                f"seen ellipsis with size {ell_sizes[j]} for the respective "
                                f"dimension")
                        ell_sizes[j] = size
                        dim_counts[ell_index + j] += 1
                    perm[ell_index + j] = dim
                    dim += 1
            elif perm[perm_index_of[s]] == -1:
                size = n.shape[dim]
                if size != 1:
                    if label_size[s] != 1 and label_size[s] != size:
                        raise RuntimeError(
                            f"einsum(): subscript {_label_char(s)} has size {size} for operand "
                            f"{i} which does not broadcast with previously seen size "
                            f"{label_size[s]}")
                    label_size[s] = size
                    dim_counts[perm_index_of[s]] += 1
                perm[perm_index_of[s]] = dim
                dim += 1
            else:
                prev = perm[perm_index_of[s]]
                if n.shape[dim] != n.shape[prev]:
                    raise RuntimeError(
                        f"einsum(): subscript {_label_char(s)} is repeated for operand {i} but "
                        f"the sizes don't match, {n.shape[dim]} != {n.shape[prev]}")
                n = _diagonal(n, prev, dim)
        for k, v in enumerate(perm):
            if v == -1:
                n = _reshape(n, n.shape[:dim] + (1,) + n.shape[dim:])
                perm[k] = dim
                dim += 1
        nodes.append(_permute(n, perm))

    return nodes, dim_counts


def _contraction_dtype(nodes: list[Node], dim_counts: list[int], out_num_dim: int,
                       perm_index: int) -> dt.DType:
    """The result dtype (and errors) of PyTorch's left-to-right pairwise contraction: a dim
    summed inside one operand promotes integers to int64, a pairwise product with a summed dim
    is a bmm (same dtypes, no bool), one without is a promoting multiplication."""
    shapes = [list(n.shape) for n in nodes]
    dtypes = [n.dtype for n in nodes]
    while len(shapes) > 1:
        sa, sb = shapes.pop(0), shapes.pop(0)
        da, db = dtypes.pop(0), dtypes.pop(0)
        sum_dims, a_sum, b_sum = [], [], []
        for d in range(out_num_dim, perm_index):
            if sa[d] != 1 and sb[d] != 1:
                dim_counts[d] -= 1
                if dim_counts[d] == 1:
                    sum_dims.append(d)
                    dim_counts[d] = 0
            elif dim_counts[d] == 1:
                if sa[d] != 1:
                    a_sum.append(d)
                    dim_counts[d] = 0
                elif sb[d] != 1:
                    b_sum.append(d)
                    dim_counts[d] = 0
        if a_sum:
            sa = [1 if d in a_sum else x for d, x in enumerate(sa)]
            da = _sum_dtype(da)
        if b_sum:
            sb = [1 if d in b_sum else x for d, x in enumerate(sb)]
            db = _sum_dtype(db)
        shape = [x if x != 1 else y for x, y in zip(sa, sb)]
        if not sum_dims:
            d = dt.promote(da, db)
        else:
            d = _bmm_dtype(da, db, 0 in sa or 0 in sb)
            shape = [1 if k in sum_dims else x for k, x in enumerate(shape)]
        shapes.insert(0, shape)
        dtypes.insert(0, d)
    return dtypes[0]


def _einsum(equation: str, operands: list[Tensor]) -> Tensor:
    """PyTorch's einsum algorithm for checks and the result dtype; computed as one MUL+SUM."""
    num_ops = len(operands)
    arrow = equation.find("->")
    lhs = equation if arrow < 0 else equation[:arrow]
    op_labels = _parse_operands(lhs, num_ops)

    label_count = [0] * 52
    ell_num_dim = 0
    for i, (op, labels) in enumerate(zip(operands, op_labels)):
        nlabels, has_ell = len(labels), False
        for s in labels:
            if s == _ELLIPSIS:
                nlabels -= 1
                has_ell = True
                ell_num_dim = max(ell_num_dim, op.ndim - (len(labels) - 1))
            else:
                label_count[s] += 1
        if (nlabels > op.ndim) if has_ell else (nlabels != op.ndim):
            what = "is more than" if has_ell else "does not match"
            tail = "" if has_ell else " and no ellipsis was given"
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({nlabels}) "
                               f"{what} the number of dimensions ({op.ndim}) for operand "
                               f"{i}{tail}")

    perm_index_of, perm_index, out_num_dim, ell_index = _positions(equation, arrow, label_count,
                                                                   ell_num_dim)
    nodes, dim_counts = _align(operands, op_labels, perm_index_of, perm_index, ell_index,
                               ell_num_dim)
    out_dtype = _contraction_dtype(nodes, dim_counts, out_num_dim, perm_index)
    contracted = range(out_num_dim, perm_index)
    if num_ops == 1 and len(contracted):
        out_dtype = _sum_dtype(out_dtype)

    full = [1] * perm_index
    for n in nodes:
        full = [x if x != 1 else y for x, y in zip(full, n.shape)]
    return _wrap(_product(nodes, full, contracted, out_dtype))


__all__ = ["einsum"]
