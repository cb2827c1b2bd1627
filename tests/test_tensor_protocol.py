"""The Python protocol of Tensor: metadata, conversion to Python and numpy, and its errors."""
from __future__ import annotations

import numpy as np
import pytest

import lazytorch as torch

F32 = np.float32


@pytest.fixture
def x():
    return torch.tensor(np.arange(6, dtype=F32).reshape(2, 3))


def test_metadata(x):
    assert x.shape == (2, 3) and tuple(x.shape) == (2, 3) and x.shape == torch.Size([2, 3])
    assert isinstance(x.shape, tuple) and isinstance(x.size(), torch.Size)
    assert x.size() == (2, 3) and x.size(0) == 2 and x.size(-1) == 3
    assert x.dim() == 2 and x.ndim == 2 and x.ndimension() == 2
    assert x.numel() == 6 and torch.numel(x) == 6 and x.nelement() == 6
    assert x.dtype == torch.float32 and x.dtype is torch.float
    assert x.device == torch.device("cpu") and str(x.device) == "cpu" and not x.is_cuda
    assert x.element_size() == 4 and x.is_floating_point() and torch.is_tensor(x)
    assert len(x) == 2
    s = torch.tensor(5)
    assert s.shape == () and s.dim() == 0 and s.numel() == 1
    e = torch.zeros(0, 3)
    assert len(e) == 0 and e.numel() == 0 and e.shape == (0, 3)
    # metadata is known without computing anything
    y = (x.exp() + 1).sum(0)
    assert y.shape == (3,) and y.dtype == torch.float32


def test_values(backend, x):
    ref = np.arange(6, dtype=F32).reshape(2, 3)
    assert x.tolist() == ref.tolist() and isinstance(x.tolist()[0][0], float)
    assert (x * 2).numpy().tolist() == (ref * 2).tolist()
    assert x.numpy().dtype == np.float32
    assert np.asarray(x + 1).tolist() == (ref + 1).tolist()
    assert np.asarray(x, dtype=np.float64).dtype == np.float64
    assert np.array(x.long()).dtype == np.int64
    assert [r.tolist() for r in x] == ref.tolist()          # iteration over dim 0
    assert [r.sum().item() for r in x.t()] == [3.0, 5.0, 7.0]
    assert list(torch.zeros(0, 2)) == []
    s = x.sum()
    assert s.item() == 15.0 and isinstance(s.item(), float)
    assert s.tolist() == 15.0
    assert x.long().sum().item() == 15 and isinstance(x.long().sum().item(), int)
    assert (x > 1).all().item() is False and isinstance((x > 1).any().item(), bool)
    assert x.long().tolist() == [[0, 1, 2], [3, 4, 5]]
    assert (x > 2).tolist() == [[False, False, False], [True, True, True]]
    assert float(s) == 15.0 and int(x.sum() / 4) == 3 and int(torch.tensor(-2.7)) == -2
    assert bool(s > 3) is True and bool(torch.tensor([0.0])) is False
    assert bool(x.reshape(-1).narrow(0, 1, 1)) is True
    assert x.reshape(-1).narrow(0, 4, 1).reshape(1, 1).item() == 4.0
    assert [10, 20, 30][torch.tensor(2)] == 30                # __index__
    assert f"{s:.1f}" == "15.0"


def test_numpy_interop(x):
    assert (np.float32(2) * x).dtype == torch.float32
    assert isinstance(x * np.float64(2), torch.Tensor)
    r = x + np.ones(3, F32)
    assert isinstance(r, torch.Tensor) and r.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert (np.ones(3, F32) + x).tolist() == [[1, 2, 3], [4, 5, 6]]
    v = x.numpy()
    assert not v.flags.writeable
    assert torch.tensor(v + 1).tolist() == [[1, 2, 3], [4, 5, 6]]


def test_protocol_errors(x):
    with pytest.raises(RuntimeError, match="Boolean value of Tensor with more than one value "
                                           "is ambiguous"):
        bool(x)
    with pytest.raises(RuntimeError, match="a Tensor with 6 elements cannot be converted to "
                                           "Scalar"):
        x.item()
    with pytest.raises(RuntimeError, match="a Tensor with 0 elements cannot be converted"):
        torch.zeros(0).item()
    with pytest.raises(ValueError, match="only one element tensors can be converted to Python "
                                         "scalars"):
        float(x)
    with pytest.raises(ValueError, match="only one element tensors"):
        int(x)
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(torch.tensor(1.0))
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(torch.tensor(1.0))
    with pytest.raises(TypeError, match="only integer tensors of a single element"):
        [1, 2][torch.tensor(1.0)]
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.size(2)
