"""Variable-length sequences: PackedSequence, packing and padding (torch.nn.utils.rnn).

Lengths and batch sizes are host data (PyTorch keeps them on the CPU for the same reason):
they decide shapes. Packing and unpacking are one row gather each, over indices computed
from the lengths, so their gradients are one scatter."""
from __future__ import annotations

from collections import namedtuple
from typing import Iterable

import numpy as np

from ...frontend.creation import full
from ...frontend.creation import tensor as _tensor
from ...frontend.joining import cat, stack
from ...frontend.tensor import Tensor
from ...ir import dtypes as dt

__all__ = ["PackedSequence", "invert_permutation", "pack_padded_sequence",
           "pad_packed_sequence", "pad_sequence", "unpad_sequence", "pack_sequence",
           "unpack_sequence"]


def _host_ints(values) -> np.ndarray:
    """Integer values given as a list or a tensor, read on the host."""
    if isinstance(values, Tensor):
        from ...utils.data.collate import host_array
        arr = host_array(values, any_op=True)
        return np.asarray(arr if arr is not None else values._array()).astype(np.int64)
    return np.asarray(list(values), dtype=np.int64)


def _index(arr: np.ndarray, device=None) -> Tensor:
    """`arr` as an int64 tensor on `device` (None: the CPU, where batch sizes and lengths
    live, as in PyTorch)."""
    return _tensor(np.ascontiguousarray(arr, dtype=np.int64), device=device or "cpu")


_PackedSequenceBase = namedtuple("PackedSequence_",
                                 ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])


class PackedSequence(_PackedSequenceBase):
    """A batch of variable-length sequences, time-major: data holds the rows of every
    sequence active at step 0, then at step 1, ...; batch_sizes[t] is how many (sequences
    sorted by decreasing length); sorted_indices / unsorted_indices map to and from the
    caller's batch order (None when the batch was already sorted)."""

    def __new__(cls, data, batch_sizes: Tensor | None = None,
                sorted_indices: Tensor | None = None,
                unsorted_indices: Tensor | None = None) -> PackedSequence:
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise AssertionError("Expected data to be a list or tuple of length 2")
            data, batch_sizes = data
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def _with_data(self, data: Tensor) -> PackedSequence:
        """These sequences holding `data`; the permutations follow it to its device (the batch
        sizes stay on the CPU, as in PyTorch)."""
        if data is self.data:
            return self
        where = data.device
        perms = [None if t is None else t.to(where)
                 for t in (self.sorted_indices, self.unsorted_indices)]
        return type(self)(data, self.batch_sizes, *perms)

    def to(self, *args, **kwargs) -> PackedSequence:
        """The same sequences with data converted as Tensor.to does."""
        return self._with_data(self.data.to(*args, **kwargs))

    def cpu(self, *args, **kwargs) -> PackedSequence:
        return self._with_data(self.data.cpu())

    def cuda(self, *args, **kwargs) -> PackedSequence:
        return self._with_data(self.data.cuda(*args, **kwargs))

    def pin_memory(self) -> PackedSequence:
        return self

    def double(self) -> PackedSequence:
        return self.to(dtype=dt.float64)

    def float(self) -> PackedSequence:
        return self.to(dtype=dt.float32)

    def half(self) -> PackedSequence:
        return self.to(dtype=dt.float16)

    def long(self) -> PackedSequence:
        return self.to(dtype=dt.int64)

    def int(self) -> PackedSequence:
        return self.to(dtype=dt.int32)

    def short(self) -> PackedSequence:
        return self.to(dtype=dt.int16)

    def char(self) -> PackedSequence:
        return self.to(dtype=dt.int8)

    def byte(self) -> PackedSequence:
        return self.to(dtype=dt.uint8)

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda

    def is_pinned(self) -> bool:
        return False


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The inverse of a permutation of 0..n-1 (None stays None)."""
    if permutation is None:
        return None
    return _index(np.argsort(_host_ints(permutation), kind="stable"), permutation.device)


def _batch_sizes(lengths: np.ndarray) -> np.ndarray:
    """How many of the (sorted) sequences are active at each time step."""
    return np.array([(lengths > t).sum() for t in range(int(lengths[0]))], dtype=np.int64)


def pack_padded_sequence(input: Tensor, lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch (T, B, *) (or (B, T, *) with batch_first) of sequences of the given
    lengths; unless enforce_sorted, the batch is sorted by decreasing length first."""
    lengths = _host_ints(lengths)
    batch_dim = 0 if batch_first else 1
    sorted_indices = None
    if enforce_sorted:
        if np.any(lengths[1:] > lengths[:-1]):
            raise RuntimeError("`lengths` array must be sorted in decreasing order when "
                               "`enforce_sorted` is True. You can pass `enforce_sorted=False` "
                               "to pack_padded_sequence and/or pack_sequence to sidestep this "
                               "requirement if you do not need ONNX exportability.")
    else:
        order = np.argsort(-lengths, kind="stable")
        lengths = lengths[order]
        sorted_indices = _index(order, input.device)
        input = input.index_select(batch_dim, sorted_indices)
    if batch_first:
        input = input.transpose(0, 1)
    T, B = input.shape[0], input.shape[1]
    if len(lengths) != B:
        raise RuntimeError(f"Expected `len(lengths)` to be equal to batch_size, but got "
                           f"{len(lengths)} (batch_size={B})")
    if lengths.size == 0 or lengths.min() <= 0:
        raise RuntimeError("Length of all samples has to be greater than 0, but found an "
                           "element in 'lengths' that is <= 0")
    if lengths.max() > T:
        raise RuntimeError(f"a sequence length ({int(lengths.max())}) is larger than the padded "
                           f"length {T}")
    batch_sizes = _batch_sizes(lengths)
    rows = np.concatenate([t * B + np.arange(b) for t, b in enumerate(batch_sizes)])
    flat = input.reshape((T * B,) + tuple(input.shape[2:]))
    data = flat.index_select(0, _index(rows, input.device))
    return PackedSequence(data, _index(batch_sizes), sorted_indices, None)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0, total_length: int | None = None):
    """Undo pack_padded_sequence: (padded batch, lengths), in the original batch order, padded
    with padding_value to the longest length (or total_length)."""
    batch_sizes = _host_ints(sequence.batch_sizes)
    T = len(batch_sizes)
    if total_length is not None:
        if total_length < T:
            raise ValueError("Expected total_length to be at least the length of the longest "
                             f"sequence in input, but got total_length={total_length} and max "
                             f"sequence length being {T}")
        T = total_length
    data = sequence.data
    B = int(batch_sizes[0])
    n = data.shape[0]
    offsets = np.concatenate([[0], np.cumsum(batch_sizes)])
    rows = np.full((T, B), n, dtype=np.int64)             # row n: the padding row
    for t, b in enumerate(batch_sizes):
        rows[t, :b] = offsets[t] + np.arange(b)
    if batch_first:
        rows = rows.T
    rest = tuple(data.shape[1:])
    pad_row = full((1,) + rest, padding_value, dtype=data.dtype, device=data.device)
    padded = cat([data, pad_row], 0).index_select(0, _index(rows.reshape(-1), data.device))
    padded = padded.reshape(rows.shape + rest)
    lengths = np.array([(batch_sizes > b).sum() for b in range(B)], dtype=np.int64)
    if sequence.unsorted_indices is not None:
        unsorted = _host_ints(sequence.unsorted_indices)
        padded = padded.index_select(0 if batch_first else 1, sequence.unsorted_indices)
        lengths = lengths[unsorted]
    return padded, _index(lengths)


