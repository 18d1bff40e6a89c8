"""Recurrent layers: the cells of :mod:`rnnkit.nn.cells` run over time, both ways, stacked.

A layer owns time: it runs its cell over every step of a batch of sequences of different lengths
(``lengths``), in one or both directions, through ``num_layers`` stacked layers, and returns every
step's output and the final state. Two backends compute the same numbers:

* ``"reference"`` runs the cell equations (:meth:`LSTMCell.step` …) step by step with the layer's
  own parameters: the code to read, and the one that can record gates (``record=True``);
* ``"fast"`` runs PyTorch's fused kernels on the very same parameters (:mod:`rnnkit.nn.fused`);
* ``"auto"`` (default) is ``"fast"``, except when recording.

Parameter names and shapes are PyTorch's (``weight_ih_l0``, ``weight_hh_l0_reverse``,
``bias_ih_l1`` …), so ``load_state_dict`` moves weights both ways between :class:`LSTM` and
``torch.nn.LSTM`` (likewise GRU and RNN).

Shape legend: ``N`` batch, ``L`` length, ``D`` directions (2 if bidirectional), ``H`` hidden,
``E`` input features.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import fused
from .cells import GRUCell, LSTMCell, RNNCell, _check_sizes, add_forget_bias, init_uniform
from .checks import State, as_states, check_input, check_lengths, check_state
from .trace import Trace

__all__ = ["RNN", "LSTM", "GRU"]

logger = logging.getLogger(__name__)

BACKENDS = ("auto", "fast", "reference")


def _is_tracing() -> bool:
    """True while torch.jit.trace, torch.export or ONNX export record the computation."""
    return (
        torch.jit.is_tracing()
        or torch.onnx.is_in_onnx_export()
        or torch.compiler.is_compiling()
        or torch.compiler.is_exporting()
    )


class _Recurrent(nn.Module):
    """What RNN, LSTM and GRU share: parameters, input checks, and the two backends."""

    mode: str  # PyTorch's name for the kernel: "LSTM", "GRU", "RNN_TANH" or "RNN_RELU"
    gates: int  # G: blocks of H rows in each weight
    recorded_names: tuple[str, ...]  # what record=True returns per layer and direction

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bidirectional: bool,
        dropout: float,
        batch_first: bool,
        backend: str,
    ):
        super().__init__()
        _check_sizes(input_size, hidden_size)
        if not isinstance(num_layers, int) or isinstance(num_layers, bool) or num_layers < 1:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        if not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
        if dropout and num_layers == 1:
            logger.warning("dropout=%s does nothing with num_layers=1: it applies between layers", dropout)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bool(bidirectional)
        self.dropout = float(dropout)
        self.batch_first = batch_first
        self.backend = backend
        self._weight_names: list[str] = []
        rows = self.gates * hidden_size
        for k in range(num_layers):
            layer_input_size = input_size if k == 0 else hidden_size * self.num_directions
            for d in range(self.num_directions):
                suffix = f"_l{k}_reverse" if d else f"_l{k}"
                for name, shape in (
                    ("weight_ih", (rows, layer_input_size)),
                    ("weight_hh", (rows, hidden_size)),
                    ("bias_ih", (rows,)),
                    ("bias_hh", (rows,)),
                ):
                    self.register_parameter(name + suffix, nn.Parameter(torch.empty(shape)))
                    self._weight_names.append(name + suffix)
        self.reset_parameters()

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def reset_parameters(self) -> None:
        """Draw every parameter uniform in ``[-1/√H, 1/√H]`` (PyTorch's initialisation)."""
        init_uniform(self.parameters(), self.hidden_size)

    def _flat_weights(self) -> list[Tensor]:
        """All parameters in the fused kernels' order: per layer, per direction, ih, hh, b_ih, b_hh."""
        return [getattr(self, name) for name in self._weight_names]

    def _weights(self, layer: int, direction: int) -> list[Tensor]:
        """``[weight_ih, weight_hh, bias_ih, bias_hh]`` of one layer and direction."""
        start = 4 * (layer * self.num_directions + direction)
        return self._flat_weights()[start : start + 4]

    def forward(self, x: Tensor, lengths: Tensor | None = None, state=None, record: bool = False):
        """Run the layer over a batch of sequences.

        Args:
            x: the input, ``[N, L, E]`` (``[L, N, E]`` if ``batch_first=False``).
            lengths: ``[N]`` integer tensor, each sequence's real length in ``1..L`` (CPU or ``x``'s
                device); steps at and after it are padding. None: every sequence is ``L`` long.
            state: the initial state, ``h_0`` (``(h_0, c_0)`` for LSTM), each
                ``[num_layers·D, N, H]``; None for zeros.
            record: also return a :class:`Trace` of every step's states and gates. Recording always
                runs the reference path (the fused kernels do not expose gates).

        Returns:
            ``(output, final_state)``, or ``(output, final_state, trace)`` with ``record=True``.
            ``output`` is ``[N, L, D·H]`` (``[L, N, D·H]`` if not batch-first), the last layer's
            states with both directions side by side, zero at padded steps. ``final_state`` is
            ``h_n`` (``(h_n, c_n)`` for LSTM), each ``[num_layers·D, N, H]`` with row ``k·D + d``
            for layer ``k`` and direction ``d``, taken at each sequence's own last real token (the
            reverse direction ends at the first token, having started at the last real one).

        Raises:
            ValueError: wrong input rank or feature size, ``lengths`` of the wrong shape, dtype or
                range, or a state of the wrong shape.
        """
        tracing = _is_tracing()
        checking = not tracing  # a trace records operations; checks would be frozen into it
        if checking:
            check_input(x, self.input_size, self.batch_first, self.weight_ih_l0.dtype)
        if not self.batch_first:
            x = x.transpose(0, 1)  # (N, L, E)
        n, steps = x.shape[0], x.shape[1]
        if lengths is not None and checking and check_lengths(lengths, n, steps, x.device) == steps:
            lengths = None  # no padding: every sequence takes the plain path
        if lengths is not None:
            lengths = lengths.to(device=x.device, dtype=torch.int64)
        expected = [self.num_layers * self.num_directions, n, self.hidden_size]
        states = check_state(state, self.mode == "LSTM", expected) if checking else as_states(state)
        trace = None
        if record or self.backend == "reference":
            output, final, trace = self._forward_reference(x, lengths, states, record)
        else:
            output, final = self._forward_fast(x, lengths, states, tracing)
        if not self.batch_first:
            output = output.transpose(0, 1)  # (L, N, D*H)
        final_state = final if self.mode == "LSTM" else final[0]
        return (output, final_state, trace) if record else (output, final_state)

    # -- fast path --------------------------------------------------------------------------------

    def _forward_fast(
        self, x: Tensor, lengths: Tensor | None, states: State | None, tracing: bool
    ) -> tuple[Tensor, State]:
        weights = self._flat_weights()
        config = (self.num_layers, self.dropout, self.training, self.bidirectional)
        if lengths is None:
            return fused.full(self.mode, x, states or self._zero_state(x), weights, *config)
        if tracing:  # a fixed graph: no data-dependent shapes
            return fused.padded(self.mode, x, lengths, states, weights, *config)
        if self._use_packing(x, lengths):
            return fused.packed(self.mode, x, lengths, states, weights, *config)
        groups, checked = self._length_groups(lengths), x.device.type == "cpu"  # no sync on a GPU
        return fused.padded(self.mode, x, lengths, states, weights, *config, groups=groups, checked=checked)

    def _use_packing(self, x: Tensor, lengths: Tensor) -> bool:
        """Whether this ragged batch runs packed rather than padded (see :func:`fused.prefers_packing`)."""
        return fused.prefers_packing(self.mode, x, lengths, self.hidden_size, self.bidirectional)

    def _length_groups(self, lengths: Tensor) -> int:
        """How many groups of similar lengths the padded path splits a ragged batch into."""
        return fused.group_count(lengths, self.mode, self.hidden_size)

    def flatten_parameters(self) -> None:
        """Put all weights in one contiguous cuDNN buffer, as ``torch.nn.LSTM`` does (GPU only).

        cuDNN then uses the parameters in place instead of copying them at every call. A no-op
        on CPU. Called after every ``.to(...)`` / ``.cuda()``.
        """
        weights = self._flat_weights()
        first = weights[0]
        if not first.is_cuda or not torch.backends.cudnn.is_acceptable(first):
            return
        if any(w.dtype != first.dtype or not w.is_cuda for w in weights):
            return
        if len({w.data_ptr() for w in weights}) != len(weights):
            return  # aliased parameters: leave them alone, as torch does
        from torch.backends.cudnn import rnn as cudnn_rnn

        with torch.cuda.device_of(first), torch.no_grad():
            if torch._use_cudnn_rnn_flatten_weight():
                torch._cudnn_rnn_flatten_weight(
                    weights,
                    4,
                    self.input_size,
                    cudnn_rnn.get_cudnn_mode(self.mode),
                    self.hidden_size,
                    0,
                    self.num_layers,
                    True,
                    self.bidirectional,
                )

    def _apply(self, fn, recurse=True):
        result = super()._apply(fn, recurse)
        self.flatten_parameters()
        return result

    # -- reference path ---------------------------------------------------------------------------

    def _forward_reference(
        self, x: Tensor, lengths: Tensor | None, states: State | None, record: bool
    ) -> tuple[Tensor, State, Trace | None]:
        steps = x.shape[1]
        mask = None if lengths is None else fused.step_mask(lengths, steps)  # (N, L)
        states = states or self._zero_state(x)
        finals: list[State] = []
        recorded: list[list[dict[str, Tensor]]] = []
        layer_input = x
        for k in range(self.num_layers):
            outputs = []
            recorded.append([])
            for d in range(self.num_directions):
                initial = tuple(s[k * self.num_directions + d] for s in states)
                output, final, steps_seen = self._scan(
                    layer_input, mask, initial, self._weights(k, d), reverse=d == 1, record=record
                )
                outputs.append(output)
                finals.append(final)
                recorded[k].append(steps_seen)
            layer_input = torch.cat(outputs, dim=-1)  # (N, L, D*H)
            if self.dropout and self.training and k < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
        final_state = tuple(torch.stack(parts) for parts in zip(*finals, strict=True))
        return layer_input, final_state, Trace(recorded) if record else None

    def _scan(
        self, x: Tensor, mask: Tensor | None, state: State, weights: list[Tensor], reverse: bool, record: bool
    ) -> tuple[Tensor, State, dict[str, Tensor]]:
        """One direction of one layer, step by step: ``(output [N, L, H], final state, recorded)``.

        At padded steps (``mask`` False) the state stays as it was, so the forward direction ends
        at each sequence's last real token and the reverse direction starts there.
        """
        steps = x.shape[1]
        outputs: list[Tensor] = [x] * steps  # placeholders, each overwritten below
        seen: dict[str, list[Tensor]] = {name: [x] * steps for name in self.recorded_names} if record else {}
        for t in reversed(range(steps)) if reverse else range(steps):
            new_state, gates = self._step(x[:, t], state, weights)
            if mask is not None:
                real = mask[:, t].unsqueeze(1)  # (N, 1)
                new_state = tuple(
                    torch.where(real, new, old) for new, old in zip(new_state, state, strict=True)
                )
            state = new_state
            outputs[t] = state[0]
            if record:
                for name, value in zip(self.recorded_names, (*state, *gates.values()), strict=True):
                    seen[name][t] = value
        keep = torch.ones_like(x[:, :, :1]) if mask is None else mask.unsqueeze(-1).to(x.dtype)  # (N, L, 1)
        recorded = {name: torch.stack(values, dim=1) * keep for name, values in seen.items()}
        return torch.stack(outputs, dim=1) * keep, state, recorded

    def _step(self, x: Tensor, state: State, weights: list[Tensor]) -> tuple[State, dict[str, Tensor]]:
        """One time step of this layer's cell (see :mod:`rnnkit.nn.cells`)."""
        raise NotImplementedError

    def _zero_state(self, x: Tensor) -> State:
        return fused.zero_state(self.mode, x, self.num_layers * self.num_directions, self.hidden_size)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        defaults = {
            "num_layers": 1,
            "bidirectional": False,
            "dropout": 0.0,
            "batch_first": True,
            "backend": "auto",
        }
        for name, default in defaults.items():
            if getattr(self, name) != default:
                text += f", {name}={getattr(self, name)!r}"
        return text


class RNN(_Recurrent):
    r"""The plain recurrent layer: :class:`~rnnkit.nn.cells.RNNCell` over time.

    Args:
        input_size: E, features per step (e.g. the embedding size).
        hidden_size: H, the size of the state.
        num_layers: layers stacked; layer ``k+1`` reads layer ``k``'s output ``[N, L, D·H]``.
        nonlinearity: ``"tanh"`` (default) or ``"relu"``.
        bidirectional: also run each layer from the last token to the first.
        dropout: dropout probability on each layer's output except the last, in training only.
        batch_first: ``x`` is ``[N, L, E]`` (default) rather than ``[L, N, E]``.
        backend: ``"auto"`` (default), ``"fast"`` or ``"reference"`` (see the module docstring).

    See :meth:`forward` for the inputs and outputs.

    >>> rnn = RNN(8, 16, num_layers=2, bidirectional=True)
    >>> output, h_n = rnn(torch.randn(3, 5, 8), lengths=torch.tensor([5, 2, 4]))
    >>> output.shape, h_n.shape
    (torch.Size([3, 5, 32]), torch.Size([4, 3, 16]))
    >>> bool(output[1, 2:].eq(0).all())   # padded steps are zero
    True
    """

    gates = 1
    recorded_names = ("h",)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bidirectional: bool = False,
        dropout: float = 0.0,
        batch_first: bool = True,
        backend: str = "auto",
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self.mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout, batch_first, backend)

    def _step(self, x: Tensor, state: State, weights: list[Tensor]) -> tuple[State, dict[str, Tensor]]:
        h, gates = RNNCell.step(x, state[0], *weights, nonlinearity=self.nonlinearity)
        return (h,), gates

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")


