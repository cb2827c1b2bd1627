"""torch.autograd.Function: a user's forward and backward, as graph.

`MyFn.apply(*args)` runs the user's forward with grad recording off and wraps each tensor it
returns in a FUNCTION node whose sources are the computed value and the inputs that require
grad. The forward pass sees the value (the simplifier drops the node); backward() reaches the
node and calls the user's backward with the output's gradient, which records the gradient as
ordinary ops: nothing runs until a value is needed, as everywhere else.

A function with several outputs has its backward called once per output that receives a
gradient, the other outputs' gradients zero (or None, under `ctx.set_materialize_grads(False)`),
and the results summed: a backward is a vector-Jacobian product, linear in the gradients.
"""
from __future__ import annotations

import itertools
from typing import Any

from .. import autograd
from ..frontend.tensor import Tensor, _shape_str
from ..ir.graph import Node, NodeTable, new_node
from ..ir.ops import Op
from .rules import GRAD

# FUNCTION node -> its application: dropped with the node
_APPLIED: NodeTable = NodeTable()
_ids = itertools.count(1)


class FunctionCtx:
    """The `ctx` a Function's forward fills and its backward reads."""

    def __init__(self) -> None:
        self.needs_input_grad: tuple[bool, ...] = ()
        self.saved_tensors: tuple = ()
        self.materialize_grads = True
        self._non_differentiable: set[int] = set()
        self._dirty: set[int] = set()

    def save_for_backward(self, *tensors) -> None:
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError("save_for_backward can only save variables, but argument "
                                f"{tensors.index(t)} is of type {type(t).__name__}")
        self.saved_tensors = tuple(tensors)

    def save_for_forward(self, *tensors) -> None:
        self.saved_tensors = tuple(tensors)

    @property
    def saved_variables(self) -> tuple:
        return self.saved_tensors

    def mark_non_differentiable(self, *tensors) -> None:
        self._non_differentiable.update(id(t) for t in tensors)

    def mark_dirty(self, *tensors) -> None:
        self._dirty.update(id(t) for t in tensors)

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = bool(value)


class _Application:
    __slots__ = ("fn", "ctx", "n_out", "index", "inputs", "n_args", "shapes")

    def __init__(self, fn, ctx, n_out, index, inputs, n_args, shapes):
        self.fn, self.ctx, self.n_out, self.index = fn, ctx, n_out, index
        self.inputs = inputs        # the argument positions of the inputs that require grad
        self.n_args = n_args
        self.shapes = shapes        # the outputs' (shape, dtype, device)


class _FunctionMeta(type):
    def __init__(cls, name, bases, attrs):
        super().__init__(name, bases, attrs)
        cls._backward_name = f"{name}Backward"


