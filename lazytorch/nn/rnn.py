"""Recurrent layers: RNN, LSTM, GRU (multi-layer, bidirectional, batch_first)."""
from __future__ import annotations

import math
import warnings

from ..frontend import creation
from ..frontend.tensor import Tensor
from .module import Module
from .parameter import Parameter

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def cell_step(mode: str, hidden_size: int, x_proj: Tensor, h: Tensor, c, w_hh: Tensor, b_hh,
              w_hr=None):
    """One step of a recurrent cell given its input projection x W_ih^T + b_ih: (h', c'),
    c' None but for LSTM (PyTorch's gate orders: LSTM i, f, g, o; GRU r, z, n)."""
    hh = h @ w_hh.t()
    if b_hh is not None:
        hh = hh + b_hh
    H = hidden_size
    if mode == "RNN_TANH":
        return (x_proj + hh).tanh(), None
    if mode == "RNN_RELU":
        return (x_proj + hh).relu(), None
    if mode == "LSTM":
        gates = x_proj + hh
        i, f, g, o = (gates[..., k * H:(k + 1) * H] for k in range(4))
        c2 = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h2 = o.sigmoid() * c2.tanh()
        return (h2 if w_hr is None else h2 @ w_hr.t()), c2
    # GRU: r, z, n
    r = (x_proj[..., :H] + hh[..., :H]).sigmoid()
    z = (x_proj[..., H:2 * H] + hh[..., H:2 * H]).sigmoid()
    n = (x_proj[..., 2 * H:] + r * hh[..., 2 * H:]).tanh()
    return (1 - z) * n + z * h, None


