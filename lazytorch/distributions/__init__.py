"""torch.distributions: Categorical and Normal with PyTorch's shapes, sampling, log_prob,
entropy and kl_divergence; what policy-gradient and variational code reaches for first."""
from .categorical import Categorical
from .distribution import Distribution
from .kl import kl_divergence, register_kl
from .normal import Normal
from . import utils

__all__ = ["Categorical", "Distribution", "Normal", "kl_divergence", "register_kl", "utils"]
