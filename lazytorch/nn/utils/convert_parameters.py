"""Parameters flattened into one vector and back."""
from __future__ import annotations

from typing import Iterable

from ...frontend.joining import cat
from ...frontend.tensor import Tensor
from ..module import typename


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All parameters flattened and joined into one 1-D tensor."""
    return cat([p.reshape(-1) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Set the parameters' values from consecutive slices of the 1-D tensor vec."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {typename(vec)}")
    pointer = 0
    for param in parameters:
        n = param.numel()
        piece = vec.narrow(0, pointer, n)
        param.data = piece.reshape(tuple(param.shape)).detach()
        pointer += n
