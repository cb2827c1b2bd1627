"""ASGD: SGD with a decaying step and a running average of the iterates (Polyak, Juditsky)."""
from __future__ import annotations

from typing import Any

from .. import functional as lf
from ..frontend.creation import zeros_like
from ..frontend.tensor import Tensor
from ..ir import dtypes as dt
from .optimizer import Optimizer, _check_args, _decayed_grad, _value, group_device

__all__ = ["ASGD"]


class ASGD(Optimizer):
    """Averaged SGD, PyTorch's algorithm (the `torch.optim.ASGD` pseudo-code):

        t += 1;  g = -grad if maximize else grad;  g += weight_decay * p
        p *= 1 - lambd eta;  p -= eta g
        ax = p if mu == 1 else ax + mu (p - ax)
        eta = lr / (1 + lambd lr t)^alpha;  mu = 1 / max(1, t - t0)

    eta and mu are per-parameter 0-d float32 state (eta starts at lr, mu at 1), updated in
    the graph, so the step's plan is the same every step.
    """

    def __init__(self, params, lr: float | Tensor = 1e-2, lambd: float = 1e-4,
                 alpha: float = 0.75, t0: float = 1e6, weight_decay: float = 0,
                 foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False, capturable: bool = False) -> None:
        _check_args(lr, weight_decay=weight_decay)
        defaults = {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0,
                    "weight_decay": weight_decay, "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable, "capturable": capturable}
        super().__init__(params, defaults)

    _GROUP_DEFAULTS = {"foreach": None, "maximize": False, "differentiable": False,
                       "capturable": False}


    def _update_group(self, group: dict[str, Any], updated: list[Tensor]) -> None:
        where = group_device(group)
        lr = self._lr(group, where)
        lambd, alpha, t0 = group["lambd"], group["alpha"], group["t0"]
        shared: dict = {}
        scalars: dict = {}
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            step_t = self._step_counter(state, shared, where)
            eta = self._scalar_state(state, "eta", _value(group["lr"]), shared, where)
            mu = self._scalar_state(state, "mu", 1.0, shared, where)
            if "ax" not in state:
                state["ax"] = zeros_like(p)
            key = (step_t.node, eta.node, mu.node)
            if key not in scalars:
                t = step_t.double() + 1
                new_eta = lr / (1 + lambd * lr * t) ** alpha
                new_mu = 1 / (t - t0).clamp(min=1.0)
                scalars[key] = ((step_t + 1).node, eta.double(), mu == 1,
                                new_eta.to(dt.float32).node, new_mu.to(dt.float32).node)
            step_node, eta_v, mu_is_one, eta_node, mu_node = scalars[key]
            g = _decayed_grad(p, group["maximize"], group["weight_decay"])
            new_p = p * (1 - lambd * eta_v) - eta_v * g
            p._assign(new_p.node)
            ax = state["ax"]
            ax._assign(lf.where(mu_is_one, p, ax + (p - ax) * mu).node)
            step_t._assign(step_node)
            eta._assign(eta_node)
            mu._assign(mu_node)
            updated += [step_t, eta, mu, ax, p]
