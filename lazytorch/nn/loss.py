"""Losses: the functional forms (re-exported by nn.functional) and their Module classes.

Every loss takes reduction='none' | 'mean' | 'sum' (and the legacy size_average/reduce).
Class-index losses pick each target's log-probability with a comparison mask against
arange(C), which fuses into the reduction: no gather, no one-hot tensor in memory.
"""
from __future__ import annotations

import warnings

from ..frontend import elementwise as ew
from ..frontend.tensor import Tensor
from ..ir import dtypes as dt
from ..ir.sites import record
from .loss_nodes import iota, log_softmax_node, nll_node
from .module import Module

_where = ew.where_nodes


# ------------------------------------------------------------------------------- reduction
def legacy_get_string(size_average: bool | None, reduce: bool | None,
                      emit_warning: bool = True) -> str:
    """The reduction string that the deprecated size_average/reduce arguments mean."""
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    ret = "mean" if size_average and reduce else "sum" if reduce else "none"
    if emit_warning:
        warnings.warn(f"size_average and reduce args will be deprecated, please use "
                      f"reduction='{ret}' instead.", stacklevel=3)
    return ret


def _reduction(size_average, reduce, reduction: str) -> str:
    if size_average is not None or reduce is not None:
        reduction = legacy_get_string(size_average, reduce)
    if reduction == "elementwise_mean":
        warnings.warn("reduction='elementwise_mean' is deprecated. Please use reduction='mean' "
                      "instead.", stacklevel=3)
        reduction = "mean"
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    return loss.mean() if reduction == "mean" else loss.sum()


def _warn_size(input: Tensor, target: Tensor) -> None:
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"Using a target size ({target.shape}) that is different to the input size "
                      f"({input.shape}). This will likely lead to incorrect results due to "
                      "broadcasting. Please ensure they have the same size.", stacklevel=3)


def _weighted(loss: Tensor, input: Tensor, weight: Tensor | None, reduction: str,
              mean_by_weight: bool = True) -> Tensor:
    if weight is None:
        return _reduce(loss, reduction)
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError("Weights and input must have the same size.")
    loss = loss * weight
    if reduction == "mean" and mean_by_weight:
        return loss.sum() / weight.sum()
    return _reduce(loss, reduction)


def _with_gradient(value: Tensor, pairs: list[tuple[Tensor, Tensor]]) -> Tensor:
    """value, whose gradient with respect to each x is the given local gradient (elementwise):
    value.detach() + sum(x * g - (x * g).detach()), with g detached."""
    out = value
    for x, g in pairs:
        if x.requires_grad:
            s = x * g.detach()
            out = out + (s - s.detach())
    return out


# ------------------------------------------------------------------------------- regression
def mse_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
             reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """(input - target)^2."""
    _warn_size(input, target)
    reduction = _reduction(size_average, reduce, reduction)
    d = input - target
    return _weighted(d * d, input, weight, reduction)


def l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
            reduction: str = "mean", weight: Tensor | None = None) -> Tensor:
    """|input - target|."""
    _warn_size(input, target)
    reduction = _reduction(size_average, reduce, reduction)
    return _weighted((input - target).abs(), input, weight, reduction)


def smooth_l1_loss(input: Tensor, target: Tensor, size_average=None, reduce=None,
                   reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (d = input - target)."""
    _warn_size(input, target)
    reduction = _reduction(size_average, reduce, reduction)
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    d = input - target
    ad = d.abs()
    if beta == 0.0:
        return _reduce(ad, reduction)
    return _reduce(_where(ad < beta, d * d * (0.5 / beta), ad - 0.5 * beta), reduction)


def huber_loss(input: Tensor, target: Tensor, reduction: str = "mean", delta: float = 1.0,
               weight: Tensor | None = None) -> Tensor:
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta) (d = input - target)."""
    _warn_size(input, target)
    reduction = _reduction(None, None, reduction)
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    d = input - target
    ad = d.abs()
    loss = _where(ad < delta, d * d * 0.5, (ad - 0.5 * delta) * delta)
    return _weighted(loss, input, weight, reduction, mean_by_weight=False)


# ------------------------------------------------------------------------------- binary
def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                         size_average=None, reduce=None, reduction: str = "mean") -> Tensor:
    """-(t log(x) + (1 - t) log(1 - x)) * weight, each log clamped at -100 as PyTorch; the
    gradient is PyTorch's: weight (x - t) / max(x (1 - x), 1e-12)."""
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Using a target size ({target.shape}) that is different to the input "
                         f"size ({input.shape}) is deprecated. Please ensure they have the same "
                         "size.")
    x, t = input.detach(), target.detach()
    log_x = x.log().clamp(min=-100.0)
    log_1mx = (1.0 - x).log().clamp(min=-100.0)
    loss = -(t * log_x + (1.0 - t) * log_1mx)
    w = None if weight is None else weight.expand(tuple(target.shape))
    gx = (x - t) / (x * (1.0 - x)).clamp(min=1e-12)
    gt = log_1mx - log_x
    if w is not None:
        loss = loss * w
        gx, gt = gx * w.detach(), gt * w.detach()
    loss = _with_gradient(loss, [(input, gx), (target, gt)])
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None, size_average=None,
                                     reduce=None, reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """BCE of sigmoid(input), computed stably: (1 - t) x + (1 + (pw - 1) t) softplus(-x)."""
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({target.shape}) must be the same as input size "
                         f"({input.shape})")
    x = input
    neg_abs = _where(x < 0, x, -x)            # -|x|, gradient -1 at 0 (the x >= 0 side)
    softplus_neg = _where(x < 0, -x, 0.0) + neg_abs.exp().log1p()
    if pos_weight is not None:
        loss = (1.0 - target) * x + (1.0 + (pos_weight - 1.0) * target) * softplus_neg
    else:
        loss = (1.0 - target) * x + softplus_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


