"""RAdam: Adam with the variance of the adaptive learning rate rectified (Liu et al., 2019)."""
from __future__ import annotations

from typing import Any

from .. import functional as lf
from ..frontend.creation import zeros_like
from ..frontend.tensor import Tensor
from .optimizer import Optimizer, _check_args, _value, group_device, scalar

__all__ = ["RAdam"]


class RAdam(Optimizer):
    """RAdam, PyTorch's algorithm (the `torch.optim.RAdam` pseudo-code):

        t += 1;  g = -grad if maximize else grad
        decoupled: p *= 1 - lr * weight_decay, else g += weight_decay * p
        m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;  mh = m / (1 - beta1^t)
        rho_inf = 2 / (1 - beta2) - 1;  rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        rho_t > 5: r = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
                   p -= lr mh r sqrt(1 - beta2^t) / (sqrt(v) + eps)
        else:      p -= lr mh

    The branch on rho_t is a select in the graph, so the plan is the same at every step.
    """

    def __init__(self, params, lr: float | Tensor = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, decoupled_weight_decay: bool = False, *,
                 foreach: bool | None = None, maximize: bool = False,
                 capturable: bool = False, differentiable: bool = False) -> None:
        _check_args(lr, eps=eps, betas=betas, weight_decay=weight_decay)
        betas = (float(_value(betas[0])), float(_value(betas[1])))
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize, "foreach": foreach, "capturable": capturable,
                    "decoupled_weight_decay": decoupled_weight_decay,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    _GROUP_DEFAULTS = {"foreach": None, "maximize": False, "differentiable": False,
                       "decoupled_weight_decay": False, "capturable": False}


    def _update_group(self, group: dict[str, Any], updated: list[Tensor]) -> None:
        where = group_device(group)
        lr = self._lr(group, where)
        beta1, beta2 = (scalar(b, device=where) for b in group["betas"])
        eps, wd = group["eps"], group["weight_decay"]
        shared: dict = {}
        scalars: dict = {}
        for p in group["params"]:
            if p.grad is None:
                continue
            g = -p.grad if group["maximize"] else p.grad
            state = self.state[p]
            step_t = self._step_counter(state, shared, where)
            if "exp_avg" not in state:
                state["exp_avg"] = zeros_like(p)
                state["exp_avg_sq"] = zeros_like(p)
            step_t._assign((step_t + 1).node)
            if wd != 0:
                if group["decoupled_weight_decay"]:
                    p._assign((p * (1 - lr * wd)).node)
                else:
                    g = g.add(p, alpha=wd)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg._assign(exp_avg.lerp(g, 1 - beta1).node)
            exp_avg_sq._assign(exp_avg_sq.mul(beta2).add(g * (1 - beta2) * g).node)
            key = step_t.node
            if key not in scalars:
                t = step_t.double()
                bc2 = 1 - beta2 ** t
                rho_inf = 2 / (1 - beta2) - 1
                rho_t = rho_inf - 2 * t * beta2 ** t / bc2
                rect = ((rho_t - 4) * (rho_t - 2) * rho_inf /
                        ((rho_inf - 4) * (rho_inf - 2) * rho_t)).sqrt()
                scalars[key] = (lr / (1 - beta1 ** t), rho_t > 5.0, rect * bc2.sqrt())
            step_size, rectified, rect = scalars[key]
            adaptive = lf.where(rectified, rect / (exp_avg_sq.sqrt() + eps), 1.0)
            p._assign((p - step_size * exp_avg * adaptive).node)
            updated += [step_t, exp_avg, exp_avg_sq, p]