class Function(metaclass=_FunctionMeta):
    """Subclass with static `forward(ctx, *args)` (or `forward(*args)` and
    `setup_context(ctx, inputs, output)`) and `backward(ctx, *grad_outputs)`; call `apply`."""

    @staticmethod
    def forward(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("You must implement the forward function for custom "
                                  "autograd.Function.")

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: Any) -> Any:
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Any) -> Any:
        raise NotImplementedError("You must implement either the backward or vjp method for "
                                  "your custom autograd.Function to use it with backward mode "
                                  "AD.")

    vjp = backward

    @staticmethod
    def jvp(ctx: Any, *grad_inputs: Any) -> Any:
        raise NotImplementedError("You must implement the jvp function for custom "
                                  "autograd.Function to use it with forward mode AD.")

    def __init__(self, *args, **kwargs) -> None:
        raise RuntimeError("Legacy autograd function with non-static forward method is "
                           "deprecated. Please use new-style autograd function with static "
                           "forward method.")

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        new_style = cls.setup_context is not Function.setup_context
        with autograd.no_grad():
            if new_style:
                outputs = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args, outputs)
            else:
                outputs = cls.forward(ctx, *args, **kwargs)
        if not (autograd.is_grad_enabled() and any(ctx.needs_input_grad)):
            return outputs
        single = not isinstance(outputs, tuple)
        outs = (outputs,) if single else outputs
        inputs = tuple(i for i, need in enumerate(ctx.needs_input_grad) if need)
        in_nodes = tuple(args[i].node for i in inputs)
        shapes = tuple((o.shape, o.dtype, o.device) if isinstance(o, Tensor) else None
                       for o in outs)
        wrapped = []
        for k, o in enumerate(outs):
            if not isinstance(o, Tensor) or not o.dtype.is_floating_point or \
                    id(o) in ctx._non_differentiable:
                wrapped.append(o)
                continue
            v = o.node
            node = new_node(Op.FUNCTION, (v, *in_nodes), next(_ids), v.shape, v.dtype)
            _APPLIED[node] = _Application(cls, ctx, len(outs), k, inputs, len(args), shapes)
            wrapped.append(Tensor._make(node))
        # a saved output is the differentiable one, as in PyTorch (a backward that uses it is
        # differentiable in turn)
        swap = {id(o): w for o, w in zip(outs, wrapped) if w is not o}
        ctx.saved_tensors = tuple(swap.get(id(t), t) for t in ctx.saved_tensors)
        return wrapped[0] if single else tuple(wrapped)


class InplaceFunction(Function):
    def __init__(self, inplace: bool = False) -> None:
        self.inplace = inplace


class NestedIOFunction(Function):
    pass


def once_differentiable(fn):
    """PyTorch's decorator for backwards that are not differentiable themselves: here a
    backward is recorded as graph, so it is differentiable anyway; the decorator is kept for
    compatibility."""
    return fn


def backward_name(n: Node) -> str:
    app = _APPLIED.get(n)
    return app.fn._backward_name if app is not None else "FunctionBackward"


def gradient(n: Node, g: Node) -> tuple:
    """GRAD[Op.FUNCTION]: the user's backward for the output that `n` wraps."""
    app = _APPLIED.get(n)
    if app is None:
        raise RuntimeError("a custom Function's node outlived its application")
    ctx = app.ctx
    grads: list = []
    for k, meta in enumerate(app.shapes):
        if k == app.index:
            grads.append(Tensor._make(g))
        elif meta is None or not ctx.materialize_grads:
            grads.append(None)
        else:
            from ..frontend.creation import zeros
            grads.append(zeros(*meta[0], dtype=meta[1], device=meta[2]))
    result = app.fn.backward(ctx, *grads)
    result = result if isinstance(result, tuple) else (result,)
    if len(result) != app.n_args:
        if len(result) > app.n_args and all(r is None for r in result[app.n_args:]):
            result = result[:app.n_args]
        else:
            raise RuntimeError(f"function {app.fn._backward_name} returned an incorrect number "
                               f"of gradients (expected {app.n_args}, got {len(result)})")
    out: list = [None]
    for pos, src in zip(app.inputs, n.srcs[1:]):
        r = result[pos]
        if r is None:
            out.append(None)
            continue
        if not isinstance(r, Tensor):
            raise TypeError(f"function {app.fn._backward_name} returned a gradient of type "
                            f"{type(r).__name__} at index {pos}, not a Tensor")
        if tuple(r.shape) != tuple(src.shape):
            try:
                r = r.expand(src.shape) if r.numel() != 1 or not src.shape else r
                if tuple(r.shape) != tuple(src.shape):
                    raise RuntimeError
            except RuntimeError:
                raise RuntimeError(f"Function {app.fn._backward_name} returned an invalid "
                                   f"gradient at index {pos} - got {_shape_str(r.shape)} but "
                                   f"expected shape compatible with "
                                   f"{_shape_str(src.shape)}") from None
        node = r.node
        if node.dtype is not src.dtype:
            node = new_node(Op.CAST, (node,), src.dtype, node.shape, src.dtype)
        out.append(node)
    return tuple(out)


GRAD[Op.FUNCTION] = gradient
