"""Movement ops against numpy, on both backends: values, shapes, view semantics and errors."""
from __future__ import annotations

import numpy as np
import pytest

import lazytorch as torch
from tests.helpers import check_all

F32 = np.float32


@pytest.fixture
def a(rng):
    return rng.standard_normal((2, 3, 4)).astype(F32)


def _movement_cases(x, a):
    """(name, lazytorch result, numpy reference) for every movement op on a (2, 3, 4) input."""
    return [
        ("reshape(4, -1)", x.reshape(4, -1), a.reshape(4, -1)),
        ("reshape((-1,))", x.reshape((-1,)), a.reshape(-1)),
        ("view(3, 8)", x.view(3, 8) if x.is_contiguous() else x.reshape(3, 8), a.reshape(3, 8)),
        ("flatten()", x.flatten(), a.reshape(-1)),
        ("flatten(1)", torch.flatten(x, 1), a.reshape(2, 12)),
        ("flatten(0, -2)", x.flatten(0, -2), a.reshape(6, 4)),
        ("unflatten(-1, (2, 2))", x.unflatten(-1, (2, 2)), a.reshape(2, 3, 2, 2)),
        ("unflatten(1, (-1, 1))", x.unflatten(1, (-1, 1)), a.reshape(2, 3, 1, 4)),
        ("unsqueeze(0).squeeze()", x.unsqueeze(0).squeeze(), a),
        ("unsqueeze(-1)", x.unsqueeze(-1), a[..., None]),
        ("unsqueeze(1)", torch.unsqueeze(x, 1), a[:, None]),
        ("squeeze(0) no-op", x.squeeze(0), a),
        ("squeeze((0, 2))", x.unsqueeze(1).unsqueeze(0).squeeze((0, 2)), a),
        ("permute(2, 0, 1)", x.permute(2, 0, 1), a.transpose(2, 0, 1)),
        ("permute([1, 2, 0])", torch.permute(x, [1, 2, 0]), a.transpose(1, 2, 0)),
        ("permute(-1, 0, 1)", x.permute(-1, 0, 1), a.transpose(2, 0, 1)),
        ("transpose(0, 2)", x.transpose(0, 2), a.swapaxes(0, 2)),
        ("transpose(-1, -2)", torch.transpose(x, -1, -2), a.swapaxes(-1, -2)),
        ("swapaxes", x.swapaxes(0, 1), a.swapaxes(0, 1)),
        ("select(1, -1).t()", x.select(1, -1).t(), a[:, -1].T),
        ("T", x.reshape(6, 4).T, a.reshape(6, 4).T),
        ("mT", x.mT, a.swapaxes(-1, -2)),
        ("expand", x.unsqueeze(0).expand(3, -1, -1, -1), np.broadcast_to(a, (3, 2, 3, 4))),
        ("expand size-1 dim", x.narrow(1, 0, 1).expand(2, 3, 4),
         np.broadcast_to(a[:, :1], (2, 3, 4))),
        ("expand_as", x.sum(0, keepdim=True).expand_as(x), np.broadcast_to(a.sum(0), a.shape)),
        ("broadcast_to", torch.broadcast_to(x.select(0, 1), (2, 3, 4)),
         np.broadcast_to(a[1], (2, 3, 4))),
        ("contiguous", x.transpose(0, 1).contiguous(), a.swapaxes(0, 1)),
        ("flip(0)", x.flip(0), a[::-1]),
        ("flip(-1, 1)", torch.flip(x, (-1, 1)), a[:, ::-1, ::-1]),
        ("flip all", x.flip(0, 1, 2), a[::-1, ::-1, ::-1]),
        ("narrow(-1, 1, 2)", x.narrow(-1, 1, 2), a[..., 1:3]),
        ("narrow(1, -2, 2)", torch.narrow(x, 1, -2, 2), a[:, 1:3]),
        ("narrow empty", x.narrow(2, 4, 0), a[..., 4:4]),
        ("split(2, -1)[1]", x.split(2, -1)[1], a[..., 2:4]),
        ("split([1, 2], 1)[1]", x.split([1, 2], 1)[1], a[:, 1:3]),
        ("split(3, -1)[-1]", torch.split(x, 3, -1)[-1], a[..., 3:]),
        ("chunk(2, 1)[1]", x.chunk(2, 1)[1], a[:, 2:]),
        ("chunk(3, -1)[1]", torch.chunk(x, 3, -1)[1], a[..., 2:4]),
        ("chunk(3, 1)[2]", x.chunk(3, 1)[2], a[:, 2:3]),
        ("unbind(1)[2]", x.unbind(1)[2], a[:, 2]),
        ("unbind(-1)[0]", torch.unbind(x, -1)[0], a[..., 0]),
        ("movedim(0, -1)", x.movedim(0, -1), np.moveaxis(a, 0, -1)),
        ("movedim((0, 1), (2, 0))", torch.movedim(x, (0, 1), (2, 0)),
         np.moveaxis(a, (0, 1), (2, 0))),
        ("chain", x.permute(2, 0, 1).flip(1).narrow(0, 1, 2).reshape(2, -1) * 2,
         a.transpose(2, 0, 1)[:, ::-1][1:3].reshape(2, -1) * 2),
        ("chain2", x.flip(2).transpose(1, 2).narrow(1, 1, 2).flatten() + 1,
         a[..., ::-1].swapaxes(1, 2)[:, 1:3].reshape(-1) + 1),
        ("expand then reduce", x.unsqueeze(0).expand(2, -1, -1, -1).sum((0, 2)),
         np.broadcast_to(a, (2, 2, 3, 4)).sum((0, 2))),
    ]


