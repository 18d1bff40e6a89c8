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

The cells are drop-ins for PyTorch's: the same constructor ``(input_size, hidden_size, bias=True,
device=None, dtype=None)`` (``RNNCell`` adds ``nonlinearity``), the same call ``cell(input, hx=None)``
(``hx`` None for zeros; a 1-D ``input`` ``[E]`` is one unbatched sample), the same errors for wrong
shapes, and ``torch.jit.script`` compiles them. With ``bias=False`` there are no ``bias_ih`` /
``bias_hh`` (they are None), as in PyTorch.

Each cell has a static ``step(x, state, weight_ih, weight_hh, bias_ih, bias_hh)`` that computes the
equations with the weights it is given (the layers call it with their own per-layer weights), and
``step_gates(x, state)`` that also returns the gate activations, for recording.

Shapes: ``N`` batch, ``E`` input features, ``H`` hidden features.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "init_uniform", "rnn_step", "lstm_step", "gru_step"]

Gates = dict[str, Tensor]


def init_uniform(parameters, hidden_size: int) -> None:
    """PyTorch's recurrent initialisation: every parameter uniform in ``[-1/√H, 1/√H]``."""
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    with torch.no_grad():
        for p in parameters:
            p.uniform_(-bound, bound)


# -- the equations ---------------------------------------------------------------------------------
# Plain functions (TorchScript compiles them with the cells): the cells call them with their own
# weights, the layers' reference path with each layer's.


def rnn_step(
    x: Tensor,
    h: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Optional[Tensor],  # noqa: UP045 -- TorchScript reads this annotation
    bias_hh: Optional[Tensor],  # noqa: UP045
    nonlinearity: str = "tanh",
) -> tuple[Tensor, dict[str, Tensor]]:
    """``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` (or relu); returns ``(h_t, {})``."""
    pre = F.linear(x, weight_ih, bias_ih) + F.linear(h, weight_hh, bias_hh)  # (N, H)
    h = torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)
    gates: dict[str, Tensor] = {}
    return h, gates


def lstm_step(
    x: Tensor,
    state: tuple[Tensor, Tensor],
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Optional[Tensor],  # noqa: UP045
    bias_hh: Optional[Tensor],  # noqa: UP045
) -> tuple[tuple[Tensor, Tensor], dict[str, Tensor]]:
    """The LSTM equations (see :class:`LSTMCell`): ``((h_t, c_t), {"i", "f", "g", "o"})``."""
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


