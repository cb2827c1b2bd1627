"""Adamax: Adam with the infinity norm of past gradients in place of their second moment."""
from __future__ import annotations

from typing import Any

from ..frontend.creation import zeros_like
from ..frontend.tensor import Tensor
from .optimizer import Optimizer, _check_args, _decayed_grad, _value, group_device, scalar

__all__ = ["Adamax"]


class Adamax(Optimizer):
    """Adamax, PyTorch's algorithm (the `torch.optim.Adamax` pseudo-code):

        t += 1;  g = -grad if maximize else grad;  g += weight_decay * p
        m = beta1 m + (1 - beta1) g;  u = max(beta2 u, |g| + eps)
        p -= lr / (1 - beta1^t) * m / u

    The step count, the learning rate, beta1 and the bias correction are 0-d tensors.
    """

    def __init__(self, params, lr: float | Tensor = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, foreach: bool | None = None, *,
                 maximize: bool = False, differentiable: bool = False,
                 capturable: bool = False) -> None:
        _check_args(lr, eps=eps, betas=betas, weight_decay=weight_decay)
        betas = (float(_value(betas[0])), float(_value(betas[1])))
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable, "capturable": capturable}
        super().__init__(params, defaults)

    _GROUP_DEFAULTS = {"foreach": None, "maximize": False, "differentiable": False,
                       "capturable": False}


    def _update_group(self, group: dict[str, Any], updated: list[Tensor]) -> None:
        where = group_device(group)
        lr = self._lr(group, where)
        beta1 = scalar(group["betas"][0], device=where)
        beta2, eps, wd = group["betas"][1], group["eps"], group["weight_decay"]
        shared: dict = {}
        scalars: dict = {}
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            step_t = self._step_counter(state, shared, where)
            if "exp_avg" not in state:
                state["exp_avg"] = zeros_like(p)
                state["exp_inf"] = zeros_like(p)
            step_t._assign((step_t + 1).node)
            g = _decayed_grad(p, group["maximize"], wd)
            exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
            exp_avg._assign(exp_avg.lerp(g, 1 - beta1).node)
            exp_inf._assign((exp_inf * beta2).maximum(g.abs() + eps).node)
            key = step_t.node
            if key not in scalars:
                scalars[key] = lr / (1 - beta1 ** step_t.double())
            p._assign((p - scalars[key] * exp_avg / exp_inf).node)
            updated += [step_t, exp_avg, exp_inf, p]