def pad_sequence(sequences, batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack sequences of shapes (L_i, *) into (T, B, *) (or (B, T, *)), T the longest length,
    padding each on the right (or left) with padding_value."""
    if isinstance(sequences, Tensor):
        sequences = list(sequences.unbind(0))
    elif not isinstance(sequences, Iterable):
        raise RuntimeError("pad_sequence: Expected iterable for input sequences, but got arg "
                           f"of type: {type(sequences)}")
    seqs = list(sequences)
    if padding_side not in ("left", "right"):
        raise ValueError(f"Expected padding_side to be one of left or right, but got "
                         f"{padding_side}.")
    if not seqs:
        raise RuntimeError("received an empty list of sequences")
    rest = tuple(seqs[0].shape[1:])
    for s in seqs[1:]:
        for d, (a, b) in enumerate(zip(s.shape[1:], rest), 1):
            if a != b:
                raise RuntimeError(f"The size of tensor a ({b}) must match the size of tensor "
                                   f"b ({a}) at non-singleton dimension {d}")
    from ..functional import pad
    T = max(s.shape[0] for s in seqs)
    padded = []
    for s in seqs:
        extra = T - s.shape[0]
        side = [0, extra] if padding_side == "right" else [extra, 0]
        padded.append(pad(s, [0, 0] * len(rest) + side, value=padding_value) if extra else s)
    return stack(padded, 0 if batch_first else 1)


def unpad_sequence(padded_sequences: Tensor, lengths, batch_first: bool = False) -> list:
    """The sequences of a padded batch, each cut to its length."""
    if not batch_first:
        padded_sequences = padded_sequences.transpose(0, 1)
    return [seq[:int(n)] for seq, n in zip(padded_sequences.unbind(0), _host_ints(lengths))]


def pack_sequence(sequences: list, enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences of shapes (L_i, *)."""
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths,
                                enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list:
    """The list of sequences a PackedSequence holds, in the original batch order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
