"""The three recurrent cells of the lesson, one time step each, written as their equations.

A cell turns the current input ``x_t`` and the previous state into the next state. It owns no time
loop: the layers in :mod:`rnnkit.nn.recurrent` run it over a sequence. Every cell keeps PyTorch's
parameter names, shapes and gate order, so weights copy both ways with ``torch.nn.RNNCell``,
``torch.nn.LSTMCell`` and ``torch.nn.GRUCell``:

====================  ===========  ===========
parameter             shape        holds
====================  ===========  ===========
``weight_ih``         ``[G·H, E]``   W (input → hidden), one block per gate
``weight_hh``         ``[G·H, H]``   H (hidden → hidden), one block per gate
``bias_ih``           ``[G·H]``
``bias_hh``           ``[G·H]``
====================  ===========  ===========

with ``G`` = 1 (RNN), 4 (LSTM: gates i, f, g, o) or 3 (GRU: gates r, z, n). All parameters start
uniform in ``[-1/√H, 1/√H]``, as in PyTorch.

Each cell has a static ``step(x, state, weight_ih, weight_hh, bias_ih, bias_hh)`` that computes the
equations with the weights it is given (the layers call it with their own per-layer weights), and
``step_gates(x, state)`` that also returns the gate activations, for recording.

Shapes: ``N`` batch, ``E`` input features, ``H`` hidden features.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "init_uniform"]

Gates = dict[str, Tensor]


def init_uniform(parameters, hidden_size: int) -> None:
    """PyTorch's recurrent initialisation: every parameter uniform in ``[-1/√H, 1/√H]``."""
    bound = 1.0 / math.sqrt(hidden_size)
    with torch.no_grad():
        for p in parameters:
            p.uniform_(-bound, bound)


def _check_sizes(input_size: int, hidden_size: int) -> None:
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


class _CellBase(nn.Module):
    """Parameters and initialisation shared by the three cells (``gates`` blocks of ``H`` rows)."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        _check_sizes(input_size, hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        rows = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(rows))
        self.bias_hh = nn.Parameter(torch.empty(rows))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every parameter uniform in ``[-1/√H, 1/√H]`` (PyTorch's initialisation)."""
        init_uniform(self.parameters(), self.hidden_size)

    def weights(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(weight_ih, weight_hh, bias_ih, bias_hh)``, the order :meth:`step` takes them in."""
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh

    def step_gates(self, x, state):
        """One step that also returns the gate activations: ``(new_state, gates)``."""
        return self.step(x, state, *self.weights())

    def forward(self, x, state):
        """One step: the next state (see the class docstring for its equations)."""
        return self.step(x, state, *self.weights())[0]

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class RNNCell(_CellBase):
    r"""The plain recurrent cell: one weight matrix for the input, one for the state.

    .. code-block:: text

        h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)        (or relu instead of tanh)

    ``W_ih`` is the lesson's W, ``[H, E]`` in PyTorch's layout (it maps E input features to H);
    ``W_hh`` is the lesson's H, ``[H, H]``.

    Args:
        input_size: E, the number of input features (e.g. the embedding size).
        hidden_size: H, the size of the state.
        nonlinearity: ``"tanh"`` (default) or ``"relu"``.

    Shapes:
        ``x``: ``[N, E]``; ``h``: ``[N, H]``; returns ``h_t``: ``[N, H]``.

    >>> cell = RNNCell(3, 5)
    >>> cell.weight_ih.shape, cell.weight_hh.shape
    (torch.Size([5, 3]), torch.Size([5, 5]))
    >>> cell(torch.ones(2, 3), torch.zeros(2, 5)).shape
    torch.Size([2, 5])
    """

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh"):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size)

    def step_gates(self, x: Tensor, state: Tensor) -> tuple[Tensor, Gates]:
        """One step with this cell's weights; returns ``(h_t, {})`` (a plain RNN has no gates)."""
        return self.step(x, state, *self.weights(), nonlinearity=self.nonlinearity)

    def forward(self, x: Tensor, state: Tensor) -> Tensor:
        """``h_t`` from ``x_t`` ``[N, E]`` and ``h_{t-1}`` ``[N, H]``."""
        return self.step_gates(x, state)[0]

    @staticmethod
    def step(
        x: Tensor,
        h: Tensor,
        weight_ih: Tensor,
        weight_hh: Tensor,
        bias_ih: Tensor,
        bias_hh: Tensor,
        nonlinearity: str = "tanh",
    ) -> tuple[Tensor, Gates]:
        """The equation of the class docstring with the given weights; returns ``(h_t, {})``."""
        activation = torch.tanh if nonlinearity == "tanh" else torch.relu
        h = activation(F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh))
        return h, {}

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, nonlinearity={self.nonlinearity!r}"


