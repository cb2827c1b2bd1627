"""Optimizer: the base class of every optimizer, with PyTorch's param_groups, state and
state_dict layout.

An update is built lazily, as graph, under no_grad: each parameter and each state tensor is
rebound in place (`_assign`) to a node computing its new value. Nothing runs until the end of
`step()`, which realizes every updated tensor in one call, so forward, backward and the whole
update are one plan of a few fused kernels. Values that change from step to step (the learning
rate, step counts, bias corrections) enter the graph as 0-d tensors (data), never as Python
constants, so the graph's structure, and with it the plan cache key, is the same every step.
"""
from __future__ import annotations

import functools
import itertools
import warnings
from collections import OrderedDict, defaultdict
from copy import deepcopy
from typing import Any, Callable

from ..autograd import enable_grad, no_grad
from ..frontend.tensor import Tensor, device_name, realize_tensors
from ..ir import dtypes as dt
from ..runtime import memory
from ..utils.hooks import RemovableHandle
from .foreach import foreach_enabled, update_group_foreach

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Singleton marking a default that a param group must give."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()


def _typename(obj) -> str:
    if isinstance(obj, Tensor):
        return "torch.Tensor"
    t = type(obj)
    return t.__qualname__ if t.__module__ in ("builtins", None) else \
        f"{t.__module__}.{t.__qualname__}"


def scalar(value, dtype: dt.DType = dt.float64, device: str = "cpu") -> Tensor:
    """A 0-d tensor on the IR's `device` holding `value` as data (a realized buffer).

    Per-step values enter update graphs this way: the graph's structure does not depend on the
    value, so a new value reuses the compiled plan."""
    if isinstance(value, Tensor):
        if value.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        from ..utils.data.collate import host_array
        # read without compiling: a fill_()ed or scheduled lr is a new constant each step
        arr = host_array(value, any_op=True)
        value = (arr if arr is not None else value.detach()._array()).reshape(()).item()
    return Tensor._make(memory.buffer_node(dt.astype(value, dtype), device=device))


def group_device(group: dict[str, Any]) -> str:
    """The device of a param group's per-step scalars (lr, betas, step counters): its
    parameters' common device, or the CPU when they are on several (a 0-d CPU tensor combines
    with a tensor on any device)."""
    where = {device_name(p) for p in group["params"]}
    return where.pop() if len(where) == 1 else "cpu"


def _value(v):
    """A Python number for a hyperparameter given as a number or a 1-element tensor."""
    return v.item() if isinstance(v, Tensor) else v


def _check_fused(fused: bool | None, foreach: bool | None, differentiable: bool) -> None:
    """PyTorch's refusals of `fused=True` with `differentiable` or `foreach`."""
    if fused and differentiable:
        raise RuntimeError("`fused` does not support `differentiable`")
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


def _check_args(lr, *, eps: float | None = None, betas=None,
                weight_decay: float | None = None) -> None:
    """PyTorch's checks of the options most optimizers share, with its messages."""
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= _value(lr):
        raise ValueError(f"Invalid learning rate: {lr}")
    if eps is not None and not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if betas is not None:
        for i in (0, 1):
            if not 0.0 <= _value(betas[i]) < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {betas[i]}")
    if weight_decay is not None and not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")


def _decayed_grad(p: Tensor, maximize: bool, weight_decay: float) -> Tensor:
    """p's gradient, negated when maximizing, plus weight_decay * p (L2 decay), the direction
    that SGD, RMSprop and Adagrad start from."""
    g = -p.grad if maximize else p.grad
    if weight_decay != 0:
        g = g.add(p, alpha=weight_decay)
    return g


def realize_updates(tensors: list[Tensor]) -> None:
    """Realize all updated parameters and states in one plan (tensors sharing a node, such as
    step counters that advance together, are computed once)."""
    unique: dict[int, Tensor] = {}
    for t in tensors:
        unique.setdefault(id(t), t)
    if unique:
        realize_tensors(list(unique.values()))


