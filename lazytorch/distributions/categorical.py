"""torch.distributions.Categorical: K categories with probabilities along the last dim.

Given `probs` (normalized to sum to one) or `logits` (normalized by logsumexp), the other is
derived when first read. `sample` draws with torch.multinomial, so it computes the
probabilities then (a realize); `log_prob` and `entropy` are graph ops with gradients.
"""
from __future__ import annotations

from functools import cached_property

from ..frontend import creation
from ..frontend.creation import from_array
from ..frontend.sampling import multinomial
from ..frontend.size import Size
from ..frontend.structure import broadcast_tensors
from ..frontend.tensor import Tensor, device_name
from ..ir import dtypes as dt
from .distribution import Distribution
from .utils import logits_to_probs, probs_to_logits


def _simplex(p: Tensor) -> Tensor:
    return (p >= 0).all(-1) & ((p.sum(-1) - 1).abs() < 1e-6)


def _real_vector(x: Tensor) -> Tensor:
    return (x == x).all(-1)


class Categorical(Distribution):
    """A categorical distribution over {0, ..., K-1}, parameterized by probs or logits."""

    arg_constraints = {"probs": ("Simplex()", _simplex),
                       "logits": ("IndependentConstraint(Real(), 1)", _real_vector)}
    has_enumerate_support = True

    def __init__(self, probs: Tensor | None = None, logits: Tensor | None = None,
                 validate_args: bool | None = None) -> None:
        if (probs is None) == (logits is None):
            raise ValueError("Either `probs` or `logits` must be specified, but not both.")
        if probs is not None:
            if probs.dim() < 1:
                raise ValueError("`probs` parameter must be at least one-dimensional.")
            self.probs = probs / probs.sum(-1, keepdim=True)
        else:
            if logits.dim() < 1:
                raise ValueError("`logits` parameter must be at least one-dimensional.")
            self.logits = logits - logits.logsumexp(dim=-1, keepdim=True)
        self._param = self.probs if probs is not None else self.logits
        self._num_events = self._param.size()[-1]
        batch_shape = self._param.size()[:-1] if self._param.ndimension() > 1 else Size()
        super().__init__(batch_shape, validate_args=validate_args)

    @cached_property
    def logits(self) -> Tensor:
        """Normalized log-probabilities (log p, clamped at float's smallest normal for p=0)."""
        return probs_to_logits(self.probs)

    @cached_property
    def probs(self) -> Tensor:
        """Normalized probabilities (softmax of the logits)."""
        return logits_to_probs(self.logits)

    @property
    def param_shape(self) -> Size:
        return self._param.size()

    @property
    def mean(self) -> Tensor:
        return creation.full(self._extended_shape(), float("nan"), dtype=self.probs.dtype)

    @property
    def variance(self) -> Tensor:
        return creation.full(self._extended_shape(), float("nan"), dtype=self.probs.dtype)

    @property
    def mode(self) -> Tensor:
        return self.probs.argmax(dim=-1)

    def sample(self, sample_shape: Size | tuple = ()) -> Tensor:
        """Category indices (int64) shaped sample_shape + batch_shape."""
        sample_shape = Size(sample_shape)
        probs_2d = self.probs.reshape(-1, self._num_events)
        samples_2d = multinomial(probs_2d, sample_shape.numel(), True)
        # the draws are host data already: arranged here, an .item() on them costs no realize
        out = samples_2d._array().T.reshape(tuple(self._extended_shape(sample_shape)))
        return from_array(out.copy(), dt.int64, device_name(self._param))

    def log_prob(self, value: Tensor) -> Tensor:
        """log p(value), broadcasting value against the batch shape."""
        if self._validate_args:
            hi = self._num_events - 1
            self._validate_sample(
                value, f"IntegerInterval(lower_bound=0, upper_bound={hi})",
                lambda v: (v % 1 == 0) & (v >= 0) & (v <= hi))
        value = value.long().unsqueeze(-1)
        value, log_pmf = broadcast_tensors(value, self.logits)
        value = value[..., :1]
        return log_pmf.gather(-1, value).squeeze(-1)

    def entropy(self) -> Tensor:
        """-sum p log p over the categories."""
        min_real = dt.finfo(self.logits.dtype).min
        logits = self.logits.clamp(min=min_real)
        return -(logits * self.probs).sum(-1)

    def enumerate_support(self, expand: bool = True) -> Tensor:
        """Every category, shaped (K,) + (1,) * len(batch_shape) (expanded to the batch)."""
        values = creation.arange(self._num_events, dtype=dt.int64)
        values = values.view((-1,) + (1,) * len(self._batch_shape))
        if expand:
            values = values.expand((-1,) + tuple(self._batch_shape))
        return values

    def expand(self, batch_shape: Size | tuple, _instance=None) -> Categorical:
        """The same distribution repeated over a larger batch shape."""
        new = Categorical.__new__(Categorical)
        param_shape = tuple(batch_shape) + (self._num_events,)
        if "probs" in self.__dict__:
            new.probs = self.probs.expand(param_shape)
            new._param = new.probs
        if "logits" in self.__dict__:
            new.logits = self.logits.expand(param_shape)
            new._param = new.logits
        new._num_events = self._num_events
        Distribution.__init__(new, Size(batch_shape), validate_args=False)
        new._validate_args = self._validate_args
        return new

