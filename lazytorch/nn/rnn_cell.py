"""Recurrent cells: RNNCell, LSTMCell, GRUCell (one time step; PyTorch's parameters, gate
orders and checks). The gate math is the one the sequence layers use (rnn.cell_step)."""
from __future__ import annotations

import math

from ..frontend import creation
from ..frontend.tensor import Tensor
from .module import Module
from .parameter import Parameter
from .rnn import cell_step


class RNNCellBase(Module):
    """weight_ih (chunks * hidden, input), weight_hh (chunks * hidden, hidden) and the two
    biases, initialized uniformly in +-1/sqrt(hidden_size)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int,
                 device=None, dtype=None) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.weight_ih = Parameter(creation.empty(num_chunks * hidden_size, input_size,
                                                  dtype=dtype))
        self.weight_hh = Parameter(creation.empty(num_chunks * hidden_size, hidden_size,
                                                  dtype=dtype))
        if bias:
            self.bias_ih = Parameter(creation.empty(num_chunks * hidden_size, dtype=dtype))
            self.bias_hh = Parameter(creation.empty(num_chunks * hidden_size, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        nl = getattr(self, "nonlinearity", "tanh")
        if nl != "tanh":
            s += f", nonlinearity={nl}"
        return s

    def reset_parameters(self) -> None:
        from . import init
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for w in self.parameters():
            init.uniform_(w, -stdv, stdv)

    def _batched(self, input: Tensor) -> tuple[Tensor, bool]:
        if input.ndim not in (1, 2):
            raise ValueError(f"{type(self).__name__}: Expected input to be 1D or 2D, got "
                             f"{input.ndim}D instead")
        if input.shape[-1] != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.shape[-1]} "
                               f"expected {self.input_size}")
        return (input.unsqueeze(0), True) if input.ndim == 1 else (input, False)

    def _state(self, input: Tensor, hx: Tensor | None, unbatched: bool, which: str) -> Tensor:
        """hx batched and checked against input (zeros when None)."""
        if hx is None:
            return creation.zeros(input.shape[0], self.hidden_size, dtype=input.dtype,
                                  device=input.device)
        if hx.ndim not in (1, 2):
            raise ValueError(f"{type(self).__name__}: Expected hidden to be 1D or 2D, got "
                             f"{hx.ndim}D instead")
        h = hx.unsqueeze(0) if unbatched and hx.ndim == 1 else hx
        if h.shape[0] != input.shape[0]:
            raise RuntimeError(f"Input batch size {input.shape[0]} doesn't match {which} batch "
                               f"size {h.shape[0]}")
        if h.shape[-1] != self.hidden_size:
            raise RuntimeError(f"{which} has inconsistent hidden_size: got {h.shape[-1]}, "
                               f"expected {self.hidden_size}")
        return h

    def _step(self, mode: str, x: Tensor, h: Tensor, c=None):
        proj = x @ self.weight_ih.t()
        if self.bias_ih is not None:
            proj = proj + self.bias_ih
        return cell_step(mode, self.hidden_size, proj, h, c, self.weight_hh, self.bias_hh)


class RNNCell(RNNCellBase):
    """h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or relu)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        if self.nonlinearity not in ("tanh", "relu"):
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        x, unbatched = self._batched(input)
        h = self._state(x, hx, unbatched, "hidden0")
        out, _ = self._step("RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU", x, h)
        return out.squeeze(0) if unbatched else out


class LSTMCell(RNNCellBase):
    """(h', c') of one LSTM step (gates i, f, g, o)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None):
        x, unbatched = self._batched(input)
        if hx is None:
            h = c = self._state(x, None, unbatched, "hidden0")
        else:
            if len(hx) != 2:
                raise RuntimeError("lstm_cell expects two hidden states")
            h = self._state(x, hx[0], unbatched, "hidden0")
            c = self._state(x, hx[1], unbatched, "hidden1")
        h2, c2 = self._step("LSTM", x, h, c)
        return (h2.squeeze(0), c2.squeeze(0)) if unbatched else (h2, c2)


class GRUCell(RNNCellBase):
    """h' of one GRU step (gates r, z, n; n = tanh(W_in x + b_in + r (W_hn h + b_hn)))."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        x, unbatched = self._batched(input)
        h = self._state(x, hx, unbatched, "hidden0")
        out, _ = self._step("GRU", x, h)
        return out.squeeze(0) if unbatched else out
