"""The pickle stream of a checkpoint in PyTorch's layout, written without PyTorch.

Tensors are written as torch.save writes them: `torch._utils._rebuild_tensor_v2(storage, 0,
size, stride, requires_grad, OrderedDict())`, parameters as `torch._utils._rebuild_parameter`
around that, and each storage as the persistent id `('storage', torch.<X>Storage, key,
location, numel)` (the location is the tensor's device: 'cpu', 'cuda:0', ...; the data is
read through the host); dtypes, devices and sizes as `torch.float32`, `torch.device(...)`,
`torch.Size(...)`. Those torch globals are written by name (GLOBAL opcodes): nothing here
imports torch. Anything else is pickled as pickle does (classes by reference), so a whole
module pickles too; only what PyTorch's `weights_only=True` loader allows reads back without
`weights_only=False`.
"""
from __future__ import annotations

import io
import pickle
from collections import OrderedDict
from typing import Any

from ..frontend.size import Size
from ..frontend.tensor import Tensor, device, device_name
from ..ir import dtypes as dt
from .formats import STORAGE_OF


class TorchGlobal:
    """A global named by module and name, pickled as a GLOBAL opcode and never imported."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):   # pickle's reduce needs a callable; this one is never called
        raise TypeError(f"{self.module}.{self.name} is only a name in a pickle")


_REBUILD_TENSOR = TorchGlobal("torch._utils", "_rebuild_tensor_v2")
_REBUILD_PARAMETER = TorchGlobal("torch._utils", "_rebuild_parameter")
_SIZE = TorchGlobal("torch", "Size")
_DEVICE = TorchGlobal("torch", "device")
_STORAGE_CLASS = {d: TorchGlobal("torch", name) for d, name in STORAGE_OF.items()}
_DTYPE = {d: TorchGlobal("torch", d.name) for d in STORAGE_OF}


class _Storage:
    """A tensor's storage while pickling: its persistent id and the tensor it holds."""

    __slots__ = ("pid", "tensor")

    def __init__(self, key: str, tensor: Tensor):
        self.tensor = tensor
        self.pid = ("storage", _STORAGE_CLASS[tensor.dtype], key, device_name(tensor),
                    tensor.numel())


class _TensorData:
    """A parameter's value, pickled as the plain tensor inside `_rebuild_parameter`."""

    __slots__ = ("tensor",)

    def __init__(self, tensor: Tensor):
        self.tensor = tensor


def _contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


class TorchPickler(pickle._Pickler):
    """A pickler whose tensors become storages (collected in `storages`, in key order)."""

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file, protocol: int = 2):
        from ..nn.parameter import Parameter
        super().__init__(file, protocol=protocol)
        self.Parameter = Parameter
        self.storages: list[_Storage] = []
        self._storage_of: dict[int, _Storage] = {}

    def _write_global(self, g: TorchGlobal, obj: Any) -> None:
        self.write(pickle.GLOBAL + f"{g.module}\n{g.name}\n".encode("utf-8"))
        self.memoize(obj)

    def save_torch_global(self, obj: TorchGlobal) -> None:
        self._write_global(obj, obj)

    dispatch[TorchGlobal] = save_torch_global

    def save_dtype(self, obj: dt.DType) -> None:
        g = _DTYPE.get(obj)
        if g is None:
            raise TypeError(f"lazytorch.save cannot store the dtype {obj}")
        self._write_global(g, obj)

    dispatch[dt.DType] = save_dtype

    def persistent_id(self, obj: Any):
        return obj.pid if type(obj) is _Storage else None

    def _storage(self, t: Tensor) -> _Storage:
        s = self._storage_of.get(id(t))
        if s is None:
            if t.dtype not in _STORAGE_CLASS:
                raise TypeError(f"lazytorch.save cannot store a tensor of dtype {t.dtype}")
            s = self._storage_of[id(t)] = _Storage(str(len(self.storages)), t)
            self.storages.append(s)
        return s

    def _tensor_reduce(self, t: Tensor, requires_grad: bool):
        shape = tuple(t.shape)
        return (_REBUILD_TENSOR, (self._storage(t), 0, shape, _contiguous_strides(shape),
                                  requires_grad, OrderedDict()))

    def reducer_override(self, obj: Any):
        t = type(obj)
        if t in (int, float, str, bool, list, dict, tuple, type(None), bytes):
            return NotImplemented
        if isinstance(obj, Tensor):
            if isinstance(obj, self.Parameter):
                return (_REBUILD_PARAMETER, (_TensorData(obj), bool(obj.requires_grad),
                                             OrderedDict()))
            return self._tensor_reduce(obj, bool(obj.requires_grad))
        if t is _TensorData:
            return self._tensor_reduce(obj.tensor, False)
        if t is device:
            return (_DEVICE, (obj.type,) if obj.index is None else (obj.type, obj.index))
        if t is Size:
            return (_SIZE, (tuple(obj),))
        return NotImplemented


def dumps(obj: Any, protocol: int = 2) -> tuple[bytes, list[_Storage]]:
    """obj's pickle and the storages it names, in key order."""
    buf = io.BytesIO()
    p = TorchPickler(buf, protocol)
    p.dump(obj)
    return buf.getvalue(), p.storages
