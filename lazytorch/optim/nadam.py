"""NAdam: Adam with Nesterov momentum and a momentum schedule (Dozat, 2016)."""
from __future__ import annotations

from typing import Any

from ..frontend.creation import zeros_like
from ..frontend.tensor import Tensor
from ..ir import dtypes as dt
from .optimizer import Optimizer, _check_args, _value, group_device, scalar

__all__ = ["NAdam"]


class NAdam(Optimizer):
    """NAdam, PyTorch's algorithm (the `torch.optim.NAdam` pseudo-code):

        t += 1;  g = -grad if maximize else grad
        decoupled: p *= 1 - lr * weight_decay, else g += weight_decay * p
        mu_t = beta1 (1 - 0.96^(t psi) / 2);  mu_{t+1} likewise;  prod *= mu_t
        m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
        denom = sqrt(v / (1 - beta2^t)) + eps
        p -= lr (1 - mu_t) / (1 - prod) g / denom + lr mu_{t+1} / (1 - prod mu_{t+1}) m / denom

    (psi = momentum_decay). The step count and mu product are per-parameter 0-d float32
    state, as PyTorch keeps them; every per-step value is a 0-d tensor in the graph.
    """

    def __init__(self, params, lr: float | Tensor = 2e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0, momentum_decay: float = 4e-3,
                 decoupled_weight_decay: bool = False, *, foreach: bool | None = None,
                 maximize: bool = False, capturable: bool = False,
                 differentiable: bool = False) -> None:
        _check_args(lr, eps=eps, betas=betas, weight_decay=weight_decay)
        if not 0.0 <= momentum_decay:
            raise ValueError(f"Invalid momentum_decay value: {momentum_decay}")
        betas = (float(_value(betas[0])), float(_value(betas[1])))
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "momentum_decay": momentum_decay,
                    "decoupled_weight_decay": decoupled_weight_decay, "maximize": maximize,
                    "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    _GROUP_DEFAULTS = {"maximize": False, "foreach": None, "capturable": False,
                       "differentiable": False, "decoupled_weight_decay": False}


    def _update_group(self, group: dict[str, Any], updated: list[Tensor]) -> None:
        where = group_device(group)
        lr = self._lr(group, where)
        beta1, beta2 = (scalar(b, device=where) for b in group["betas"])
        eps, wd, psi = group["eps"], group["weight_decay"], group["momentum_decay"]
        shared: dict = {}
        scalars: dict = {}
        for p in group["params"]:
            if p.grad is None:
                continue
            g = -p.grad if group["maximize"] else p.grad
            state = self.state[p]
            step_t = self._step_counter(state, shared, where)
            mu_product = self._scalar_state(state, "mu_product", 1.0, shared, where)
            if "exp_avg" not in state:
                state["exp_avg"] = zeros_like(p)
                state["exp_avg_sq"] = zeros_like(p)
            key = (step_t.node, mu_product.node)
            if key not in scalars:
                step = step_t.double() + 1
                mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * psi))
                mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * psi))
                # float32 * float32, as PyTorch's in-place update of the float32 state
                new_product = mu_product * mu.to(dt.float32)
                prod = new_product.double()
                scalars[key] = ((step_t + 1).node, new_product.node,
                                (1 - beta2 ** step).sqrt(),
                                -lr * (1.0 - mu) / (1.0 - prod),
                                -lr * mu_next / (1.0 - prod * mu_next))
            step_node, product_node, bc2_sqrt, coef_g, coef_m = scalars[key]
            step_t._assign(step_node)
            mu_product._assign(product_node)
            if wd != 0:
                if group["decoupled_weight_decay"]:
                    p._assign((p * (1 - lr * wd)).node)
                else:
                    g = g.add(p, alpha=wd)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg._assign(exp_avg.lerp(g, 1 - beta1).node)
            exp_avg_sq._assign(exp_avg_sq.mul(beta2).add(g * (1 - beta2) * g).node)
            denom = exp_avg_sq.sqrt() / bc2_sqrt + eps
            p._assign((p + coef_g * g / denom + coef_m * exp_avg / denom).node)
            updated += [step_t, mu_product, exp_avg, exp_avg_sq, p]