def test_movement_ops(backend, a):
    x = torch.tensor(a)
    check_all(_movement_cases(x, a))


def test_movement_ops_on_a_permuted_view(backend, a):
    # the same values through a non-contiguous view: every op must compose with its strides
    x = torch.tensor(np.ascontiguousarray(a.transpose(2, 0, 1))).permute(1, 2, 0)
    assert x.shape == a.shape and not x.is_contiguous()
    check_all(_movement_cases(x, a))


def test_counts_and_shapes(a):
    x = torch.tensor(a)
    assert [t.shape for t in x.split(3, -1)] == [(2, 3, 3), (2, 3, 1)]
    assert [t.shape[1] for t in x.split([1, 2], 1)] == [1, 2]
    assert len(x.chunk(3, -1)) == 2 and len(torch.ones(6).chunk(4)) == 3
    assert len(torch.ones(5).chunk(4)) == 3 and len(x.chunk(5, 1)) == 3
    assert len(x.unbind(-1)) == 4 and x.unbind(0)[0].shape == (3, 4)
    assert x.reshape(-1, 4).shape == (6, 4) and x.view(-1).shape == (24,)
    assert x.squeeze().shape == (2, 3, 4) and torch.zeros(1, 3, 1).squeeze().shape == (3,)
    assert torch.zeros(1, 3, 1).squeeze(-1).shape == (1, 3)
    assert torch.zeros(0, 3).reshape(3, 0).shape == (3, 0)
    assert torch.zeros(0, 3).split(2, 0)[0].shape == (0, 3)


def test_zero_dim_and_empty(backend):
    s = torch.tensor(1.5)
    e = torch.zeros(0, 3)
    cases = [("0-d reshape(1)", s.reshape(1), np.float32([1.5])),
             ("0-d flatten", s.flatten(), np.float32([1.5])),
             ("0-d unsqueeze", s.unsqueeze(0), np.float32([1.5])),
             ("0-d squeeze", s.squeeze(), np.float32(1.5)),
             ("0-d expand", s.expand(2, 2), np.full((2, 2), 1.5, F32)),
             ("0-d t", s.t(), np.float32(1.5)), ("0-d permute()", s.permute(), np.float32(1.5)),
             ("0-d flip", s.flip(0), np.float32(1.5)),
             ("1-elem reshape to 0-d", torch.tensor([2.0]).reshape(()), np.float32(2.0)),
             ("empty transpose", e.t(), np.zeros((3, 0), F32)),
             ("empty reshape", e.reshape(3, 0, 5), np.zeros((3, 0, 5), F32)),
             ("empty flip", e.flip(0), np.zeros((0, 3), F32)),
             ("empty expand", e.unsqueeze(0).expand(2, 0, 3), np.zeros((2, 0, 3), F32)),
             ("empty narrow", e.narrow(1, 1, 2), np.zeros((0, 2), F32))]
    check_all(cases)


