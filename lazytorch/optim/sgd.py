"""SGD with momentum, dampening, Nesterov momentum, weight decay and maximize."""
from __future__ import annotations

from typing import Any

from ..frontend.tensor import Tensor
from .optimizer import Optimizer, _check_fused, _decayed_grad, _fresh, _value, group_device, scalar

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's algorithm (the `torch.optim.SGD` pseudo-code):

        g = -grad if maximize else grad;  g += weight_decay * p
        b = g (first step) or momentum * b + (1 - dampening) * g
        g = g + momentum * b if nesterov else b;  p -= lr * g
    """

    def __init__(self, params, lr: float | Tensor = 1e-3, momentum: float = 0,
                 dampening: float = 0, weight_decay: float = 0, nesterov: bool = False, *,
                 maximize: bool = False, foreach: bool | None = None,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if _value(lr) < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if _value(weight_decay) < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize,
                    "foreach": foreach, "differentiable": differentiable, "fused": fused}
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)
        _check_fused(fused, foreach, differentiable)

    _FOREACH = True
    # (SGD records a few ops per parameter: making and checking the template costs more than
    # it saves, 268 -> 330 us over the MLP's six parameters with momentum; foreach=True or
    # fused=True still take it)
    _FOREACH_DEFAULT = False
    _GROUP_DEFAULTS = {"nesterov": False, "maximize": False, "foreach": None,
                       "differentiable": False, "fused": False}


    def _update_group(self, group: dict[str, Any], updated: list[Tensor]) -> None:
        where = group_device(group)
        lr = self._lr(group, where)
        wd = _value(group["weight_decay"])
        momentum, dampening = group["momentum"], group["dampening"]
        momentum_t = scalar(momentum, device=where) if momentum != 0 else None
        nesterov, maximize = group["nesterov"], group["maximize"]
        for p in group["params"]:
            if p.grad is None:
                continue
            g = _decayed_grad(p, maximize, wd)
            if momentum != 0:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = _fresh(g)
                else:
                    buf._assign(buf.mul(momentum_t).add(g, alpha=1 - dampening).node)
                updated.append(buf)
                g = g + momentum_t * buf if nesterov else buf
            p._assign((p - lr * g).node)
            updated.append(p)