# ------------------------------------------------------------------------------- distributions
def kl_div(input: Tensor, target: Tensor, size_average=None, reduce=None,
           reduction: str = "mean", log_target: bool = False) -> Tensor:
    """target * (log(target) - input) pointwise (input holds log-probabilities);
    reduction 'batchmean' divides the sum by the batch size."""
    if size_average is not None or reduce is not None:
        reduction = legacy_get_string(size_average, reduce)
    elif reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the "
                      "support size.'batchmean' divides only by the batch size, and aligns with "
                      "the KL div math definition.'mean' will be changed to behave the same as "
                      "'batchmean' in the next major release.", stacklevel=2)
    if reduction not in ("none", "mean", "sum", "batchmean"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    if log_target:
        loss = target.exp() * (target - input)
    else:
        safe = _where(target == 0, 1.0, target)
        loss = target * safe.log() - target * input
    if reduction == "batchmean":
        total = loss.sum()
        return total / input.shape[0] if input.ndim else total
    return _reduce(loss, reduction)


# ------------------------------------------------------------------------------- classification
def _class_shape(x: Tensor, c: int) -> tuple[int, ...]:
    return (c,) + (1,) * (x.ndim - 2)


def _check_target(input: Tensor, target: Tensor) -> None:
    if target.dtype not in (dt.int64, dt.uint8):
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got "
                           f"{dt.scalar_type_name(target.dtype)}")
    if input.ndim < 1:
        raise ValueError(f"Expected 1 or more dimensions (got {input.ndim})")
    if input.ndim == 1:
        if target.ndim > 1 or (target.ndim == 1 and target.shape[0] != 1):
            raise ValueError(f"For 1D input, 1D target must have size 1, but got target size: "
                             f"{target.shape[0]}")
        return
    if target.ndim == 0 or input.shape[0] != target.shape[0]:
        raise ValueError(f"Expected input batch_size ({input.shape[0]}) to match target "
                         f"batch_size ({target.shape[0] if target.ndim else 0}).")
    if input.ndim == 2 and target.ndim != 1:
        raise RuntimeError("1D target tensor expected, multi-target not supported")
    if input.ndim > 2 and tuple(target.shape[1:]) != tuple(input.shape[2:]):
        expected = [input.shape[0]] + list(input.shape[2:])
        raise RuntimeError(f"Expected target size {expected}, got {list(target.shape)}")


def _check_weight(weight: Tensor | None, c: int, who: str = "") -> None:
    if weight is not None and (weight.ndim != 1 or weight.numel() != c):
        raise RuntimeError(f"{who}weight tensor should be defined either for all {c} classes or "
                           f"no classes but got weight tensor of shape: {list(weight.shape)}")


def _check_bounds(target: Tensor, c: int, ignore_index: int) -> None:
    from .functional import _host_values
    vals = _host_values(target)
    if vals is None or vals.size == 0:
        return
    bad = vals[(vals != ignore_index) & ((vals < 0) | (vals >= c))]
    if bad.size:
        raise IndexError(f"Target {int(bad.flat[0])} is out of bounds.")


def _pick(logp: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int):
    """(-weight[t] * logp[t], weight[t]) per sample: logp is (N, C, d...), target (N, d...);
    ignored samples give 0 and 0."""
    c = logp.shape[1]
    shape = _class_shape(logp, c)
    valid = target != ignore_index
    classes = Tensor._make(iota(c, logp._node.device)).reshape(shape)
    mask = (target.unsqueeze(1) == classes) & valid.unsqueeze(1)
    picked = _where(mask, logp, 0.0).sum(1)
    if weight is None:
        return -picked, valid.to(logp.dtype)
    w = _where(mask, weight.to(logp.dtype).reshape(shape), 0.0).sum(1)
    return -(picked * w), w


def _as_batched(input: Tensor, target: Tensor) -> tuple[Tensor, Tensor, bool]:
    if input.ndim == 1:
        return input.unsqueeze(0), target.reshape(1), True
    return input, target, False


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, size_average=None,
             ignore_index: int = -100, reduce=None, reduction: str = "mean") -> Tensor:
    """-weight[t] * input[n, t] for each sample's target class t (input holds log-probs);
    'mean' divides by the total weight of the non-ignored samples."""
    reduction = _reduction(size_average, reduce, reduction)
    _check_target(input, target)
    c = input.shape[1] if input.ndim >= 2 else input.shape[0]
    _check_weight(weight, c)
    _check_bounds(target, c, ignore_index)
    return _nll(input, target, weight, ignore_index, reduction)


