"""Rprop: resilient backpropagation, per-coordinate steps adapted by the gradient's sign."""
from __future__ import annotations

from typing import Any

from .. import functional as lf
from ..frontend.creation import full_like, zeros_like
from ..frontend.tensor import Tensor
from .optimizer import Optimizer, _check_args, _value, group_device

__all__ = ["Rprop"]


class Rprop(Optimizer):
    """Rprop, PyTorch's algorithm (the `torch.optim.Rprop` pseudo-code):

        g = -grad if maximize else grad;  s = sign(g * g_prev)
        step = clamp(step * (etaplus if s > 0, etaminus if s < 0, else 1), *step_sizes)
        g = 0 where s < 0;  p -= sign(g) * step;  g_prev = g

    Each coordinate's step size starts at lr.
    """

    def __init__(self, params, lr: float | Tensor = 1e-2,
                 etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50), *, capturable: bool = False,
                 foreach: bool | None = None, maximize: bool = False,
                 differentiable: bool = False) -> None:
        _check_args(lr)
        if not 0.0 < etas[0] < 1.0 < etas[1]:
            raise ValueError(f"Invalid eta values: {etas[0]}, {etas[1]}")
        defaults = {"lr": lr, "etas": etas, "step_sizes": step_sizes, "foreach": foreach,
                    "maximize": maximize, "differentiable": differentiable,
                    "capturable": capturable}
        super().__init__(params, defaults)

    _GROUP_DEFAULTS = {"foreach": None, "maximize": False, "differentiable": False,
                       "capturable": False}


    def _update_group(self, group: dict[str, Any], updated: list[Tensor]) -> None:
        where = group_device(group)
        etaminus, etaplus = group["etas"]
        lo, hi = group["step_sizes"]
        shared: dict = {}
        for p in group["params"]:
            if p.grad is None:
                continue
            g = -p.grad if group["maximize"] else p.grad
            state = self.state[p]
            step_t = self._step_counter(state, shared, where)
            if "prev" not in state:
                state["prev"] = zeros_like(p)
                state["step_size"] = full_like(p, _value(group["lr"]))
            step_t._assign((step_t + 1).node)
            prev, step_size = state["prev"], state["step_size"]
            s = g * prev
            flip = s < 0
            # the factors in the parameter's dtype (two Python numbers would make float32)
            factor = lf.where(s > 0, etaplus, lf.where(flip, etaminus, full_like(s, 1.0)))
            step_size._assign((step_size * factor).clamp(lo, hi).node)
            g = lf.where(flip, 0.0, g)
            p._assign((p - g.sign() * step_size).node)
            prev._assign(g.node)
            updated += [step_t, step_size, prev, p]