class LSTMCell(_CellBase):
    r"""Long short-term memory: two states (``h`` the output, ``c`` the memory) and four gates.

    .. code-block:: text

        i_t = σ(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi)        input gate: how much new to write
        f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf)        forget gate: how much memory to keep
        g_t = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg)     candidate to write
        o_t = σ(W_io x_t + b_io + W_ho h_{t-1} + b_ho)        output gate: how much memory to show
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
        h_t = o_t ⊙ tanh(c_t)

    The four ``W_i*`` blocks are stacked, in the order i, f, g, o, into ``weight_ih`` ``[4H, E]``
    (PyTorch's layout and order); likewise ``weight_hh`` ``[4H, H]``, ``bias_ih`` and ``bias_hh``.

    Args:
        input_size: E, the number of input features.
        hidden_size: H, the size of each of the two states.
        forget_bias: added to the forget gate's bias ``b_if`` after the uniform initialisation.
            ``0.0`` (default) is PyTorch's initialisation exactly; ``1.0`` is the common choice
            (Gers et al. 2000; Jozefowicz et al. 2015) that starts training with the memory mostly kept,
            so gradients flow far back in time from the first step. It changes only the starting
            value: the equations, and the state dict, stay PyTorch's.

    Shapes:
        ``x``: ``[N, E]``; ``state``: ``(h, c)``, each ``[N, H]``; returns ``(h_t, c_t)``.

    >>> cell = LSTMCell(3, 5, forget_bias=1.0)
    >>> cell.weight_ih.shape
    torch.Size([20, 3])
    >>> h, c = cell(torch.ones(2, 3), (torch.zeros(2, 5), torch.zeros(2, 5)))
    >>> (h, c), gates = cell.step_gates(torch.ones(2, 3), (h, c))
    >>> sorted(gates), gates["f"].shape
    (['f', 'g', 'i', 'o'], torch.Size([2, 5]))
    """

    gates = 4

    def __init__(self, input_size: int, hidden_size: int, forget_bias: float = 0.0):
        self.forget_bias = float(forget_bias)
        super().__init__(input_size, hidden_size)

    def reset_parameters(self) -> None:
        """PyTorch's uniform initialisation, plus ``forget_bias`` on the forget gate's ``b_if``."""
        super().reset_parameters()
        add_forget_bias(self.bias_ih, self.forget_bias)

    def step_gates(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[tuple[Tensor, Tensor], Gates]:
        """One step that also returns the gates: ``((h_t, c_t), {"i", "f", "g", "o"})``."""
        return self.step(x, state, *self.weights())

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """``(h_t, c_t)`` from ``x_t`` ``[N, E]`` and ``(h_{t-1}, c_{t-1})``, each ``[N, H]``."""
        return self.step_gates(x, state)[0]

    @staticmethod
    def step(
        x: Tensor,
        state: tuple[Tensor, Tensor],
        weight_ih: Tensor,
        weight_hh: Tensor,
        bias_ih: Tensor,
        bias_hh: Tensor,
    ) -> tuple[tuple[Tensor, Tensor], Gates]:
        """The equations of the class docstring with the given weights: ``((h_t, c_t), gates)``."""
        h, c = state
        gates = F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh)  # (N, 4H)
        i, f, g, o = gates.chunk(4, dim=-1)
        i = torch.sigmoid(i)
        f = torch.sigmoid(f)
        g = torch.tanh(g)
        o = torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        return (h, c), {"i": i, "f": f, "g": g, "o": o}

    def extra_repr(self) -> str:
        extra = f", forget_bias={self.forget_bias}" if self.forget_bias else ""
        return f"{self.input_size}, {self.hidden_size}{extra}"


class GRUCell(_CellBase):
    r"""Gated recurrent unit: one state and three gates, a lighter relative of the LSTM.

    .. code-block:: text

        r_t = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)                reset gate
        z_t = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)                update gate
        n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t-1} + b_hn))     new candidate
        h_t = (1 - z_t) ⊙ n_t + z_t ⊙ h_{t-1}

    The blocks are stacked in the order r, z, n into ``weight_ih`` ``[3H, E]`` and ``weight_hh``
    ``[3H, H]`` (PyTorch's layout and order).

    Args:
        input_size: E, the number of input features.
        hidden_size: H, the size of the state.

    Shapes:
        ``x``: ``[N, E]``; ``h``: ``[N, H]``; returns ``h_t``: ``[N, H]``.

    >>> cell = GRUCell(3, 5)
    >>> h, gates = cell.step_gates(torch.ones(2, 3), torch.zeros(2, 5))
    >>> h.shape, sorted(gates)
    (torch.Size([2, 5]), ['n', 'r', 'z'])
    """

    gates = 3

    def step_gates(self, x: Tensor, state: Tensor) -> tuple[Tensor, Gates]:
        """One step that also returns the gates: ``(h_t, {"r", "z", "n"})``."""
        return self.step(x, state, *self.weights())

    def forward(self, x: Tensor, state: Tensor) -> Tensor:
        """``h_t`` from ``x_t`` ``[N, E]`` and ``h_{t-1}`` ``[N, H]``."""
        return self.step_gates(x, state)[0]

    @staticmethod
    def step(
        x: Tensor,
        h: Tensor,
        weight_ih: Tensor,
        weight_hh: Tensor,
        bias_ih: Tensor,
        bias_hh: Tensor,
    ) -> tuple[Tensor, Gates]:
        """The equations of the class docstring with the given weights: ``(h_t, gates)``."""
        x_r, x_z, x_n = F.linear(x, weight_ih, bias_ih).chunk(3, dim=-1)  # 3 × (N, H)
        h_r, h_z, h_n = F.linear(h, weight_hh, bias_hh).chunk(3, dim=-1)
        r = torch.sigmoid(x_r + h_r)
        z = torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        h = (1 - z) * n + z * h
        return h, {"r": r, "z": z, "n": n}


def add_forget_bias(bias_ih: Tensor, forget_bias: float) -> None:
    """Add ``forget_bias`` to the forget gate's block ``[H:2H]`` of an LSTM ``bias_ih``, in place."""
    if forget_bias:
        hidden_size = bias_ih.shape[0] // 4
        with torch.no_grad():
            bias_ih[hidden_size : 2 * hidden_size] += forget_bias