def _nll(input: Tensor, target: Tensor, weight: Tensor | None, ignore_index: int,
         reduction: str) -> Tensor:
    """nll_loss once its arguments are checked (cross_entropy checked the same things)."""
    x, t, single = _as_batched(input, target)
    loss, w = _pick(x, t, weight, ignore_index)
    if reduction == "none":
        return loss.reshape(()) if single else loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / w.sum()


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None,
                  size_average=None, ignore_index: int = -100, reduce=None,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """log_softmax over the class dim (1, or 0 for 1-D input) then nll_loss, for class-index
    targets; -sum(target * log_softmax) for class-probability targets (same shape as input).
    label_smoothing mixes in the uniform distribution."""
    from .functional import log_softmax
    reduction = _reduction(size_average, reduce, reduction)
    class_dim = 0 if input.ndim == 1 else 1
    c = input.shape[class_dim]
    if tuple(input.shape) == tuple(target.shape):
        if not target.is_floating_point():
            raise RuntimeError(f"Expected floating point type for target with class "
                               f"probabilities, got {dt.scalar_type_name(target.dtype)}")
        if ignore_index >= 0:
            raise RuntimeError("ignore_index is not supported for floating point target")
        _check_weight(weight, c, "cross_entropy: ")
        if not 0.0 <= label_smoothing <= 1.0:
            raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: "
                               f"{label_smoothing}")
        logp = log_softmax(input, class_dim)
        if label_smoothing > 0:
            target = target * (1.0 - label_smoothing) + label_smoothing / c
        terms = logp * target
        if weight is not None:
            terms = terms * weight.reshape((c,) + (1,) * (input.ndim - class_dim - 1))
        if reduction == "none":
            return -terms.sum(class_dim)
        if reduction == "sum":
            return -terms.sum()
        return -terms.sum() / (input.numel() // c if c else 0)
    if label_smoothing > 0 and label_smoothing > 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    _check_target(input, target)
    _check_weight(weight, c)
    _check_bounds(target, c, ignore_index)
    if weight is None and label_smoothing <= 0 and class_dim == 1 and target.dtype is dt.int64 \
            and input.is_floating_point() and input.numel():
        # the nodes of the general path below, recorded as one op
        node = nll_node(log_softmax_node(input.node, 1), target.node, ignore_index, reduction)
        record(node)
        return Tensor._make(node)
    logp = log_softmax(input, class_dim)
    nll = _nll(logp, target, weight, ignore_index, reduction)
    if label_smoothing <= 0:
        return nll
    x, t, single = _as_batched(logp, target)
    valid = (t != ignore_index).to(x.dtype)
    if weight is None:
        smooth = -x.sum(1)
    else:
        smooth = -(x * weight.to(x.dtype).reshape(_class_shape(x, c))).sum(1)
    smooth = smooth * valid
    if reduction == "none":
        ret = smooth.reshape(()) if single else smooth
    elif reduction == "sum":
        ret = smooth.sum()
    else:
        ret = smooth.sum() / _pick(x, t, weight, ignore_index)[1].sum()
    return nll * (1.0 - label_smoothing) + ret * (label_smoothing / c)


# ------------------------------------------------------------------------------- modules
class _Loss(Module):
    reduction: str

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__()
        if size_average is not None or reduce is not None:
            self.reduction = legacy_get_string(size_average, reduce)
        else:
            self.reduction = reduction


class _WeightedLoss(_Loss):
    def __init__(self, weight: Tensor | None = None, size_average=None, reduce=None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class L1Loss(_Loss):
    """Mean (or sum) absolute error."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return l1_loss(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean (or sum) squared error."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return mse_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """Squared error below beta, absolute error above."""

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean",
                 beta: float = 1.0) -> None:
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """Squared error below delta, delta-scaled absolute error above."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class NLLLoss(_WeightedLoss):
    """Negative log likelihood of class indices, given log-probabilities."""

    def __init__(self, weight: Tensor | None = None, size_average=None, ignore_index: int = -100,
                 reduce=None, reduction: str = "mean") -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                        reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """log_softmax + nll_loss (class indices) or soft-target cross entropy (probabilities)."""

    def __init__(self, weight: Tensor | None = None, size_average=None, ignore_index: int = -100,
                 reduce=None, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                             reduction=self.reduction, label_smoothing=self.label_smoothing)


class BCELoss(_WeightedLoss):
    """Binary cross entropy of probabilities."""

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross entropy of sigmoid(logits), computed stably."""

    def __init__(self, weight: Tensor | None = None, size_average=None, reduce=None,
                 reduction: str = "mean", pos_weight: Tensor | None = None) -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return binary_cross_entropy_with_logits(input, target, self.weight,
                                                pos_weight=self.pos_weight,
                                                reduction=self.reduction)


class KLDivLoss(_Loss):
    """Kullback-Leibler divergence; input holds log-probabilities."""

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean",
                 log_target: bool = False) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return kl_div(input, target, reduction=self.reduction, log_target=self.log_target)
