"""Adagrad (with learning-rate decay, weight decay and maximize)."""
from __future__ import annotations

from typing import Any

from ..frontend.creation import full_like
from ..frontend.tensor import Tensor
from .optimizer import Optimizer, _check_fused, _decayed_grad, _value, group_device

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad, PyTorch's algorithm (the `torch.optim.Adagrad` pseudo-code):

        t += 1;  g = -grad if maximize else grad;  g += weight_decay * p
        clr = lr / (1 + (t - 1) lr_decay);  s += g^2;  p -= clr * g / (sqrt(s) + eps)
    """

    def __init__(self, params, lr: float | Tensor = 1e-2, lr_decay: float = 0,
                 weight_decay: float = 0, initial_accumulator_value: float = 0,
                 eps: float = 1e-10, foreach: bool | None = None, *, maximize: bool = False,
                 differentiable: bool = False, fused: bool | None = None) -> None:
        if isinstance(lr, Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if not 0.0 <= _value(lr):
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= lr_decay:
            raise ValueError(f"Invalid lr_decay value: {lr_decay}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if not 0.0 <= initial_accumulator_value:
            raise ValueError(f"Invalid initial_accumulator_value value: "
                             f"{initial_accumulator_value}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value,
                    "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)
        _check_fused(fused, foreach, differentiable)
        shared: dict = {}
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group, shared)

    def _init_state(self, p: Tensor, group: dict[str, Any], shared: dict) -> None:
        state = self.state[p]
        self._step_counter(state, shared, group_device(group))
        if "sum" not in state:
            state["sum"] = full_like(p, group["initial_accumulator_value"])

    _GROUP_DEFAULTS = {"foreach": None, "maximize": False, "differentiable": False, "fused": None}


    def _update_group(self, group: dict[str, Any], updated: list[Tensor]) -> None:
        where = group_device(group)
        lr = self._lr(group, where)
        lr_decay = group["lr_decay"]
        eps, wd, maximize = group["eps"], group["weight_decay"], group["maximize"]
        shared: dict = {}
        scalars: dict = {}
        for p in group["params"]:
            if p.grad is None:
                continue
            self._init_state(p, group, shared)
            state = self.state[p]
            step_t = state["step"]
            step_t._assign((step_t + 1).node)
            updated.append(step_t)
            g = _decayed_grad(p, maximize, wd)
            key = step_t.node
            if key not in scalars:
                scalars[key] = lr / (1 + (step_t.double() - 1) * lr_decay)
            clr = scalars[key]
            s = state["sum"]
            s._assign(s.add(g * g).node)
            updated.append(s)
            p._assign((p - clr * g / (s.sqrt() + eps)).node)
            updated.append(p)
