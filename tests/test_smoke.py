import numpy as np

import lazytorch as torch
from tests.conftest import check


def test_seed_example_prints_like_pytorch(backend):
    x = torch.tensor([1, 2, 3])
    y = torch.tensor([4, 5, 6])
    assert str(x + y) == "tensor([5, 7, 9])"


def test_fused_reduce(backend, rng):
    a = rng.standard_normal((4, 5)).astype(np.float32)
    b = rng.standard_normal((5,)).astype(np.float32)
    check((torch.tensor(a) + torch.tensor(b)).relu().sum(1), np.maximum(a + b, 0).sum(1))
