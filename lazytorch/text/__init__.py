"""Text helpers for language-model examples: a token vocabulary and a corpus that ships with
Python (the standard library's docstrings), so nothing is downloaded."""
from .corpus import STDLIB_MODULES, stdlib_docstrings
from .vocab import Vocab

__all__ = ["STDLIB_MODULES", "Vocab", "stdlib_docstrings"]
