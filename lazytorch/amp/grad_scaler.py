"""torch.amp.GradScaler: loss scaling for low-precision training, as PyTorch's.

A "cuda" scaler (the default device, and torch.cuda.amp.GradScaler) where CUDA cannot run warns
and disables itself: scale() returns its argument, step() calls optimizer.step(), update()
does nothing. A "cpu" scaler, or a "cuda" one with a GPU, works: scale() multiplies by the
scale, unscale_()
divides the gradients and notes whether any is inf or NaN, step() skips the update when one
was, and update() backs the scale off after such a step and grows it after `growth_interval`
clean ones.
"""
from __future__ import annotations

import warnings
from collections import abc, defaultdict
from enum import Enum
from typing import Any

import numpy as np

from ..autograd import no_grad
from ..frontend.tensor import Tensor, check_device
from ..ir import dtypes as _dt
from ..runtime import memory

__all__ = ["GradScaler", "OptState"]


def _cuda_available() -> bool:
    from .. import cuda
    return cuda.is_available()


class OptState(Enum):
    READY = 0
    UNSCALED = 1
    STEPPED = 2


def _fresh_state() -> dict[str, Any]:
    return {"stage": OptState.READY, "found_inf": None}


def _data(value: float, where: str) -> Tensor:
    """A 0-d float32 tensor on the IR's device `where` holding `value` as data: a new scale
    reuses the compiled plans."""
    return Tensor._make(memory.buffer_node(np.array(value, dtype=np.float32), device=where))


