"""weight_norm and spectral_norm as parametrizations (torch.nn.utils.parametrizations): the
current API, with PyTorch's state-dict keys (parametrizations.weight.original0/1 for
weight_norm; parametrizations.weight.original and the _u, _v buffers for spectral_norm)."""
from __future__ import annotations

from ...autograd import no_grad
from ...frontend.tensor import Tensor
from ..functional_norm import _update_buffer, normalize
from ..module import Module
from . import parametrize
from .weight_norm import _weight_norm, norm_except_dim

__all__ = ["weight_norm", "spectral_norm"]


class _WeightNorm(Module):
    def __init__(self, dim: int | None = 0) -> None:
        super().__init__()
        self.dim = -1 if dim is None else dim

    def forward(self, weight_g: Tensor, weight_v: Tensor) -> Tensor:
        return _weight_norm(weight_v, weight_g, self.dim)

    def right_inverse(self, weight: Tensor):
        return norm_except_dim(weight, 2, self.dim), weight


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """module.`name` = g * v / ||v|| with g = original0 and v = original1 (the norm over every
    dim but `dim`; all dims with dim=None). State dicts of the old weight_norm (name_g,
    name_v) load too."""
    parametrize.register_parametrization(module, name, _WeightNorm(dim), unsafe=True)

    def compat(mod, state_dict, prefix, local_metadata, strict, missing_keys,
               unexpected_keys, error_msgs):
        g_key, v_key = f"{prefix}{name}_g", f"{prefix}{name}_v"
        if g_key in state_dict and v_key in state_dict:
            state_dict[f"{prefix}parametrizations.{name}.original0"] = state_dict.pop(g_key)
            state_dict[f"{prefix}parametrizations.{name}.original1"] = state_dict.pop(v_key)

    module.register_load_state_dict_pre_hook(compat)
    return module


class _SpectralNorm(Module):
    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0,
                 eps: float = 1e-12) -> None:
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [-{ndim}, "
                             f"{ndim - 1}] but got {dim})")
        if n_power_iterations <= 0:
            raise ValueError(f"Expected n_power_iterations to be positive, but got "
                             f"n_power_iterations={n_power_iterations}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        if ndim > 1:
            from ...frontend import creation
            self.n_power_iterations = n_power_iterations
            mat = self._reshape_weight_to_matrix(weight)
            h, w = mat.shape
            draw = creation.randn(h, dtype=weight.dtype, device=weight.device)
            self.register_buffer("_u", normalize(draw, dim=0, eps=eps))
            draw = creation.randn(w, dtype=weight.dtype, device=weight.device)
            self.register_buffer("_v", normalize(draw, dim=0, eps=eps))
            self._power_method(mat, 15)

    def _reshape_weight_to_matrix(self, weight: Tensor) -> Tensor:
        if self.dim != 0:
            weight = weight.permute(self.dim, *[d for d in range(weight.ndim) if d != self.dim])
        return weight.reshape(weight.shape[0], -1)

    def _power_method(self, mat: Tensor, n: int) -> None:
        with no_grad():
            m = mat.detach()
            u, v = self._u, self._v
            for _ in range(n):
                u = normalize(m @ v, dim=0, eps=self.eps)
                v = normalize(m.t() @ u, dim=0, eps=self.eps)
            _update_buffer(self._u, u)
            _update_buffer(self._v, v)

    def forward(self, weight: Tensor) -> Tensor:
        if weight.ndim == 1:
            return normalize(weight, dim=0, eps=self.eps)
        mat = self._reshape_weight_to_matrix(weight)
        if self.training:
            self._power_method(mat, self.n_power_iterations)
        sigma = self._u.detach().dot(mat @ self._v.detach())
        return weight / sigma

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1,
                  eps: float = 1e-12, dim: int | None = None) -> Module:
    """module.`name` divided by its largest singular value, estimated by power iteration on
    the buffers _u and _v (advanced at each access in training mode)."""
    weight = getattr(module, name, None)
    if not isinstance(weight, Tensor):
        raise ValueError(f"Module '{module}' has no parameter or buffer with name '{name}'")
    if dim is None:
        from ..conv import ConvTranspose1d, ConvTranspose2d
        dim = 1 if isinstance(module, (ConvTranspose1d, ConvTranspose2d)) else 0
    parametrize.register_parametrization(module, name,
                                         _SpectralNorm(weight, n_power_iterations, dim, eps))
    return module
