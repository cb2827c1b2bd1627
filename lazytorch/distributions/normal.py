"""torch.distributions.Normal: a Gaussian with mean `loc` and standard deviation `scale`.

`rsample` is loc + scale * eps with eps ~ N(0, 1) drawn from the default generator, so it is
differentiable in both parameters (the reparameterization trick); `sample` is the same draw
outside the autograd graph.
"""
from __future__ import annotations

import math
from numbers import Number

from ..autograd import no_grad
from ..frontend import creation
from ..frontend.size import Size
from ..frontend.structure import broadcast_tensors
from ..frontend.tensor import Tensor
from .distribution import Distribution


def broadcast_all(*values: Tensor | float) -> tuple[Tensor, ...]:
    """The values as tensors of one broadcast shape; numbers take the tensors' dtype (or the
    default dtype when all are numbers)."""
    if not all(isinstance(v, (Tensor, Number)) for v in values):
        raise ValueError("Input arguments must all be instances of numbers.Number, "
                         "torch.Tensor or objects implementing __torch_function__.")
    tensors = [v for v in values if isinstance(v, Tensor)]
    dtype = tensors[0].dtype if tensors else None
    return tuple(broadcast_tensors(*[
        v if isinstance(v, Tensor) else creation.tensor(float(v), dtype=dtype) for v in values]))


class Normal(Distribution):
    """Normal(loc, scale): independent Gaussians over the broadcast shape of loc and scale."""

    arg_constraints = {"loc": ("Real()", lambda x: x == x),
                       "scale": ("GreaterThan(lower_bound=0.0)", lambda x: x > 0)}
    has_rsample = True

    def __init__(self, loc: Tensor | float, scale: Tensor | float,
                 validate_args: bool | None = None) -> None:
        self.loc, self.scale = broadcast_all(loc, scale)
        if isinstance(loc, Number) and isinstance(scale, Number):
            batch_shape = Size()
        else:
            batch_shape = self.loc.size()
        super().__init__(batch_shape, validate_args=validate_args)

    @property
    def mean(self) -> Tensor:
        return self.loc

    @property
    def mode(self) -> Tensor:
        return self.loc

    @property
    def stddev(self) -> Tensor:
        return self.scale

    @property
    def variance(self) -> Tensor:
        return self.stddev.pow(2)

    def expand(self, batch_shape: Size | tuple, _instance=None) -> Normal:
        """The same distribution repeated over a larger batch shape."""
        new = Normal.__new__(Normal)
        new.loc = self.loc.expand(tuple(batch_shape))
        new.scale = self.scale.expand(tuple(batch_shape))
        Distribution.__init__(new, Size(batch_shape), validate_args=False)
        new._validate_args = self._validate_args
        return new

    def sample(self, sample_shape: Size | tuple = ()) -> Tensor:
        shape = tuple(self._extended_shape(sample_shape))
        with no_grad():
            return creation.normal(self.loc.expand(shape), self.scale.expand(shape))

    def rsample(self, sample_shape: Size | tuple = ()) -> Tensor:
        shape = tuple(self._extended_shape(sample_shape))
        eps = creation.randn(shape, dtype=self.loc.dtype)
        return self.loc + eps * self.scale

    def _check_value(self, value: Tensor) -> None:
        if self._validate_args:
            self._validate_sample(value, "Real()", lambda v: v == v)

    def log_prob(self, value: Tensor) -> Tensor:
        """The log density at value."""
        self._check_value(value)
        var = self.scale ** 2
        return (-((value - self.loc) ** 2) / (2 * var) - self.scale.log()
                - math.log(math.sqrt(2 * math.pi)))

    def cdf(self, value: Tensor) -> Tensor:
        """P(X <= value)."""
        self._check_value(value)
        from ..functional import erf
        return 0.5 * (1 + erf((value - self.loc) * self.scale.reciprocal() / math.sqrt(2)))

    def entropy(self) -> Tensor:
        return 0.5 + 0.5 * math.log(2 * math.pi) + self.scale.log()
