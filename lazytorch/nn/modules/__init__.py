"""`torch.nn.modules.<file>.<Class>`: PyTorch's file layout of its layers, under which scripts
name classes (an allowlist for `torch.serialization.safe_globals`, an isinstance check against
`nn.modules.batchnorm._BatchNorm`). Each submodule holds the same class objects as lazytorch.nn;
it is registered in sys.modules here, so `import torch.nn.modules.dropout` works too.
"""
from __future__ import annotations

import sys
import types

from .. import (
    activation,
    containers,
    conv,
    distance,
    dropout,
    embedding_bag,
    flatten,
    fold,
    linear,
    loss,
    loss_likelihood,
    loss_margin,
    module,
    normalization,
    padding,
    pixelshuffle,
    pooling,
    rnn,
    rnn_cell,
    sparse,
    transformer,
    upsampling,
)

# PyTorch's file -> the lazytorch files whose classes it holds, and single classes that sit in
# a PyTorch file other than their lazytorch file's
_FILES = {
    "activation": [activation], "container": [containers], "conv": [conv],
    "distance": [distance], "dropout": [dropout], "flatten": [flatten], "fold": [fold],
    "linear": [linear], "loss": [loss, loss_likelihood, loss_margin], "module": [module],
    "normalization": [normalization], "padding": [padding], "pixelshuffle": [pixelshuffle],
    "pooling": [pooling], "rnn": [rnn, rnn_cell], "sparse": [sparse, embedding_bag],
    "transformer": [transformer], "upsampling": [upsampling],
}
_MOVED = {
    "activation": {"MultiheadAttention": transformer.MultiheadAttention},
    "batchnorm": {n: getattr(normalization, n) for n in
                  ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "_BatchNorm", "_NormBase")
                  if hasattr(normalization, n)},
    "instancenorm": {n: getattr(normalization, n) for n in
                     ("InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "_InstanceNorm")
                     if hasattr(normalization, n)},
    "channelshuffle": {"ChannelShuffle": pixelshuffle.ChannelShuffle},
    "linear": {"NonDynamicallyQuantizableLinear": transformer.NonDynamicallyQuantizableLinear},
}


def _classes(mod: types.ModuleType) -> dict[str, type]:
    return {k: v for k, v in vars(mod).items()
            if isinstance(v, type) and v.__module__ == mod.__name__}


def _build() -> dict[str, types.ModuleType]:
    out = {}
    for name in sorted(set(_FILES) | set(_MOVED)):
        sub = types.ModuleType(f"{__name__}.{name}", f"torch.nn.modules.{name}")
        for src in _FILES.get(name, []):
            vars(sub).update(_classes(src))
        vars(sub).update(_MOVED.get(name, {}))
        sys.modules[sub.__name__] = sub
        out[name] = sub
    return out


_SUBMODULES = _build()
globals().update(_SUBMODULES)
# the classes themselves, as `torch.nn.modules.Linear` names them
for _sub in _SUBMODULES.values():
    globals().update({k: v for k, v in vars(_sub).items()
                      if isinstance(v, type) and not k.startswith("_")})
