"""The C dialect: CRenderer, with the CPU's kernel strategies."""
from .renderer import CRenderer

__all__ = ["CRenderer"]
