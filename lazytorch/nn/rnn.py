"""Recurrent layers: RNN, LSTM, GRU (multi-layer, bidirectional, batch_first)."""
from __future__ import annotations

import math

from .. import creation
from ..tensor import Tensor
from .module import Module
from .parameter import Parameter

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


class RNNBase(Module):
    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None):
        super().__init__()
        if proj_size:
            raise NotImplementedError("LSTM proj_size is not supported")
        if not 0 <= dropout <= 1:
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             "probability of an element being zeroed")
        if hidden_size <= 0 or num_layers <= 0:
            raise ValueError("hidden_size and num_layers must be greater than 0")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional, self.proj_size = float(dropout), bidirectional, 0
        g = _GATES[mode] * hidden_size
        dirs = 2 if bidirectional else 1
        self._flat_weights_names = []
        for layer in range(num_layers):
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                in_sz = input_size if layer == 0 else hidden_size * dirs
                names = [f"weight_ih{sfx}", f"weight_hh{sfx}"]
                shapes = [(g, in_sz), (g, hidden_size)]
                if bias:
                    names += [f"bias_ih{sfx}", f"bias_hh{sfx}"]
                    shapes += [(g,), (g,)]
                for n, s in zip(names, shapes):
                    setattr(self, n, Parameter(creation.empty(s, dtype=dtype)))
                self._flat_weights_names += names
        self.reset_parameters()

    def reset_parameters(self) -> None:
        from . import init
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    def _cell(self, x_proj: Tensor, h: Tensor, c, w_hh: Tensor, b_hh):
        hh = h @ w_hh.t()
        if b_hh is not None:
            hh = hh + b_hh
        H = self.hidden_size
        if self.mode == "RNN_TANH":
            return (x_proj + hh).tanh(), None
        if self.mode == "RNN_RELU":
            return (x_proj + hh).relu(), None
        if self.mode == "LSTM":
            gates = x_proj + hh
            i, f, g, o = (gates[..., k * H:(k + 1) * H] for k in range(4))
            c2 = f.sigmoid() * c + i.sigmoid() * g.tanh()
            return o.sigmoid() * c2.tanh(), c2
        # GRU: r, z, n
        r = (x_proj[..., :H] + hh[..., :H]).sigmoid()
        z = (x_proj[..., H:2 * H] + hh[..., H:2 * H]).sigmoid()
        n = (x_proj[..., 2 * H:] + r * hh[..., 2 * H:]).tanh()
        return (1 - z) * n + z * h, None

    def forward(self, input: Tensor, hx=None):
        from ..joining import stack
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
        H = self.hidden_size
        if hx is None:
            h0 = creation.zeros(self.num_layers * dirs, N, H, dtype=x.dtype)
            c0 = creation.zeros(self.num_layers * dirs, N, H, dtype=x.dtype) if is_lstm else None
        else:
            h0, c0 = hx if is_lstm else (hx, None)
            if unbatched:
                h0 = h0.unsqueeze(1)
                c0 = c0.unsqueeze(1) if c0 is not None else None
            want = (self.num_layers * dirs, N, H)
            if tuple(h0.shape) != want:
                raise RuntimeError(f"Expected hidden size {want}, got {tuple(h0.shape)}")
        h_n, c_n = [], []
        layer_in = x
        for layer in range(self.num_layers):
            outs = []
            for d in range(dirs):
                sfx = f"_l{layer}" + ("_reverse" if d else "")
                w_ih, w_hh = getattr(self, f"weight_ih{sfx}"), getattr(self, f"weight_hh{sfx}")
                b_ih = getattr(self, f"bias_ih{sfx}") if self.bias else None
                b_hh = getattr(self, f"bias_hh{sfx}") if self.bias else None
                proj = layer_in @ w_ih.t()
                if b_ih is not None:
                    proj = proj + b_ih
                h = h0[layer * dirs + d]
                c = c0[layer * dirs + d] if is_lstm else None
                steps = range(L - 1, -1, -1) if d else range(L)
                seq = [None] * L
                for t in steps:
                    h, c = self._cell(proj[t], h, c, w_hh, b_hh)
                    seq[t] = h
                outs.append(stack(seq, 0))
                h_n.append(h)
                if is_lstm:
                    c_n.append(c)
            from ..joining import cat
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