class RNNBase(Module):
    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None):
        super().__init__()
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or \
                not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                          "non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=3)
        if not isinstance(hidden_size, int) or isinstance(hidden_size, bool):
            raise TypeError(f"hidden_size should be of type int, got: "
                            f"{type(hidden_size).__name__}")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable "
                             "projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        self.proj_size = proj_size
        g = _GATES[mode] * hidden_size
        dirs = 2 if bidirectional else 1
        real_hidden = proj_size or hidden_size
        self._flat_weights_names = []
        for layer in range(num_layers):
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                in_sz = input_size if layer == 0 else real_hidden * dirs
                names = [f"weight_ih{sfx}", f"weight_hh{sfx}"]
                shapes = [(g, in_sz), (g, real_hidden)]
                if bias:
                    names += [f"bias_ih{sfx}", f"bias_hh{sfx}"]
                    shapes += [(g,), (g,)]
                if proj_size:
                    names.append(f"weight_hr{sfx}")
                    shapes.append((proj_size, hidden_size))
                for n, s in zip(names, shapes):
                    setattr(self, n, Parameter(creation.empty(s, dtype=dtype)))
                self._flat_weights_names += names
        self.reset_parameters()

    def reset_parameters(self) -> None:
        from . import init
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def flatten_parameters(self) -> None:
        """Accepted for PyTorch compatibility (cuDNN weight packing): nothing to do."""

    @property
    def _flat_weights(self) -> list:
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list]:
        """The parameters grouped per layer and direction, as PyTorch lists them."""
        per = len(self._flat_weights_names) // (self.num_layers *
                                                (2 if self.bidirectional else 1))
        w = self._flat_weights
        return [w[i:i + per] for i in range(0, len(w), per)]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    def _layer_weights(self, layer: int, d: int) -> tuple:
        """(w_ih, w_hh, b_ih, b_hh, w_hr) of one layer and direction (None where absent)."""
        sfx = f"_l{layer}" + ("_reverse" if d else "")
        return (getattr(self, f"weight_ih{sfx}"), getattr(self, f"weight_hh{sfx}"),
                getattr(self, f"bias_ih{sfx}") if self.bias else None,
                getattr(self, f"bias_hh{sfx}") if self.bias else None,
                getattr(self, f"weight_hr{sfx}") if self.proj_size else None)

    def forward(self, input: Tensor, hx=None):
        from .utils.rnn import PackedSequence
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        from ..frontend.joining import stack
        is_lstm = self.mode == "LSTM"
        unbatched = input.ndim == 2
        if input.ndim not in (2, 3):
            raise ValueError(f"{type(self).__name__}: Expected input to be 2D or 3D, got "
                             f"{input.ndim}D instead")
        x = input.unsqueeze(1) if unbatched else (input.transpose(0, 1) if self.batch_first
                                                 else input)
        if x.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {x.shape[-1]}")
        L, N = x.shape[0], x.shape[1]
        dirs = 2 if self.bidirectional else 1
        H, R = self.hidden_size, self.proj_size or self.hidden_size
        if hx is None:
            h0 = creation.zeros(self.num_layers * dirs, N, R, dtype=x.dtype, device=x.device)
            c0 = creation.zeros(self.num_layers * dirs, N, H, dtype=x.dtype,
                                device=x.device) if is_lstm else None
        else:
            h0, c0 = self._check_hx(hx, unbatched, (self.num_layers * dirs, N))
        h_n, c_n = [], []
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                w_ih, w_hh, b_ih, b_hh, w_hr = self._layer_weights(layer, d)
                proj = layer_in @ w_ih.t()
                if b_ih is not None:
                    proj = proj + b_ih
                h = h0[layer * dirs + d]
                c = c0[layer * dirs + d] if is_lstm else None
                steps = range(L - 1, -1, -1) if d else range(L)
                seq = [None] * L
                for t in steps:
                    h, c = cell_step(self.mode, H, proj[t], h, c, w_hh, b_hh, w_hr)
                    seq[t] = h
                outs.append(stack(seq, 0))
                h_n.append(h)
                if is_lstm:
                    c_n.append(c)
            from ..frontend.joining import cat
            layer_in = outs[0] if dirs == 1 else cat(outs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                from .functional import dropout
                layer_in = dropout(layer_in, self.dropout, True)
        out = layer_in
        hn = stack(h_n, 0)
        cn = stack(c_n, 0) if is_lstm else None
        if unbatched:
            out, hn = out.squeeze(1), hn.squeeze(1)
            cn = cn.squeeze(1) if cn is not None else None
        elif self.batch_first:
            out = out.transpose(0, 1)
        return (out, (hn, cn)) if is_lstm else (out, hn)

    def _forward_packed(self, input, hx):
        """forward over a PackedSequence: at step t only the first batch_sizes[t] sequences
        advance; each keeps its state from its last step (the reverse direction starts each
        sequence at its own last step). hx and h_n are in the caller's batch order."""
        from ..frontend.joining import cat, stack
        from .utils.rnn import PackedSequence, _host_ints
        data, batch_sizes, sorted_indices, unsorted_indices = input
        if data.ndim != 2:
            raise RuntimeError(f"input must have 2 dimensions, got {data.ndim}")
        if data.shape[-1] != self.input_size:
            raise RuntimeError(f"input.size(-1) must be equal to input_size. Expected "
                               f"{self.input_size}, got {data.shape[-1]}")
        bs = [int(b) for b in _host_ints(batch_sizes)]
        offsets = [0]
        for b in bs:
            offsets.append(offsets[-1] + b)
        is_lstm = self.mode == "LSTM"
        dirs = 2 if self.bidirectional else 1
        H, R, N = self.hidden_size, self.proj_size or self.hidden_size, bs[0]
        if hx is None:
            h0 = creation.zeros(self.num_layers * dirs, N, R, dtype=data.dtype,
                                device=data.device)
            c0 = creation.zeros(self.num_layers * dirs, N, H, dtype=data.dtype,
                                device=data.device) if is_lstm else None
        else:
            if sorted_indices is not None:   # into the packed (sorted) batch order
                hx = tuple(t.index_select(1, sorted_indices) for t in hx) if is_lstm else \
                    hx.index_select(1, sorted_indices)
            h0, c0 = self._check_hx(hx, False, (self.num_layers * dirs, N))
        h_n, c_n = [], []
        layer_in = data
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                w_ih, w_hh, b_ih, b_hh, w_hr = self._layer_weights(layer, d)
                proj = layer_in @ w_ih.t()
                if b_ih is not None:
                    proj = proj + b_ih
                k = layer * dirs + d
                run = _run_reverse if d else _run_forward
                seq, h, c = run(self.mode, H, proj, bs, offsets, h0[k],
                                c0[k] if is_lstm else None, w_hh, b_hh, w_hr)
                outs.append(cat(seq, 0))
                h_n.append(h)
                c_n.append(c)
            layer_in = outs[0] if dirs == 1 else cat(outs, -1)
            if self.dropout and self.training and layer < self.num_layers - 1:
                from .functional import dropout
                layer_in = dropout(layer_in, self.dropout, True)
        hn = stack(h_n, 0)
        cn = stack(c_n, 0) if is_lstm else None
        if unsorted_indices is not None:
            hn = hn.index_select(1, unsorted_indices)
            cn = cn.index_select(1, unsorted_indices) if is_lstm else None
        out = PackedSequence(layer_in, batch_sizes, sorted_indices, unsorted_indices)
        return (out, (hn, cn)) if is_lstm else (out, hn)

    def _check_hx(self, hx, unbatched: bool, lead: tuple[int, int]):
        """(h0, c0) from the user's hx, batched, with PyTorch's shape checks and messages."""
        is_lstm = self.mode == "LSTM"
        h0, c0 = hx if is_lstm else (hx, None)
        want_dim = 2 if unbatched else 3
        kind = "unbatched 2-D" if unbatched else "batched 3-D"
        if is_lstm and (h0.ndim != want_dim or c0.ndim != want_dim):
            raise RuntimeError(f"For {kind} input, hx and cx should also be {want_dim}-D but "
                               f"got ({h0.ndim}-D, {c0.ndim}-D) tensors")
        if not is_lstm and h0.ndim != want_dim:
            raise RuntimeError(f"For {kind} input, hx should also be {want_dim}-D but got "
                               f"{h0.ndim}-D tensor")
        if unbatched:
            h0 = h0.unsqueeze(1)
            c0 = c0.unsqueeze(1) if c0 is not None else None
        H, R = self.hidden_size, self.proj_size or self.hidden_size
        checks = [("hidden[0]", h0, R), ("hidden[1]", c0, H)] if is_lstm else \
            [("hidden", h0, H)]
        for what, t, size in checks:
            want = (*lead, size)
            if tuple(t.shape) != want:
                raise RuntimeError(f"Expected {what} size {want}, got {list(t.shape)}")
        return h0, c0


def _run_forward(mode: str, H: int, proj: Tensor, bs: list[int], offsets: list[int],
                 h0: Tensor, c0, w_hh: Tensor, b_hh, w_hr):
    """The forward direction over packed rows: (outputs per step, h_n, c_n)."""
    from ..frontend.joining import cat
    h, c = h0, c0
    done_h, done_c, seq = [], [], []
    for t, b in enumerate(bs):
        if b < h.shape[0]:            # sequences that ended at the previous step
            done_h.append(h[b:])
            h = h[:b]
            if c is not None:
                done_c.append(c[b:])
                c = c[:b]
        h, c = cell_step(mode, H, proj[offsets[t]:offsets[t] + b], h, c, w_hh, b_hh, w_hr)
        seq.append(h)
    h_n = cat([h] + done_h[::-1], 0) if done_h else h
    c_n = (cat([c] + done_c[::-1], 0) if done_c else c) if c is not None else None
    return seq, h_n, c_n


def _run_reverse(mode: str, H: int, proj: Tensor, bs: list[int], offsets: list[int],
                 h0: Tensor, c0, w_hh: Tensor, b_hh, w_hr):
    """The reverse direction over packed rows, each sequence starting at its last step."""
    from ..frontend.joining import cat
    n = bs[-1]
    h = h0[:n]
    c = c0[:n] if c0 is not None else None
    seq = [None] * len(bs)
    for t in range(len(bs) - 1, -1, -1):
        b = bs[t]
        if b > h.shape[0]:            # sequences whose last step is t join
            h = cat([h, h0[h.shape[0]:b]], 0)
            if c is not None:
                c = cat([c, c0[c.shape[0]:b]], 0)
        h, c = cell_step(mode, H, proj[offsets[t]:offsets[t] + b], h, c, w_hh, b_hh, w_hr)
        seq[t] = h
    return seq, h, c


class RNN(RNNBase):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             "'relu'.")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         0, device, dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device, dtype)


class GRU(RNNBase):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, 0, device, dtype)
