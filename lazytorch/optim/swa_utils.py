"""Stochastic weight averaging and exponential moving averages of a model (torch.optim.
swa_utils): AveragedModel, SWALR, update_bn and the averaging functions. Averaged values are
updated lazily and computed with the next realize (nn.functional._update_buffer), so they
never carry a graph from one update to the next."""
from __future__ import annotations

import itertools
import math
import warnings
from copy import deepcopy
from typing import Any, Callable, Iterable

from ..autograd import no_grad
from ..frontend import creation
from ..frontend.tensor import Tensor, realize_tensors
from ..ir import dtypes as dt
from ..nn.functional_norm import _update_buffer
from ..nn.module import Module
from .lr_scheduler import LRScheduler, _format_param
from .optimizer import Optimizer

__all__ = ["AveragedModel", "update_bn", "SWALR", "get_ema_multi_avg_fn",
           "get_swa_multi_avg_fn", "get_ema_avg_fn", "get_swa_avg_fn"]


def _check_decay(decay: float) -> None:
    if decay < 0.0 or decay > 1.0:
        raise ValueError(f"Invalid decay value {decay} provided. Please provide a value in "
                         "[0,1] range.")


def get_ema_avg_fn(decay: float = 0.999) -> Callable:
    """avg_fn(averaged, current, n) = decay averaged + (1 - decay) current."""
    _check_decay(decay)

    def ema_update(ema_param: Tensor, current_param: Tensor, num_averaged) -> Tensor:
        return decay * ema_param + (1 - decay) * current_param
    return ema_update


def get_swa_avg_fn() -> Callable:
    """avg_fn(averaged, current, n) = averaged + (current - averaged) / (n + 1)."""
    def swa_update(averaged_param: Tensor, current_param: Tensor, num_averaged) -> Tensor:
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)
    return swa_update


def get_ema_multi_avg_fn(decay: float = 0.999) -> Callable:
    """multi_avg_fn(averaged list, current list, n): each averaged tensor moves by
    (1 - decay) towards its current one, in place."""
    _check_decay(decay)

    def ema_update(ema_params, current_params, num_averaged) -> None:
        with no_grad():
            for e, c in zip(ema_params, current_params):
                _update_buffer(e, e.lerp(c, 1 - decay) if e.is_floating_point() else
                               e * decay + c * (1 - decay))
    return ema_update


def get_swa_multi_avg_fn() -> Callable:
    """multi_avg_fn(averaged list, current list, n): the running mean of the n + 1 values."""
    def swa_update(averaged_params, current_params, num_averaged) -> None:
        with no_grad():
            for a, c in zip(averaged_params, current_params):
                _update_buffer(a, a + (c - a) / (num_averaged + 1))
    return swa_update


class AveragedModel(Module):
    """A copy of `model` whose parameters (and with use_buffers, buffers) are the average of
    the model's over update_parameters() calls: the running mean (SWA) by default, or avg_fn /
    multi_avg_fn (for example get_ema_multi_avg_fn(0.999))."""

    def __init__(self, model: Module, device=None, avg_fn: Callable | None = None,
                 multi_avg_fn: Callable | None = None, use_buffers: bool = False) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError("Only one of avg_fn and multi_avg_fn should be provided")
        self.module = deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", creation.tensor(0, dtype=dt.int64, device=device))
        self.avg_fn, self.multi_avg_fn, self.use_buffers = avg_fn, multi_avg_fn, use_buffers

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def update_parameters(self, model: Module) -> None:
        """Fold model's current values into the average (the first call copies them)."""
        if self.use_buffers:
            own = list(itertools.chain(self.module.parameters(), self.module.buffers()))
            theirs = list(itertools.chain(model.parameters(), model.buffers()))
        else:
            own, theirs = list(self.parameters()), list(model.parameters())
        theirs = [p.detach() for p in theirs]
        n = self.n_averaged
        with no_grad():
            if int(n.item()) == 0:
                for a, c in zip(own, theirs):
                    _update_buffer(a, c)
            elif self.multi_avg_fn is not None:
                self.multi_avg_fn(own, theirs, n)
            else:
                fn = self.avg_fn if self.avg_fn is not None else get_swa_avg_fn()
                for a, c in zip(own, theirs):
                    _update_buffer(a, fn(a.detach(), c, n))
            if not self.use_buffers:
                for b_own, b_model in zip(self.module.buffers(), model.buffers()):
                    _update_buffer(b_own, b_model.detach())
            _update_buffer(self.n_averaged, self.n_averaged + 1)


def update_bn(loader: Iterable[Any], model: Module, device=None) -> None:
    """Recompute the model's batch-norm running statistics over one pass of loader (their
    cumulative average over all batches), in training mode; each batch's statistics are
    computed as it is seen."""
    from ..nn.normalization import _BatchNorm
    momenta = {m: m.momentum for m in model.modules() if isinstance(m, _BatchNorm)}
    if not momenta:
        return
    for m in momenta:
        m.reset_running_stats()
        m.momentum = None
    was_training = model.training
    model.train()
    stats = [t for m in momenta for t in (m.running_mean, m.running_var,
                                          m.num_batches_tracked) if t is not None]
    with no_grad():
        for input in loader:
            if isinstance(input, (list, tuple)):
                input = input[0]
            model(input)
            realize_tensors(stats)    # one plan per batch, replayed: no graph across batches
    for m, momentum in momenta.items():
        m.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's lr to swa_lr over anneal_epochs (cosine or linear), then hold it."""

    def __init__(self, optimizer: Optimizer, swa_lr, anneal_epochs: int = 10,
                 anneal_strategy: str = "cos", last_epoch: int = -1) -> None:
        swa_lrs = _format_param("swa_lr", optimizer, swa_lr)
        for lr, group in zip(swa_lrs, optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got "
                             f"{anneal_strategy}")
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(f"anneal_epochs must be equal or greater than 0, got "
                             f"{anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t: float) -> float:
        return t

    @staticmethod
    def _cosine_anneal(t: float) -> float:
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr: float, swa_lr: float, alpha: float) -> float:
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def _set_anneal_func(self, anneal_strategy: str) -> None:
        self._anneal_strategy = anneal_strategy
        self.anneal_func = self._cosine_anneal if anneal_strategy == "cos" else \
            self._linear_anneal

    def get_lr(self) -> list:
        if not self._get_lr_called_within_step:
            warnings.warn("To get the last learning rate computed by the scheduler, please use "
                          "`get_last_lr()`.", UserWarning, stacklevel=2)
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_alpha = self.anneal_func(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        prev_lrs = [self._get_initial_lr(g["lr"], g["swa_lr"], prev_alpha)
                    for g in self.optimizer.param_groups]
        alpha = self.anneal_func(max(0, min(1, step / max(1, self.anneal_epochs))))
        return [g["swa_lr"] * alpha + lr * (1 - alpha)
                for g, lr in zip(self.optimizer.param_groups, prev_lrs)]

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "anneal_func")}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)
        self._set_anneal_func(self._anneal_strategy)
