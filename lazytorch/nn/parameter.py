"""nn.Parameter: a Tensor that a Module registers as one of its parameters."""
from __future__ import annotations

from ..frontend.tensor import Tensor
from ..ir.graph import Node
from ..ir.ops import Op


def _own_node(t: Tensor) -> Node:
    """t's value as a node that no other tensor's gradient tracking can be confused with."""
    n = t.node
    return Node(Op.DETACH, (n,), None, n.shape, n.dtype)


class Parameter(Tensor):
    """A leaf tensor that is a module parameter: `requires_grad=True` by default, and assigning
    one as a Module attribute registers it in `parameters()` and `state_dict()`."""

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True):
        if data is None:
            from ..frontend.creation import empty
            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"_make_subclass(): argument 'data' (position 2) must be Tensor, not "
                            f"{type(data).__name__}")
        self._init(_own_node(data))
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __deepcopy__(self, memo: dict) -> Parameter:
        if id(self) in memo:
            return memo[id(self)]
        result = type(self)(self.detach(), self.requires_grad)
        memo[id(self)] = result
        return result

    def __reduce__(self):
        # pickles as a Parameter around its value (Tensor pickles as its numpy value)
        return (type(self), (self.detach(), self.requires_grad))

    # ------------------------------------------------------------------ .data
    @property
    def data(self) -> Tensor:
        """The parameter's value as a tensor outside autograd that shares its storage:
        in-place writes to it (and to its views) change the parameter, as in PyTorch."""
        return self.detach()

    @data.setter
    def data(self, value: Tensor) -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"Parameter.data must be a Tensor, not {type(value).__name__}")
        self._node = _own_node(value)
        self._base = None
        self._view_steps = ()
        self._version += 1
        if self.requires_grad:
            from .. import autograd
            autograd.register_leaf(self)


class Buffer(Tensor):
    """A tensor that a Module registers as one of its buffers when assigned as an attribute
    (persistent buffers are part of `state_dict()`)."""

    def __init__(self, data: Tensor | None = None, *, persistent: bool = True):
        if data is None:
            from ..frontend.creation import empty
            data = empty(0)
        if not isinstance(data, Tensor):
            raise TypeError(f"expected a Tensor, got {type(data).__name__}")
        self._init(data.detach().node)
        self.persistent = persistent


def is_lazy(param) -> bool:
    """PyTorch's lazy (uninitialized) parameters do not exist here."""
    return False
