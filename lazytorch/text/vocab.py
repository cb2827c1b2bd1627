"""A vocabulary: the tokens of a text numbered, as torchtext's Vocab and nanoGPT's stoi/itos."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from ..frontend.tensor import Tensor


class Vocab:
    """Tokens (characters or words) numbered in order: `stoi` maps a token to its index, `itos`
    lists the tokens by index. With an `unk` token, a token outside the vocabulary encodes as
    unk's index; without one it raises KeyError, as torchtext's Vocab without a default index."""

    def __init__(self, tokens: Iterable[str], unk: str | None = None) -> None:
        itos: list[str] = []
        if unk is not None:
            itos.append(unk)
        seen = set(itos)
        for t in tokens:
            if t not in seen:
                seen.add(t)
                itos.append(t)
        self.itos = itos
        self.stoi = {t: i for i, t in enumerate(itos)}
        self.unk = unk
        self.unk_index = None if unk is None else self.stoi[unk]

    @classmethod
    def build(cls, tokens: Iterable[str], min_freq: int = 1, max_size: int | None = None,
              unk: str | None = None) -> Vocab:
        """The tokens seen at least min_freq times, the most frequent first (ties in sorted
        order), at most max_size of them besides unk; a character vocabulary is
        Vocab.build(text)."""
        counts = Counter(tokens)
        kept = sorted((t for t, n in counts.items() if n >= min_freq and t != unk),
                      key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[:max_size]
        return cls(kept, unk=unk)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> int:
        i = self.stoi.get(token, self.unk_index)
        if i is None:
            raise KeyError(f"token {token!r} is not in the vocabulary and it has no unk token")
        return i

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """The index of each token (a string encodes character by character)."""
        return [self[t] for t in tokens]

    def decode(self, indices: Sequence[int] | Tensor, sep: str = "") -> str:
        """The tokens of indices (a list or a 1-d integer tensor) joined by sep."""
        if isinstance(indices, Tensor):
            if indices.ndim != 1:
                raise ValueError(f"decode expects a 1-d tensor of indices, got shape "
                                 f"{tuple(indices.shape)}")
            indices = indices.tolist()
        n = len(self.itos)
        out = []
        for i in indices:
            i = int(i)
            if not 0 <= i < n:
                raise IndexError(f"index {i} is out of range for a vocabulary of {n} tokens")
            out.append(self.itos[i])
        return sep.join(out)

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens, unk={self.unk!r})"
