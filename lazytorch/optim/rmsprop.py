"""RMSprop (with momentum, centering, weight decay and maximize)."""
from __future__ import annotations

from typing import Any

from ..frontend.creation import zeros_like
from ..frontend.tensor import Tensor
from .optimizer import Optimizer, _decayed_grad, _value, group_device, scalar

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop, PyTorch's algorithm (the `torch.optim.RMSprop` pseudo-code):

        g = -grad if maximize else grad;  g += weight_decay * p
        v = alpha v + (1 - alpha) g^2
        centered: ga = alpha ga + (1 - alpha) g;  avg = sqrt(v - ga^2) + eps, else sqrt(v) + eps
        momentum > 0: b = momentum b + g / avg;  p -= lr * b,  else p -= lr * g / avg
    """

    def __init__(self, params, lr: float | Tensor = 1e-2, alpha: float = 0.99,
                 eps: float = 1e-8, weight_decay: float = 0, momentum: float = 0,
                 centered: bool = False, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= _value(lr):
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= momentum:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= alpha:
            raise ValueError(f"Invalid alpha value: {alpha}")
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                    "centered": centered, "weight_decay": weight_decay,
                    "capturable": capturable, "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable}
        super().__init__(params, defaults)

    _GROUP_DEFAULTS = {"momentum": 0, "centered": False, "foreach": None, "maximize": False,
                       "differentiable": False, "capturable": False}


    def _update_group(self, group: dict[str, Any], updated: list[Tensor]) -> None:
        where = group_device(group)
        lr = self._lr(group, where)
        alpha, eps, wd = group["alpha"], group["eps"], group["weight_decay"]
        momentum, centered, maximize = group["momentum"], group["centered"], group["maximize"]
        momentum_t = scalar(momentum, device=where) if momentum > 0 else None
        shared: dict = {}
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            step_t = self._step_counter(state, shared, where)
            if "square_avg" not in state:
                state["square_avg"] = zeros_like(p)
                if momentum > 0:
                    state["momentum_buffer"] = zeros_like(p)
                if centered:
                    state["grad_avg"] = zeros_like(p)
            step_t._assign((step_t + 1).node)
            updated.append(step_t)
            g = _decayed_grad(p, maximize, wd)
            sq = state["square_avg"]
            sq._assign(sq.mul(alpha).add(g * (1 - alpha) * g).node)
            updated.append(sq)
            if centered:
                ga = state["grad_avg"]
                ga._assign(ga.lerp(g, 1 - alpha).node)
                updated.append(ga)
                avg = (sq - ga * ga).sqrt() + eps
            else:
                avg = sq.sqrt() + eps
            if momentum > 0:
                buf = state["momentum_buffer"]
                buf._assign(buf.mul(momentum_t).add(g / avg).node)
                updated.append(buf)
                p._assign((p - lr * buf).node)
            else:
                p._assign((p - lr * g / avg).node)
            updated.append(p)
