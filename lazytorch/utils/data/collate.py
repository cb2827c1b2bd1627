"""default_collate / default_convert, with PyTorch's rules, and host-side batching.

A batch of tensors that are rows of realized data (the usual case: `data[i]` of a dataset
held in a tensor) is stacked by numpy on the host: cutting each row with a kernel would compile
one kernel per distinct index. Other tensors are stacked lazily with torch.stack.
"""
from __future__ import annotations

import collections.abc
import copy
import re
from typing import Any, Callable

import numpy as np

from ...frontend.creation import from_numpy, tensor
from ...frontend.tensor import Tensor
from ...ir import dtypes as dt
from ...ir.graph import Node
from ...ir.ops import MOVEMENT, Op
from ...runtime import interpreter, memory

__all__ = ["default_collate", "default_convert", "collate", "default_collate_fn_map"]

np_str_obj_array_pattern = re.compile(r"[SaUO]")
default_collate_err_msg_format = ("default_collate: batch must contain tensors, numpy arrays, "
                                  "numbers, dicts or lists; found {}")

# ops a host-side (numpy) evaluation handles cheaply: views, casts, constants, gathers
_HOST_OPS = MOVEMENT | {Op.DETACH, Op.CONTIGUOUS, Op.CAST, Op.CONST, Op.GATHER}
_HOST_LIMIT = 64   # nodes: data-loading graphs are small; bigger ones go to the compiler


def _realized(n: Node) -> np.ndarray | None:
    if n.op is Op.BUFFER:
        return memory.host_data(n)
    from ...engine.realize import REALIZED
    b = REALIZED.get(n)
    return None if b is None else memory.host_data(b)


def host_array(t: Tensor, any_op: bool = False) -> np.ndarray | None:
    """t's value as a numpy array when it is realized or a small graph of views (and casts,
    gathers; any ops with any_op=True) over realized data, computed by numpy (the reference
    interpreter) without compiling; else None."""
    n = t.node
    a = _realized(n)
    if a is not None:
        return a
    seen: set[Node] = set()
    stack = [n]
    while stack:
        m = stack.pop()
        if m in seen:
            continue
        seen.add(m)
        if len(seen) > _HOST_LIMIT:
            return None
        if _realized(m) is not None:
            continue
        if not any_op and m.op not in _HOST_OPS:
            return None
        stack.extend(m.srcs)
    return interpreter.run_graph([n], _realized)[0]


def rows(arr: np.ndarray, t: Tensor, indices) -> list[Tensor]:
    """Tensors for arr[i], i in indices (views of arr: no copy), in t's dtype."""
    return [from_numpy(np.asarray(arr[i])) if arr.dtype == t.dtype.np
            else tensor(arr[i], dtype=t.dtype) for i in indices]


def _stack_tensors(batch) -> Tensor:
    shape = tuple(batch[0].shape)
    for i, t in enumerate(batch):
        if tuple(t.shape) != shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                               f"{list(shape)} at entry 0 and {list(t.shape)} at entry {i}")
    arrays = [host_array(t) for t in batch]
    if all(a is not None for a in arrays):
        d = batch[0].dtype
        for t in batch:
            d = dt.promote(d, t.dtype)
        out = np.stack(arrays)
        out = out if out.dtype == d.np else dt.astype(out, d)
        return from_numpy(np.ascontiguousarray(out))
    from ...frontend.joining import stack
    return stack(list(batch), 0)


def collate_tensor_fn(batch, *, collate_fn_map=None) -> Tensor:
    return _stack_tensors(batch)


def collate_numpy_array_fn(batch, *, collate_fn_map=None):
    elem = batch[0]
    if np_str_obj_array_pattern.search(elem.dtype.str) is not None:
        raise TypeError(default_collate_err_msg_format.format(elem.dtype))
    shape = elem.shape
    for i, a in enumerate(batch):
        if a.shape != shape:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got "
                               f"{list(shape)} at entry 0 and {list(a.shape)} at entry {i}")
    dt.from_numpy(elem.dtype)   # a dtype lazytorch has, or torch's error
    return from_numpy(np.stack(batch))


def collate_numpy_scalar_fn(batch, *, collate_fn_map=None) -> Tensor:
    return from_numpy(np.array(batch))


def collate_float_fn(batch, *, collate_fn_map=None) -> Tensor:
    return tensor(batch, dtype=dt.float64)


def collate_int_fn(batch, *, collate_fn_map=None) -> Tensor:
    return tensor(batch)


def collate_str_fn(batch, *, collate_fn_map=None):
    return batch


default_collate_fn_map: dict[Any, Callable] = {
    Tensor: collate_tensor_fn,
    np.ndarray: collate_numpy_array_fn,
    (np.bool_, np.number, np.object_): collate_numpy_scalar_fn,
    float: collate_float_fn,
    int: collate_int_fn,
    str: collate_str_fn,
    bytes: collate_str_fn,
}