class GradScaler:
    """See the module's docstring."""

    def __init__(self, device: str = "cuda", init_scale: float = 2.0 ** 16,
                 growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000, enabled: bool = True) -> None:
        self._device = str(device)
        self._enabled = bool(enabled)
        if self._enabled and self._device == "cuda" and not _cuda_available():
            warnings.warn("torch.cuda.amp.GradScaler is enabled, but CUDA is not available.  "
                          "Disabling.", UserWarning, stacklevel=2)
            self._enabled = False
        # (another device type raises PyTorch's message, naming the registered ones)
        self._where = "cpu" if self._device == "cuda" and not self._enabled else \
            check_device(self._device)
        if self._enabled:
            if growth_factor <= 1.0:
                raise AssertionError("The growth factor must be > 1.0.")
            if backoff_factor >= 1.0:
                raise AssertionError("The backoff factor must be < 1.0.")
        self._init_scale = float(init_scale)
        self._scale_value = float(init_scale)
        self._scale: Tensor | None = None
        self._growth_factor = float(growth_factor)
        self._backoff_factor = float(backoff_factor)
        self._growth_interval = int(growth_interval)
        self._growth_tracker = 0
        self._per_optimizer_states: defaultdict = defaultdict(_fresh_state)

    # ------------------------------------------------------------------------- scaling
    def _scale_tensor(self) -> Tensor:
        if self._scale is None:
            self._scale = _data(self._scale_value, self._where)
        return self._scale

    def scale(self, outputs):
        """outputs (a tensor or nested lists/tuples of them) times the current scale."""
        if not self._enabled:
            return outputs
        if isinstance(outputs, Tensor):
            return outputs * self._scale_tensor()

        def apply(val):
            if isinstance(val, Tensor):
                return val * self._scale_tensor()
            if isinstance(val, abc.Iterable):
                scaled = map(apply, val)
                return type(val)(scaled) if isinstance(val, (list, tuple)) else scaled
            raise ValueError("outputs must be a Tensor or an iterable of Tensors")
        return apply(outputs)

    def unscale_(self, optimizer) -> None:
        """Divide optimizer's gradients by the scale, in place, and note whether any of them
        holds an inf or a NaN."""
        if not self._enabled:
            return
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.UNSCALED:
            raise RuntimeError("unscale_() has already been called on this optimizer since the "
                               "last update().")
        if state["stage"] is OptState.STEPPED:
            raise RuntimeError("unscale_() is being called after step().")
        # the reciprocal in float64, then float32, as PyTorch's
        inv = _data(float(np.float32(1.0 / np.float64(np.float32(self._scale_value)))),
                    self._where)
        bad = []
        with no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if p.grad.dtype == _dt.float16:
                        raise ValueError("Attempting to unscale FP16 gradients.")
                    bad.append((~p.grad.isfinite()).any())
                    p.grad.mul_(inv.to(p.grad.dtype))
        found = _data(0.0, self._where)
        for b in bad:
            found = found + b
        state["found_inf"] = found
        state["stage"] = OptState.UNSCALED

    def step(self, optimizer, *args: Any, **kwargs: Any):
        """optimizer.step(*args, **kwargs), after unscale_() if it was not called, skipped when
        the gradients held an inf or a NaN (that check realizes the gradients)."""
        if not self._enabled:
            return optimizer.step(*args, **kwargs)
        if "closure" in kwargs:
            raise RuntimeError("Closure use is not currently supported if GradScaler is "
                               "enabled.")
        state = self._per_optimizer_states[id(optimizer)]
        if state["stage"] is OptState.STEPPED:
            raise RuntimeError("step() has already been called since the last update().")
        if state["stage"] is OptState.READY:
            self.unscale_(optimizer)
        retval = None
        if not state["found_inf"].item():
            retval = optimizer.step(*args, **kwargs)
        state["stage"] = OptState.STEPPED
        return retval

    def update(self, new_scale: float | Tensor | None = None) -> None:
        """Set the scale for the next iteration: `new_scale` if given; else backed off if any
        step since the last update found an inf or a NaN, grown after `growth_interval` clean
        updates in a row."""
        if not self._enabled:
            return
        if new_scale is not None:
            if isinstance(new_scale, Tensor):
                if new_scale.numel() != 1 or new_scale.requires_grad:
                    raise AssertionError("new_scale should be a float or a 1-element "
                                         "torch.FloatTensor with requires_grad=False.")
                new_scale = new_scale.item()
            self._set_scale(float(new_scale))
        else:
            found = [s["found_inf"] for s in self._per_optimizer_states.values()
                     if s["found_inf"] is not None]
            if not found:
                raise AssertionError("No inf checks were recorded prior to update.")
            if any(f.item() for f in found):
                self._set_scale(self._scale_value * self._backoff_factor)
                self._growth_tracker = 0
            else:
                self._growth_tracker += 1
                if self._growth_tracker == self._growth_interval:
                    grown = np.float32(self._scale_value) * np.float32(self._growth_factor)
                    if np.isfinite(grown):  # an overflowing scale stays where it was
                        self._set_scale(float(grown))
                    self._growth_tracker = 0
        self._per_optimizer_states = defaultdict(_fresh_state)

    def _set_scale(self, value: float) -> None:
        self._scale_value = float(np.float32(value))  # the scale is a float32, as PyTorch's
        self._scale = None

    # ------------------------------------------------------------------------- accessors
    def get_scale(self) -> float:
        return self._scale_value if self._enabled else 1.0

    def get_growth_factor(self) -> float:
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        self._growth_factor = float(new_factor)

    def get_backoff_factor(self) -> float:
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        self._backoff_factor = float(new_factor)

    def get_growth_interval(self) -> int:
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        self._growth_interval = int(new_interval)

    def is_enabled(self) -> bool:
        return self._enabled

    def state_dict(self) -> dict[str, Any]:
        if not self._enabled:
            return {}
        return {"scale": self.get_scale(), "growth_factor": self._growth_factor,
                "backoff_factor": self._backoff_factor, "growth_interval": self._growth_interval,
                "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not self._enabled:
            return
        if len(state_dict) == 0:
            raise RuntimeError("The source state dict is empty, possibly because it was saved "
                               "from a disabled instance of GradScaler.")
        self._set_scale(state_dict["scale"])
        self._growth_factor = float(state_dict["growth_factor"])
        self._backoff_factor = float(state_dict["backoff_factor"])
        self._growth_interval = int(state_dict["growth_interval"])
        self._growth_tracker = int(state_dict["_growth_tracker"])
