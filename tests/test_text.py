"""lazytorch.text: Vocab against a numbering written out here with Counter, and the standard
library's docstrings against the modules' own __doc__ attributes."""
from __future__ import annotations

import importlib
import inspect
import sysconfig
from collections import Counter

import pytest

import lazytorch as torch
from lazytorch.text import STDLIB_MODULES, Vocab, stdlib_docstrings

TEXT = "the cat sat on the mat; the dog sat on the log"


def test_build_numbers_tokens_by_frequency_then_order():
    counts = Counter(TEXT)
    expected = sorted(counts, key=lambda c: (-counts[c], c))
    v = Vocab.build(TEXT)
    assert v.itos == expected
    assert v.stoi == {c: i for i, c in enumerate(expected)}
    assert len(v) == len(set(TEXT))
    assert v.itos[0] == " "   # the most frequent character


def test_encode_decode_round_trip_and_tensor_decode():
    v = Vocab.build(TEXT)
    ids = v.encode(TEXT)
    assert ids == [v.stoi[c] for c in TEXT]
    assert v.decode(ids) == TEXT
    assert v.decode(torch.tensor(ids, dtype=torch.long)) == TEXT
    with pytest.raises(ValueError, match="1-d"):
        v.decode(torch.tensor([ids]))
    with pytest.raises(IndexError, match="out of range"):
        v.decode([len(v)])


def test_words_min_freq_max_size_and_unk():
    words = TEXT.replace(";", "").split()
    counts = Counter(words)
    v = Vocab.build(words, min_freq=2, unk="<unk>")
    kept = sorted((w for w, n in counts.items() if n >= 2), key=lambda w: (-counts[w], w))
    assert v.itos == ["<unk>"] + kept
    assert v.unk_index == 0 and "cat" not in v and "the" in v
    assert v.encode(["the", "cat"]) == [v.stoi["the"], 0]
    assert v.decode(v.encode(["sat", "zebra"]), sep=" ") == "sat <unk>"
    assert Vocab.build(words, max_size=2).itos == kept[:2]


def test_unknown_token_without_unk_raises():
    v = Vocab("ab")
    assert v.itos == ["a", "b"] and v.unk_index is None
    with pytest.raises(KeyError, match="'c'"):
        v.encode("abc")


def test_stdlib_docstrings_hold_the_modules_own_docs():
    text = stdlib_docstrings()
    assert len(text) > 100_000
    found, missing = 0, []
    for name in STDLIB_MODULES:
        mod = importlib.import_module(name.replace("/__init__", "").replace("/", "."))
        if mod.__doc__:
            found += 1
            if inspect.cleandoc(mod.__doc__) not in text:
                missing.append(name)
    # a module backed by a C accelerator may take the C module's __doc__ at import time
    # (on 3.11: csv, datetime, decimal, hashlib, operator): the others must all be there
    assert found > 40 and len(missing) <= 8, missing
    # functions' and classes' docstrings too, in source order
    dedent = inspect.cleandoc(importlib.import_module("textwrap").dedent.__doc__)
    wrapper = inspect.cleandoc(importlib.import_module("textwrap").TextWrapper.__doc__)
    assert text.index(wrapper) < text.index(dedent)
    assert stdlib_docstrings() == text   # the same text each time


def test_stdlib_docstrings_missing_sources_raise(monkeypatch, tmp_path):
    monkeypatch.setattr(sysconfig, "get_paths", lambda: {"stdlib": str(tmp_path)})
    with pytest.raises(FileNotFoundError, match="fewer than"):
        stdlib_docstrings()
