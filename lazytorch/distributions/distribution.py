"""torch.distributions.Distribution: the base class, with PyTorch's shapes and argument checks.

A distribution has a batch shape (independent distributions side by side) and an event shape
(the shape of one draw); `sample(sample_shape)` returns `sample_shape + batch_shape +
event_shape`. Parameters are lazy tensors like any other, so `log_prob` and `entropy` record
graph nodes that train with the rest of the step.

Checking parameter and sample values needs those values computed, so in lazytorch it is off
by default (PyTorch's default is on): a check at construction would realize the parameters on
their own, before the realize that uses them, and split a training step in two.
`Distribution.set_default_validate_args(True)` or `validate_args=True` turns the checks on,
with PyTorch's messages.
"""
from __future__ import annotations

from typing import Callable

from ..frontend.size import Size
from ..frontend.tensor import Tensor


class Distribution:
    """The base of every distribution: shapes, validation and the methods subclasses give."""

    has_rsample = False
    has_enumerate_support = False
    _validate_args = False
    # parameter name -> (constraint text for messages, check returning a bool Tensor)
    arg_constraints: dict[str, tuple[str, Callable[[Tensor], Tensor]]] = {}

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Whether distributions check their parameters and samples by default."""
        if value not in (True, False):
            raise ValueError
        Distribution._validate_args = value

    def __init__(self, batch_shape: Size | tuple = (), event_shape: Size | tuple = (),
                 validate_args: bool | None = None) -> None:
        self._batch_shape = Size(batch_shape)
        self._event_shape = Size(event_shape)
        if validate_args is not None:
            self._validate_args = validate_args
        if self._validate_args:
            for param, (text, check) in self.arg_constraints.items():
                if param not in self.__dict__:
                    continue            # a lazily derived parameter (probs from logits)
                value = getattr(self, param)
                valid = check(value)
                if not bool(valid.all()):
                    raise ValueError(
                        f"Expected parameter {param} (Tensor of shape {tuple(value.shape)}) "
                        f"of distribution {self!r} to satisfy the constraint {text}, but found "
                        f"invalid values:\n{value}")

    @property
    def batch_shape(self) -> Size:
        """The shape over which parameters are batched."""
        return self._batch_shape

    @property
    def event_shape(self) -> Size:
        """The shape of a single sample (without batching)."""
        return self._event_shape

    @property
    def mean(self) -> Tensor:
        raise NotImplementedError

    @property
    def mode(self) -> Tensor:
        raise NotImplementedError(f"{self.__class__} does not implement mode")

    @property
    def variance(self) -> Tensor:
        raise NotImplementedError

    @property
    def stddev(self) -> Tensor:
        return self.variance.sqrt()

    def sample(self, sample_shape: Size | tuple = ()) -> Tensor:
        """A draw (or a batch shaped sample_shape of draws) outside the autograd graph."""
        from ..autograd import no_grad
        with no_grad():
            return self.rsample(sample_shape)

    def rsample(self, sample_shape: Size | tuple = ()) -> Tensor:
        """A reparameterized draw: differentiable in the parameters."""
        raise NotImplementedError

    def sample_n(self, n: int) -> Tensor:
        return self.sample(Size((n,)))

    def log_prob(self, value: Tensor) -> Tensor:
        raise NotImplementedError

    def cdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError

    def icdf(self, value: Tensor) -> Tensor:
        raise NotImplementedError

    def entropy(self) -> Tensor:
        raise NotImplementedError

    def perplexity(self) -> Tensor:
        return self.entropy().exp()

    def enumerate_support(self, expand: bool = True) -> Tensor:
        raise NotImplementedError

    def _extended_shape(self, sample_shape: Size | tuple = ()) -> Size:
        """sample_shape + batch_shape + event_shape."""
        return Size(tuple(sample_shape) + tuple(self._batch_shape) + tuple(self._event_shape))

    def _validate_sample(self, value: Tensor, support: str,
                         check: Callable[[Tensor], Tensor]) -> None:
        """PyTorch's checks of a value passed to log_prob: a Tensor, of a shape that broadcasts
        with the distribution's, inside the support."""
        if not isinstance(value, Tensor):
            raise ValueError("The value argument to log_prob must be a Tensor")
        event_dim_start = len(value.shape) - len(self._event_shape)
        if tuple(value.shape[event_dim_start:]) != tuple(self._event_shape):
            raise ValueError(f"The right-most size of value must match event_shape: "
                             f"{tuple(value.shape)} vs {tuple(self._event_shape)}.")
        actual = value.shape
        expected = tuple(self._batch_shape) + tuple(self._event_shape)
        for i, j in zip(reversed(actual), reversed(expected)):
            if i != 1 and j != 1 and i != j:
                raise ValueError(f"Value is not broadcastable with batch_shape+event_shape: "
                                 f"{tuple(actual)} vs {expected}.")
        if not bool(check(value).all()):
            raise ValueError(f"Expected value argument (Tensor of shape {tuple(value.shape)}) to "
                             f"be within the support ({support}) of the distribution "
                             f"{self!r}, but found invalid values:\n{value}")

    def __repr__(self) -> str:
        shown = [(k, self.__dict__[k]) for k in self.arg_constraints if k in self.__dict__]
        args = ", ".join(f"{k}: {v.item() if v.numel() == 1 else v.size()}" for k, v in shown)
        return f"{type(self).__name__}({args})"