def gru_step(
    x: Tensor,
    h: Tensor,
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Optional[Tensor],  # noqa: UP045
    bias_hh: Optional[Tensor],  # noqa: UP045
) -> tuple[Tensor, dict[str, Tensor]]:
    """The GRU equations (see :class:`GRUCell`): ``(h_t, {"r", "z", "n"})``."""
    x_r, x_z, x_n = F.linear(x, weight_ih, bias_ih).chunk(3, dim=-1)  # 3 × (N, H)
    h_r, h_z, h_n = F.linear(h, weight_hh, bias_hh).chunk(3, dim=-1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    h = (1 - z) * n + z * h
    return h, {"r": r, "z": z, "n": n}


# -- PyTorch's checks ------------------------------------------------------------------------------


def _check_dims(name: str, what: str, t: Tensor) -> None:
    if t.dim() not in (1, 2):
        raise ValueError(f"{name}: Expected {what} to be 1D or 2D, got {t.dim()}D instead")


def _check_step(input: Tensor, hx: Tensor, which: int, input_size: int, hidden_size: int) -> None:
    """PyTorch's cell-kernel checks, with its messages (RuntimeError): no silent broadcasting."""
    if input.shape[1] != input_size:
        raise RuntimeError(f"input has inconsistent input_size: got {input.shape[1]} expected {input_size}")
    if input.shape[0] != hx.shape[0]:
        raise RuntimeError(
            f"Input batch size {input.shape[0]} doesn't match hidden{which} batch size {hx.shape[0]}"
        )
    if hx.shape[1] != hidden_size:
        raise RuntimeError(
            f"hidden{which} has inconsistent hidden_size: got {hx.shape[1]}, expected {hidden_size}"
        )


def _batch(input: Tensor, hx: Tensor) -> Tensor:
    """``hx`` with the batch dimension an unbatched ``input`` ``[E]`` lacks, checked like PyTorch."""
    if input.dim() == 1:
        if hx.dim() != 1:
            raise RuntimeError(f"For unbatched 1-D input, hx should also be 1-D but got {hx.dim()}-D tensor")
        return hx.unsqueeze(0)
    if hx.dim() != 2:
        raise RuntimeError(f"For batched 2-D input, hx should also be 2-D but got {hx.dim()}-D tensor")
    return hx


class _CellBase(nn.RNNCellBase):
    """Parameters, initialisation and checks shared by the three cells (``G`` blocks of ``H`` rows).

    A ``torch.nn.RNNCellBase``: PyTorch's parameters (``bias_ih`` / ``bias_hh`` None without bias),
    ``extra_repr`` and uniform initialisation.
    """

    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool, device, dtype):
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(value, int):
                raise TypeError(f"{name} should be of type int, got: {type(value).__name__} ({value!r})")
            if value < 0:  # zero is allowed, as in PyTorch: the state is then empty
                raise ValueError(f"{name} must be zero or more, got {value}")
        super().__init__(input_size, hidden_size, bias, num_chunks=self.gates, device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        """Draw every parameter uniform in ``[-1/√H, 1/√H]`` (PyTorch's initialisation)."""
        init_uniform(self.parameters(), self.hidden_size)

    def weights(self) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """``(weight_ih, weight_hh, bias_ih, bias_hh)``, the order :meth:`step` takes them in."""
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh


class RNNCell(_CellBase):
    r"""The plain recurrent cell: one weight matrix for the input, one for the state.

    .. code-block:: text

        h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)        (or relu instead of tanh)

    ``W_ih`` is the lesson's W, ``[H, E]`` in PyTorch's layout (it maps E input features to H);
    ``W_hh`` is the lesson's H, ``[H, H]``.

    Args:
        input_size: E, the number of input features (e.g. the embedding size).
        hidden_size: H, the size of the state.
        bias: whether to learn ``b_ih`` and ``b_hh`` (default True).
        nonlinearity: ``"tanh"`` (default) or ``"relu"``.
        device, dtype: where and in which precision to create the parameters.

    Shapes:
        ``input``: ``[N, E]`` (or ``[E]``); ``hx``: ``[N, H]`` (or ``[H]``), None for zeros;
        returns ``h_t``: ``[N, H]`` (or ``[H]``).

    >>> cell = RNNCell(3, 5)
    >>> cell.weight_ih.shape, cell.weight_hh.shape
    (torch.Size([5, 3]), torch.Size([5, 5]))
    >>> cell(torch.ones(2, 3), torch.zeros(2, 5)).shape
    torch.Size([2, 5])
    >>> cell(torch.ones(3)).shape          # one unbatched sample, zero initial state
    torch.Size([5])
    """

    gates = 1
    step = staticmethod(rnn_step)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device=None,
        dtype=None,
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def step_gates(self, x: Tensor, state: Tensor) -> tuple[Tensor, Gates]:
        """One step with this cell's weights; returns ``(h_t, {})`` (a plain RNN has no gates)."""
        return rnn_step(x, state, *self.weights(), nonlinearity=self.nonlinearity)

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:  # noqa: UP045
        """``h_t`` from ``x_t`` ``[N, E]`` and ``h_{t-1}`` ``[N, H]`` (zeros if None)."""
        _check_dims("RNNCell", "input", input)
        if hx is not None:
            _check_dims("RNNCell", "hidden", hx)
        x = input if input.dim() == 2 else input.unsqueeze(0)  # (N, E)
        h = x.new_zeros(x.shape[0], self.hidden_size) if hx is None else _batch(input, hx)
        _check_step(x, h, 0, self.input_size, self.hidden_size)
        h, _ = rnn_step(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, self.nonlinearity)
        return h if input.dim() == 2 else h.squeeze(0)


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
        bias: whether to learn ``b_ih`` and ``b_hh`` (default True).
        device, dtype: where and in which precision to create the parameters.
        forget_bias: (rnnkit, keyword only) added to the forget gate's bias ``b_if`` after the uniform
            initialisation. ``0.0`` (default) is PyTorch's initialisation exactly; ``1.0`` is the common
            choice (Gers et al. 2000; Jozefowicz et al. 2015) that starts training with the memory mostly
            kept, so gradients flow far back in time from the first step. It changes only the starting
            value: the equations, and the state dict, stay PyTorch's.

    Shapes:
        ``input``: ``[N, E]`` (or ``[E]``); ``hx``: ``(h, c)``, each ``[N, H]`` (or ``[H]``), None for
        zeros; returns ``(h_t, c_t)``.

    >>> cell = LSTMCell(3, 5, forget_bias=1.0)
    >>> cell.weight_ih.shape
    torch.Size([20, 3])
    >>> h, c = cell(torch.ones(2, 3))                 # zero initial state, as in PyTorch
    >>> (h, c), gates = cell.step_gates(torch.ones(2, 3), (h, c))
    >>> sorted(gates), gates["f"].shape
    (['f', 'g', 'i', 'o'], torch.Size([2, 5]))
    """

    gates = 4
    step = staticmethod(lstm_step)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        forget_bias: float = 0.0,
    ):
        self.forget_bias = float(forget_bias)
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def reset_parameters(self) -> None:
        """PyTorch's uniform initialisation, plus ``forget_bias`` on the forget gate's ``b_if``."""
        super().reset_parameters()
        if self.bias_ih is not None:
            add_forget_bias(self.bias_ih, self.forget_bias)

    def step_gates(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[tuple[Tensor, Tensor], Gates]:
        """One step that also returns the gates: ``((h_t, c_t), {"i", "f", "g", "o"})``."""
        return lstm_step(x, state, *self.weights())

    def forward(
        self,
        input: Tensor,
        hx: Optional[tuple[Tensor, Tensor]] = None,  # noqa: UP045
    ) -> tuple[Tensor, Tensor]:
        """``(h_t, c_t)`` from ``x_t`` ``[N, E]`` and ``(h_{t-1}, c_{t-1})`` ``[N, H]`` (None: zeros)."""
        _check_dims("LSTMCell", "input", input)
        x = input if input.dim() == 2 else input.unsqueeze(0)  # (N, E)
        if hx is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
            c = h
        else:
            _check_dims("LSTMCell", "hx[0]", hx[0])
            _check_dims("LSTMCell", "hx[1]", hx[1])
            h = _batch(input, hx[0])
            c = _batch(input, hx[1])
        _check_step(x, h, 0, self.input_size, self.hidden_size)
        _check_step(x, c, 1, self.input_size, self.hidden_size)
        (h, c), _ = lstm_step(x, (h, c), self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        if input.dim() == 1:
            return h.squeeze(0), c.squeeze(0)
        return h, c

    def extra_repr(self) -> str:
        extra = f", forget_bias={self.forget_bias}" if self.forget_bias else ""
        return super().extra_repr() + extra


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
        bias: whether to learn ``b_ih`` and ``b_hh`` (default True).
        device, dtype: where and in which precision to create the parameters.

    Shapes:
        ``input``: ``[N, E]`` (or ``[E]``); ``hx``: ``[N, H]`` (or ``[H]``), None for zeros;
        returns ``h_t``: ``[N, H]`` (or ``[H]``).

    >>> cell = GRUCell(3, 5)
    >>> h, gates = cell.step_gates(torch.ones(2, 3), torch.zeros(2, 5))
    >>> h.shape, sorted(gates)
    (torch.Size([2, 5]), ['n', 'r', 'z'])
    """

    gates = 3
    step = staticmethod(gru_step)

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def step_gates(self, x: Tensor, state: Tensor) -> tuple[Tensor, Gates]:
        """One step that also returns the gates: ``(h_t, {"r", "z", "n"})``."""
        return gru_step(x, state, *self.weights())

    def forward(self, input: Tensor, hx: Optional[Tensor] = None) -> Tensor:  # noqa: UP045
        """``h_t`` from ``x_t`` ``[N, E]`` and ``h_{t-1}`` ``[N, H]`` (zeros if None)."""
        _check_dims("GRUCell", "input", input)
        if hx is not None:
            _check_dims("GRUCell", "hidden", hx)
        x = input if input.dim() == 2 else input.unsqueeze(0)  # (N, E)
        h = x.new_zeros(x.shape[0], self.hidden_size) if hx is None else _batch(input, hx)
        _check_step(x, h, 0, self.input_size, self.hidden_size)
        h, _ = gru_step(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return h if input.dim() == 2 else h.squeeze(0)


def add_forget_bias(bias_ih: Tensor, forget_bias: float) -> None:
    """Add ``forget_bias`` to the forget gate's block ``[H:2H]`` of an LSTM ``bias_ih``, in place."""
    if forget_bias:
        hidden_size = bias_ih.shape[0] // 4
        with torch.no_grad():
            bias_ih[hidden_size : 2 * hidden_size] += forget_bias