class LSTM(_Recurrent):
    r"""Long short-term memory layer: :class:`~rnnkit.nn.cells.LSTMCell` over time.

    Its state is a pair ``(h, c)``: ``h`` is what the layer outputs at each step, ``c`` the memory
    that the gates write to, keep and read from.

    Args:
        input_size: E, features per step (e.g. the embedding size).
        hidden_size: H, the size of each state.
        num_layers: layers stacked; layer ``k+1`` reads layer ``k``'s output ``[N, L, D·H]``.
        bidirectional: also run each layer from the last token to the first.
        dropout: dropout probability on each layer's output except the last, in training only.
        batch_first: ``x`` is ``[N, L, E]`` (default) rather than ``[L, N, E]``.
        backend: ``"auto"`` (default), ``"fast"`` or ``"reference"`` (see the module docstring).
        forget_bias: added to every forget-gate bias ``b_if`` after the uniform initialisation
            (see :class:`~rnnkit.nn.cells.LSTMCell`); 0.0 (default) is PyTorch's initialisation.

    See :meth:`forward` for the inputs and outputs.

    >>> lstm = LSTM(8, 16, bidirectional=True)
    >>> output, (h_n, c_n) = lstm(torch.randn(3, 5, 8), lengths=torch.tensor([5, 2, 4]))
    >>> output.shape, h_n.shape, c_n.shape
    (torch.Size([3, 5, 32]), torch.Size([2, 3, 16]), torch.Size([2, 3, 16]))
    >>> torch.allclose(h_n[0, 1], output[1, 1, :16])   # forward direction ends at the last real token
    True
    >>> torch.allclose(h_n[1, 1], output[1, 0, 16:])   # reverse direction ends at the first token
    True
    """

    mode = "LSTM"
    gates = 4
    recorded_names = ("h", "c", "i", "f", "g", "o")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        batch_first: bool = True,
        backend: str = "auto",
        forget_bias: float = 0.0,
    ):
        self.forget_bias = float(forget_bias)
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout, batch_first, backend)

    def reset_parameters(self) -> None:
        """PyTorch's uniform initialisation, plus ``forget_bias`` on every forget gate's ``b_if``."""
        super().reset_parameters()
        for name in self._weight_names:
            if name.startswith("bias_ih"):
                add_forget_bias(getattr(self, name), self.forget_bias)

    def _step(self, x: Tensor, state: State, weights: list[Tensor]) -> tuple[State, dict[str, Tensor]]:
        (h, c), gates = LSTMCell.step(x, state, *weights)
        return (h, c), gates

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text + (f", forget_bias={self.forget_bias}" if self.forget_bias else "")


