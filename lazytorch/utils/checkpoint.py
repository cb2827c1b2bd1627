"""torch.utils.checkpoint: activation checkpointing.

PyTorch's checkpoint saves memory by dropping a block's activations in the forward pass and
recomputing them in the backward pass. Here the forward and backward are one graph, realized
together, and the compiler already decides which intermediate values to store and which to
recompute inside the fused kernels; so `checkpoint(fn, *args)` records `fn(*args)` as it is,
with the same values and gradients (random ops included: they draw once).
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, Iterable


def checkpoint(function: Callable, *args: Any, use_reentrant: bool | None = None,
               context_fn: Callable | None = None, determinism_check: str = "default",
               debug: bool = False, preserve_rng_state: bool = True, **kwargs: Any) -> Any:
    """fn(*args, **kwargs), with PyTorch's checkpoint API (see the module docstring)."""
    if use_reentrant is None:
        warnings.warn("torch.utils.checkpoint: the use_reentrant parameter should be passed "
                      "explicitly. In version 2.5 we will raise an exception if use_reentrant "
                      "is not passed. use_reentrant=False is recommended, but if you need to "
                      "preserve the current default behavior, you can pass use_reentrant=True. "
                      "Refer to docs for more details on the differences between the two "
                      "variants.", stacklevel=2)
    if use_reentrant and context_fn is not None:
        raise ValueError("Passing `context_fn` or `debug` is only supported when "
                         "use_reentrant=False.")
    if use_reentrant and kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(kwargs))
    if context_fn is not None:
        fwd, _ = context_fn()
        with fwd:
            return function(*args, **kwargs)
    return function(*args, **kwargs)


def checkpoint_sequential(functions: Iterable[Callable] | Any, segments: int, input: Any,
                          use_reentrant: bool | None = None, **kwargs: Any) -> Any:
    """Run a Sequential (or a list of modules) in `segments` checkpointed pieces."""
    if use_reentrant is None:
        warnings.warn("torch.utils.checkpoint.checkpoint_sequential: the use_reentrant "
                      "parameter should be passed explicitly.", stacklevel=2)
    fns = list(functions.children()) if hasattr(functions, "children") else list(functions)
    if segments < 1:
        raise ValueError(f"segments must be positive, got {segments}")
    for fn in fns:
        input = fn(input)
    return input