def collate(batch, *, collate_fn_map: dict | None = None):
    """Collate a list of samples with the type -> function table `collate_fn_map`, recursing
    into mappings, namedtuples and sequences (PyTorch's torch.utils.data._utils.collate)."""
    elem = batch[0]
    elem_type = type(elem)
    if collate_fn_map is not None:
        if elem_type in collate_fn_map:
            return collate_fn_map[elem_type](batch, collate_fn_map=collate_fn_map)
        for ctype, fn in collate_fn_map.items():
            if isinstance(elem, ctype):
                return fn(batch, collate_fn_map=collate_fn_map)
    if isinstance(elem, collections.abc.Mapping):
        try:
            if isinstance(elem, collections.abc.MutableMapping):
                clone = copy.copy(elem)
                clone.update({k: collate([d[k] for d in batch], collate_fn_map=collate_fn_map)
                              for k in elem})
                return clone
            return elem_type({k: collate([d[k] for d in batch], collate_fn_map=collate_fn_map)
                              for k in elem})
        except TypeError:
            return {k: collate([d[k] for d in batch], collate_fn_map=collate_fn_map)
                    for k in elem}
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):   # namedtuple
        return elem_type(*(collate(s, collate_fn_map=collate_fn_map) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        it = iter(batch)
        size = len(next(it))
        if not all(len(e) == size for e in it):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = list(zip(*batch))   # tuples: strings come back as tuples
        if isinstance(elem, tuple):
            return [collate(s, collate_fn_map=collate_fn_map) for s in transposed]
        try:
            if isinstance(elem, collections.abc.MutableSequence):
                clone = copy.copy(elem)
                for i, s in enumerate(transposed):
                    clone[i] = collate(s, collate_fn_map=collate_fn_map)
                return clone
            return elem_type([collate(s, collate_fn_map=collate_fn_map) for s in transposed])
        except TypeError:
            return [collate(s, collate_fn_map=collate_fn_map) for s in transposed]
    raise TypeError(default_collate_err_msg_format.format(elem_type))


def default_collate(batch):
    """Stack a list of samples into a batch: tensors and numpy arrays are stacked (a new
    leading dim), Python floats become float64 tensors and ints int64 tensors, strings stay a
    list, and dicts, namedtuples, tuples and lists are collated field by field (tuples come
    back as lists, as in PyTorch)."""
    return collate(batch, collate_fn_map=default_collate_fn_map)


def default_convert(data):
    """The identity for batches that are already batched (batch_size=None): numpy arrays and
    numbers become tensors, containers are converted element by element."""
    elem_type = type(data)
    if isinstance(data, Tensor):
        return data
    if elem_type.__module__ == "numpy" and elem_type.__name__ not in ("str_", "string_"):
        if elem_type.__name__ == "ndarray" and \
                np_str_obj_array_pattern.search(data.dtype.str) is not None:
            return data
        return from_numpy(np.asarray(data))
    if isinstance(data, collections.abc.Mapping):
        try:
            if isinstance(data, collections.abc.MutableMapping):
                clone = copy.copy(data)
                clone.update({k: default_convert(data[k]) for k in data})
                return clone
            return elem_type({k: default_convert(data[k]) for k in data})
        except TypeError:
            return {k: default_convert(data[k]) for k in data}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return elem_type(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        try:
            if isinstance(data, collections.abc.MutableSequence):
                clone = copy.copy(data)
                for i, d in enumerate(data):
                    clone[i] = default_convert(d)
                return clone
            return elem_type([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data


def pin_memory(data: Any) -> Any:
    """`data` with every tensor in it copied to page-locked memory (Tensor.pin_memory), through
    mappings, namedtuples and sequences, and objects with a pin_memory() method (PyTorch's
    torch.utils.data._utils.pin_memory.pin_memory)."""
    if isinstance(data, Tensor):
        return data.pin_memory()
    if isinstance(data, (str, bytes)):
        return data
    if isinstance(data, collections.abc.Mapping):
        try:
            if isinstance(data, collections.abc.MutableMapping):
                clone = copy.copy(data)
                clone.update({k: pin_memory(v) for k, v in data.items()})
                return clone
            return type(data)({k: pin_memory(v) for k, v in data.items()})
        except TypeError:
            return {k: pin_memory(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(pin_memory(d) for d in data))
    if isinstance(data, tuple):
        return [pin_memory(d) for d in data]
    if isinstance(data, collections.abc.Sequence):
        try:
            if isinstance(data, collections.abc.MutableSequence):
                clone = copy.copy(data)
                for i, d in enumerate(data):
                    clone[i] = pin_memory(d)
                return clone
            return type(data)([pin_memory(d) for d in data])
        except TypeError:
            return [pin_memory(d) for d in data]
    if hasattr(data, "pin_memory"):
        return data.pin_memory()
    return data