class GRU(_Recurrent):
    r"""Gated recurrent unit layer: :class:`~rnnkit.nn.cells.GRUCell` over time.

    Args:
        input_size: E, features per step (e.g. the embedding size).
        hidden_size: H, the size of the state.
        num_layers: layers stacked; layer ``k+1`` reads layer ``k``'s output ``[N, L, D·H]``.
        bidirectional: also run each layer from the last token to the first.
        dropout: dropout probability on each layer's output except the last, in training only.
        batch_first: ``x`` is ``[N, L, E]`` (default) rather than ``[L, N, E]``.
        backend: ``"auto"`` (default), ``"fast"`` or ``"reference"`` (see the module docstring).

    See :meth:`forward` for the inputs and outputs.

    >>> gru = GRU(8, 16, num_layers=2)
    >>> output, h_n, trace = gru(torch.randn(3, 5, 8), record=True)
    >>> output.shape, h_n.shape, trace.get(1, 0, "z").shape
    (torch.Size([3, 5, 16]), torch.Size([2, 3, 16]), torch.Size([3, 5, 16]))
    """

    mode = "GRU"
    gates = 3
    recorded_names = ("h", "r", "z", "n")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        batch_first: bool = True,
        backend: str = "auto",
    ):
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout, batch_first, backend)

    def _step(self, x: Tensor, state: State, weights: list[Tensor]) -> tuple[State, dict[str, Tensor]]:
        h, gates = GRUCell.step(x, state[0], *weights)
        return (h,), gates
