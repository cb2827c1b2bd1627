"""Adadelta: per-coordinate steps from running averages of squared gradients and updates."""
from __future__ import annotations

from typing import Any

from ..frontend.creation import zeros_like
from ..frontend.tensor import Tensor
from .optimizer import Optimizer, _check_args, _decayed_grad, group_device

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    """Adadelta, PyTorch's algorithm (the `torch.optim.Adadelta` pseudo-code):

        t += 1;  g = -grad if maximize else grad;  g += weight_decay * p
        v = rho v + (1 - rho) g^2;  dx = sqrt(u + eps) / sqrt(v + eps) * g
        u = rho u + (1 - rho) dx^2;  p -= lr * dx
    """

    def __init__(self, params, lr: float | Tensor = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0, foreach: bool | None = None, *,
                 capturable: bool = False, maximize: bool = False,
                 differentiable: bool = False) -> None:
        _check_args(lr, eps=eps, weight_decay=weight_decay)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize, "capturable": capturable, "foreach": foreach,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    _GROUP_DEFAULTS = {"foreach": None, "maximize": False, "differentiable": False,
                       "capturable": False}


    def _update_group(self, group: dict[str, Any], updated: list[Tensor]) -> None:
        where = group_device(group)
        lr = self._lr(group, where)
        rho, eps = group["rho"], group["eps"]
        shared: dict = {}
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            step_t = self._step_counter(state, shared, where)
            if "square_avg" not in state:
                state["square_avg"] = zeros_like(p)
                state["acc_delta"] = zeros_like(p)
            step_t._assign((step_t + 1).node)
            g = _decayed_grad(p, group["maximize"], group["weight_decay"])
            sq, acc = state["square_avg"], state["acc_delta"]
            sq._assign(sq.mul(rho).add(g * (1 - rho) * g).node)
            delta = (acc + eps).sqrt() / (sq + eps).sqrt() * g
            acc._assign(acc.mul(rho).add(delta * (1 - rho) * delta).node)
            p._assign((p - lr * delta).node)
            updated += [step_t, sq, acc, p]
