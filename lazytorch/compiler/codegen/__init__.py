"""Code generation: the language-neutral C-style core (cstyle.py) and its dialects (c/: C99
with OpenMP and GCC's extensions, for the CPU)."""
