"""The values of the tensors a save writes: realized together (one plan), as host arrays."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..frontend.tensor import Tensor
from ..runtime import memory


def host_arrays(items: Sequence[Tensor | np.ndarray]) -> list[np.ndarray]:
    """Each item's value as a C-contiguous array in the tensor's shape (numpy arrays pass
    through); tensors not yet computed are realized in one go."""
    from ..frontend.tensor import realize_tensors
    from ..utils.data.collate import host_array
    out: list[np.ndarray | None] = []
    pending: list[tuple[int, Tensor]] = []
    for i, x in enumerate(items):
        a = x if isinstance(x, np.ndarray) else host_array(x)
        out.append(a)
        if a is None:
            pending.append((i, x))
    if pending:
        bufs = realize_tensors([t for _, t in pending])
        for (i, t), b in zip(pending, bufs):
            out[i] = memory.host_data(b).reshape(tuple(t.shape))
    # (np.ascontiguousarray would make 0-d arrays 1-d)
    return [a if a.flags.c_contiguous else np.array(a, order="C")   # type: ignore[union-attr]
            for a in out]
