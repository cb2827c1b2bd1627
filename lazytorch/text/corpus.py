"""Texts that ship with Python itself, to train language models on without a download."""
from __future__ import annotations

import ast
import os
import sysconfig

# Pure-Python modules of the standard library, present in every CPython install since 3.8
# (a module that is missing or unreadable is skipped; the text needs several of them).
STDLIB_MODULES = (
    "abc", "argparse", "ast", "base64", "bisect", "calendar", "codecs", "collections/__init__",
    "configparser", "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal",
    "difflib", "dis", "email/message", "enum", "fnmatch", "fractions", "ftplib", "functools",
    "getopt", "gettext", "glob", "gzip", "hashlib", "heapq", "hmac", "inspect",
    "json/__init__", "locale", "logging/__init__", "mailbox", "numbers", "operator", "optparse",
    "os", "pathlib", "pickle", "pprint", "queue", "random", "sched", "secrets", "selectors",
    "shlex", "shutil", "smtplib", "socket", "statistics", "string", "subprocess", "tarfile",
    "tempfile", "textwrap", "threading", "tokenize", "traceback", "typing",
    "unittest/case", "uuid", "warnings", "weakref", "zipfile",
)


_DEFS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
_BODIES = ("body", "orelse", "handlers", "finalbody")


def _docstrings(node: ast.AST, out: list[str]) -> None:
    """Append the docstrings of node and of the definitions in its statements, in source order
    (only statements are visited, never expressions, so this is quicker than ast.walk)."""
    if isinstance(node, _DEFS):
        doc = ast.get_docstring(node)
        if doc:
            out.append(doc)
    for field in _BODIES:
        for child in getattr(node, field, ()):
            _docstrings(child, out)


def stdlib_docstrings(min_chars: int = 100_000) -> str:
    """The documentation strings (module, class and function docstrings, in source order) of the
    pure-Python standard library modules in STDLIB_MODULES, joined by blank lines: a few hundred
    thousand characters of English prose about programming.

    The sources are found under sysconfig.get_paths()["stdlib"] (the directory that holds
    os.py) and parsed with ast, so nothing is imported and -OO does not strip them. Raises
    FileNotFoundError when fewer than min_chars characters are found (an install without the
    library's sources)."""
    root = sysconfig.get_paths()["stdlib"]
    docs = []
    for name in STDLIB_MODULES:
        path = os.path.join(root, *name.split("/")) + ".py"
        try:
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read())
        except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
            continue
        _docstrings(tree, docs)
    text = "\n\n".join(docs)
    if len(text) < min_chars:
        raise FileNotFoundError(f"the standard library's sources under {root} hold "
                                f"{len(text)} characters of docstrings, fewer than {min_chars}")
    return text
