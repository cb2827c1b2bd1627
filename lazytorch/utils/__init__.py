"""torch.utils: data loading (`lazytorch.utils.data`)."""
from . import data

__all__ = ["data"]