def test_view_semantics(backend, a):
    x = torch.tensor(a)
    assert x.is_contiguous() and x.narrow(0, 0, 1).is_contiguous()
    assert not x.transpose(0, 1).is_contiguous() and not x.narrow(2, 0, 2).is_contiguous()
    assert x.transpose(0, 1).contiguous().is_contiguous()
    assert not x.unsqueeze(1).expand(2, 5, 3, 4).is_contiguous()
    assert x.unsqueeze(1).expand(2, 5, 3, 4).reshape(10, 12).is_contiguous()  # a copy
    # views that strides can express alias their source; others are copies
    v_flat = x.view(-1)                          # view
    v_split = x.narrow(2, 0, 2).flatten(0, 1)    # dims 0, 1 still mergeable: view
    c_flat = x.narrow(2, 0, 2).flatten()         # not expressible: copy
    c_perm = x.permute(1, 0, 2).reshape(3, 8)    # copy
    x.add_(1)
    check_all([("view(-1)", v_flat, a.reshape(-1) + 1),
               ("narrow.flatten(0, 1)", v_split, a[..., :2].reshape(6, 2) + 1),
               ("narrow.flatten()", c_flat, a[..., :2].reshape(-1)),
               ("permute.reshape", c_perm, a.transpose(1, 0, 2).reshape(3, 8))])
    with pytest.raises(RuntimeError, match="view size is not compatible with input tensor's "
                                           "size and stride"):
        x.transpose(0, 1).view(-1)
    with pytest.raises(RuntimeError, match="view size is not compatible"):
        x.permute(1, 0, 2).view_as(torch.zeros(3, 8))


def test_errors():
    x = torch.zeros(2, 3, 4)
    s = torch.tensor(1.0)
    cases = [
        (RuntimeError, r"shape '\[5, -1\]' is invalid for input of size 24",
         lambda: x.reshape(5, -1)),
        (RuntimeError, r"shape '\[7\]' is invalid for input of size 24", lambda: x.view(7)),
        (RuntimeError, "only one dimension can be inferred", lambda: x.reshape(-1, -1)),
        (RuntimeError, r"invalid shape dimension -2", lambda: x.reshape(-2, 12)),
        (RuntimeError, "can be any value and is ambiguous", lambda: torch.zeros(0, 3).view(-1, 0)),
        (IndexError, r"Dimension out of range \(expected to be in range of \[-3, 2\], but got 3\)",
         lambda: x.transpose(0, 3)),
        (IndexError, "Dimension out of range", lambda: x.unsqueeze(4)),
        (IndexError, "Dimension out of range", lambda: x.flatten(3)),
        (IndexError, "Dimension out of range", lambda: x.squeeze(5)),
        (IndexError, "Dimension out of range", lambda: s.transpose(0, 1)),
        (RuntimeError, "number of dimensions in the tensor input does not match",
         lambda: x.permute(0, 1)),
        (RuntimeError, "duplicate dims", lambda: x.permute(0, 0, 1)),
        (RuntimeError, r"expanded size of the tensor \(5\) must match the existing size \(2\) "
                       r"at non-singleton dimension 0", lambda: x.expand(5, 3, 4)),
        (RuntimeError, "isn't allowed in a leading, non-existing dimension",
         lambda: x.expand(-1, 2, 3, 4)),
        (RuntimeError, "number of sizes provided", lambda: x.expand(3, 4)),
        (RuntimeError, r"start \(2\) \+ length \(5\) exceeds dimension size \(3\)",
         lambda: x.narrow(1, 2, 5)),
        (IndexError, "start out of range", lambda: x.narrow(1, -4, 1)),
        (RuntimeError, "narrow\\(\\) cannot be applied to a 0-dim tensor",
         lambda: s.narrow(0, 0, 1)),
        (RuntimeError, "split_with_sizes expects split_sizes to sum exactly to 3",
         lambda: x.split([1, 1], 1)),
        (RuntimeError, "split expects at least a 1-dimensional tensor", lambda: s.split(1)),
        (RuntimeError, "chunk expects `chunks` to be greater than 0", lambda: x.chunk(0)),
        (RuntimeError, "dim 1 appears multiple times", lambda: x.flip(1, -2)),
        (RuntimeError, r"t\(\) expects a tensor with <= 2 dimensions", lambda: x.t()),
        (RuntimeError, "unflatten: Provided sizes", lambda: x.unflatten(1, (2, 2))),
        (RuntimeError, "movedim: Invalid source or destination dims",
         lambda: x.movedim((0, 1), 2)),
        (IndexError, "out of bounds", lambda: x.select(1, 3)),
    ]
    for exc, msg, fn in cases:
        with pytest.raises(exc, match=msg):
            fn()