def _hook_step(step: Callable) -> Callable:
    """Wrap a subclass's step: run the step pre/post hooks around it."""
    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        for hook in list(self._optimizer_step_pre_hooks.values()):
            result = hook(self, args, kwargs)
            if result is not None:
                if isinstance(result, tuple) and len(result) == 2:
                    args, kwargs = result
                else:
                    raise RuntimeError(f"{hook} must return None or a tuple of (new_args, "
                                       f"new_kwargs), but got {result}.")
        out = step(self, *args, **kwargs)
        self._opt_called = True
        for hook in list(self._optimizer_step_post_hooks.values()):
            hook(self, args, kwargs)
        return out
    wrapper._hooked = True
    # (named as the step it wraps: the API name of the update's ops in messages and profiles)
    wrapper.__code__ = wrapper.__code__.replace(co_name=step.__name__)
    return wrapper


class Optimizer:
    """Base class for all optimizers.

    params: an iterable of tensors, of (name, tensor) pairs, or of dicts defining parameter
    groups; defaults: the default value of each optimization option (used by groups that do
    not give it).
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_hooked", False):
            cls.step = _hook_step(step)

    def __init__(self, params, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._optimizer_step_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_step_post_hooks: OrderedDict = OrderedDict()
        self._optimizer_state_dict_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_state_dict_post_hooks: OrderedDict = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks: OrderedDict = OrderedDict()
        self._optimizer_load_state_dict_post_hooks: OrderedDict = OrderedDict()
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got " + _typename(params))
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------------ groups
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options (the defaults fill in the rest)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {_typename(param_group)}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            param_group["params"] = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in ordered collections, "
                            "but the ordering of tensors in sets will change between runs. "
                            "Please use a list instead.")
        else:
            param_group["params"] = list(params)
        tensors, names = [], []
        for p in param_group["params"]:
            if isinstance(p, tuple):
                names.append(p[0])
                tensors.append(p[1])
            else:
                tensors.append(p)
        param_group["params"] = tensors
        if names:
            if len(names) != len(tensors):
                raise ValueError("all optimizer params should be with/without names. Some param "
                                 "names are missing")
            param_group["param_names"] = names
        for p in tensors:
            if not isinstance(p, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                                + _typename(p))
            if not self.defaults.get("differentiable", None) and not (p.is_leaf or
                                                                       p.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError("parameter group didn't specify a value of required "
                                 f"optimization parameter {name}")
            param_group.setdefault(name, default)
        ids = [id(p) for p in tensors]
        if len(ids) != len(set(ids)):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in "
                          "future, this will cause an error; see github.com/pytorch/pytorch/"
                          "issues/40967 for more information", stacklevel=3)
        seen: set[int] = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                current = "with names" if "param_names" in param_group else "without names"
                raise ValueError("all optimizer param groups should be with/without names. "
                                 f"cannot add param group {current} to the optimizer")
        if not seen.isdisjoint(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    # ------------------------------------------------------------------------ grads
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all optimized tensors (to None by default, else to zeros)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    g = p.grad
                    if g.grad_fn is not None:
                        g.detach_()
                    else:
                        g.requires_grad_(False)
                    g.zero_()

    # ------------------------------------------------------------------------ stepping
    @_hook_step
    def step(self, closure: Callable[[], Any] | None = None):
        """One update of every parameter with a gradient, realized in one go (an optimizer
        defines `_update_group`; LBFGS, with its own protocol, defines step itself)."""
        return self._lazy_step(closure)

    def _lazy_step(self, closure: Callable[[], Any] | None):
        """The common step: run the closure with grad enabled, build every group's update under
        no_grad (`_update_group` appends each updated tensor), then realize them together."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        updated: list[Tensor] = []
        with no_grad():
            for group in self.param_groups:
                if foreach_enabled(self, group):
                    update_group_foreach(self, group, updated)
                else:
                    self._update_group(group, updated)
            realize_updates(updated)  # inside: leaving no_grad finds nothing left to realize
        return loss

    # whether _update_group's per-parameter graphs may be recorded once per group and
    # instantiated (optim/foreach.py), and whether foreach=None and fused=None choose it
    _FOREACH = False
    _FOREACH_DEFAULT = True

    def _update_group(self, group: dict[str, Any], updated: list[Tensor]) -> None:
        raise NotImplementedError

    @staticmethod
    def _lr(group: dict[str, Any], where: str) -> Tensor:
        """The group's learning rate as a 0-d float64 tensor on `where` (data, not a graph
        constant).

        Options that schedulers change (lr; momentum and beta1 under OneCycleLR) enter the
        update this way; options that stay put (eps, weight_decay, ...) are constants."""
        return scalar(group["lr"], device=where)

    @staticmethod
    def _step_counter(state: dict, shared: dict, where: str) -> Tensor:
        """state['step'] (a 0-d float32 tensor, as PyTorch keeps it), created at 0 on `where`
        if missing.

        New counters of one step share a node, so counters that advance together stay one
        node, and one value to compute."""
        return Optimizer._scalar_state(state, "step", 0.0, shared, where)

    @staticmethod
    def _scalar_state(state: dict, name: str, initial: float, shared: dict,
                      where: str) -> Tensor:
        """state[name], a 0-d float32 tensor (a step count, NAdam's mu_product, ASGD's eta),
        created at `initial` on `where` if missing; a number loaded from an old state dict
        becomes one.

        New ones of one step with the same initial value share a node, so values that advance
        together stay one node, and one value to compute."""
        st = state.get(name)
        if st is None:
            key = (name, float(initial), where)
            if key not in shared:
                shared[key] = scalar(float(initial), dt.float32, where)
            st = state[name] = Tensor._make(shared[key].node)
        elif not isinstance(st, Tensor):
            st = state[name] = scalar(float(st), dt.float32, where)
        return st

    # ------------------------------------------------------------------------ hooks
    def register_step_pre_hook(self, hook: Callable) -> RemovableHandle:
        """hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs), before step()."""
        return self._register(self._optimizer_step_pre_hooks, hook, False)

    def register_step_post_hook(self, hook: Callable) -> RemovableHandle:
        """hook(optimizer, args, kwargs) -> None, after step()."""
        return self._register(self._optimizer_step_post_hooks, hook, False)

    def _register(self, table: OrderedDict, hook: Callable, prepend: bool) -> RemovableHandle:
        handle = RemovableHandle(table)
        table[handle.id] = hook
        if prepend:
            table.move_to_end(handle.id, last=False)
        return handle

    def register_state_dict_pre_hook(self, hook: Callable, prepend: bool = False):
        return self._register(self._optimizer_state_dict_pre_hooks, hook, prepend)

    def register_state_dict_post_hook(self, hook: Callable, prepend: bool = False):
        return self._register(self._optimizer_state_dict_post_hooks, hook, prepend)

    def register_load_state_dict_pre_hook(self, hook: Callable, prepend: bool = False):
        return self._register(self._optimizer_load_state_dict_pre_hooks, hook, prepend)

    def register_load_state_dict_post_hook(self, hook: Callable, prepend: bool = False):
        return self._register(self._optimizer_load_state_dict_post_hooks, hook, prepend)

    # ------------------------------------------------------------------------ state dicts
    def state_dict(self) -> dict[str, Any]:
        """{'state': {index: {...}}, 'param_groups': [{..., 'params': [indices]}]}, with
        parameters numbered in order across the groups (PyTorch's layout). Tensors are
        references, not copies."""
        for hook in self._optimizer_state_dict_pre_hooks.values():
            hook(self)
        mapping: dict[int, int] = {}
        start = 0

        def pack(group: dict[str, Any]) -> dict[str, Any]:
            nonlocal start
            packed = {k: v for k, v in group.items() if k != "params"}
            mapping.update({id(p): i for i, p in enumerate(group["params"], start)
                            if id(p) not in mapping})
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            start += len(packed["params"])
            return packed

        groups = [pack(g) for g in self.param_groups]
        state = {(mapping[id(k)] if isinstance(k, Tensor) else k): v
                 for k, v in self.state.items()}
        out = {"state": state, "param_groups": groups}
        for hook in self._optimizer_state_dict_post_hooks.values():
            result = hook(self, out)
            if result is not None:
                out = result
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state_dict() (of an optimizer over parameters of the same shapes): options
        and state are restored; floating state is cast to its parameter's dtype."""
        state_dict = dict(state_dict)
        for hook in self._optimizer_load_state_dict_pre_hooks.values():
            result = hook(self, state_dict)
            if result is not None:
                state_dict = result
        groups = self.param_groups
        saved_groups = [_copy_group(g) for g in state_dict["param_groups"]]
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        if any(len(g["params"]) != len(s["params"]) for g, s in zip(groups, saved_groups)):
            raise ValueError("loaded state dict contains a parameter group that doesn't match "
                             "the size of optimizer's group")
        id_map = dict(zip(itertools.chain.from_iterable(g["params"] for g in saved_groups),
                          itertools.chain.from_iterable(g["params"] for g in groups)))
        state: defaultdict = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                p = id_map[k]
                state[p] = _cast_state(p, v, k, saved_groups)
            else:
                state[k] = v
        new_groups = []
        for group, saved in zip(groups, saved_groups):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
            new_groups.append(saved)
        self.__setstate__({"state": state, "param_groups": new_groups})
        for hook in self._optimizer_load_state_dict_post_hooks.values():
            hook(self)

    # the group options that state saved by an older version may lack, with the values a load
    # gives them (what each of PyTorch's optimizers sets in its __setstate__)
    _GROUP_DEFAULTS: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"defaults": self.defaults, "state": self.state,
                "param_groups": self.param_groups}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        for name in ("_optimizer_step_pre_hooks", "_optimizer_step_post_hooks",
                     "_optimizer_state_dict_pre_hooks", "_optimizer_state_dict_post_hooks",
                     "_optimizer_load_state_dict_pre_hooks",
                     "_optimizer_load_state_dict_post_hooks"):
            if name not in self.__dict__:
                setattr(self, name, OrderedDict())
        self.defaults.setdefault("differentiable", False)
        for group in self.__dict__.get("param_groups", ()):
            for k, v in self._GROUP_DEFAULTS.items():
                group.setdefault(k, v)

    def __repr__(self) -> str:
        s = self.__class__.__name__ + " ("
        for i, group in enumerate(self.param_groups):
            s += f"\nParameter Group {i}\n"
            for key in sorted(group.keys()):
                if key != "params":
                    s += f"    {key}: {group[key]}\n"
        return s + ")"


def _copy_group(group: dict[str, Any]) -> dict[str, Any]:
    """A copy of a saved param group (tensors inside are shared; everything else copied)."""
    return {k: (v if isinstance(v, Tensor) else deepcopy(v)) for k, v in group.items()}


def _cast_state(param: Tensor, value, key, groups, name=None):
    """A saved state value for `param`: tensors get the parameter's dtype (step counters keep
    theirs) and are new tensor objects, so the two optimizers never share state."""
    if isinstance(value, Tensor):
        if name != "step" and param.is_floating_point():
            value = value.to(param.dtype)
        return _fresh(value)
    if isinstance(value, dict):
        return {k: _cast_state(param, v, key, groups, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_state(param, v, key, groups, name) for v in value)
    return value


def _fresh(t: Tensor) -> Tensor:
    """A new tensor object with t's value and no autograd history (sharing t's node)."""
    if t.requires_grad:
        return t.detach()
    return Tensor._make(t.node)
