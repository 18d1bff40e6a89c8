"""Recurrent layers: the cells of :mod:`rnnkit.nn.cells` run over time, both ways, stacked.

A layer owns time: it runs its cell over every step of a batch of sequences, in one or both
directions, through ``num_layers`` stacked layers, and returns every step's output and the final
state. :class:`RNN`, :class:`LSTM` and :class:`GRU` are drop-ins for ``torch.nn.RNN``, ``torch.nn.LSTM``
and ``torch.nn.GRU``: the same constructor (``batch_first=False`` by default, ``bias``, ``proj_size``,
``device``, ``dtype``), the same call ``layer(input, hx)`` on a tensor (batched or one unbatched
sequence) or a ``PackedSequence``, the same errors, attributes and parameter names
(``weight_ih_l0``, ``weight_hh_l0_reverse``, ``bias_ih_l1``, ``weight_hr_l0`` …), so state dicts
move both ways. rnnkit adds, as keyword-only arguments:

* ``lengths=`` — a ragged padded batch: output zero at padded steps, final states taken at each
  sequence's own last real token, the reverse direction starting there;
* ``record=True`` — also return a :class:`~rnnkit.nn.Trace` of every step's states and gates;
* ``backend=`` (constructor) — two ways to compute the same numbers:

  * ``"reference"`` runs the cell equations (:func:`~rnnkit.nn.cells.lstm_step` …) step by step with
    the layer's own parameters: the code to read, and the one that can record gates;
  * ``"fast"`` runs PyTorch's fused kernels on the very same parameters (:mod:`rnnkit.nn.fused`),
    ragged batches (``lengths=`` or a ``PackedSequence``) on their padding, exactly;
  * ``"auto"`` (default) is ``"fast"``, except when recording;

* ``weight_drop=`` and ``locked_dropout=`` (constructor) — AWD-LSTM's regularisation of the
  recurrence (Merity, Keskar & Socher 2018, "Regularizing and Optimizing LSTM Language Models"),
  in training only:

  * ``weight_drop = p`` is DropConnect (Wan et al. 2013, "Regularization of Neural Networks using
    DropConnect") on every hidden-to-hidden matrix: each forward call draws a mask
    ``M ~ Bernoulli(1 − p)`` per ``weight_hh_l{k}[_reverse]`` and runs with
    ``W_hh' = W_hh ⊙ M / (1 − p)``, the same dropped matrix at every step of the call. This
    regularises the recurrent connections while the fused kernels run unchanged, on the dropped
    matrices; the parameters are untouched, and gradients reach them through the mask;
  * ``locked_dropout = True`` makes the between-layer ``dropout`` variational (Gal & Ghahramani 2016,
    "A Theoretically Grounded Application of Dropout in Recurrent Neural Networks"): one mask per
    sequence and feature, ``[N, 1, D·P]``, shared by all time steps, instead of one per element
    (:func:`~rnnkit.nn.regularize.locked_dropout`). The fast path then runs the stack one layer at
    a time, the mask between the calls.

  Both backends draw the same masks in the same order, so with the same seed they agree.

``torch.jit.script`` compiles a layer as PyTorch's own module on the same parameters (the fast path;
``lengths=`` and ``record=`` are for eager calls and tracing, and the scripted module knows neither
``weight_drop`` nor ``locked_dropout``: it is for inference); ``torch.compile`` runs the fast path.

Shape legend: ``N`` batch, ``L`` length, ``D`` directions (2 if bidirectional), ``H`` hidden,
``P`` the LSTM's ``proj_size`` (``H`` without projection), ``E`` input features.
"""

from __future__ import annotations

import numbers
import warnings
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from . import fused, regularize
from .cells import add_forget_bias, gru_step, init_uniform, lstm_step, rnn_step
from .checks import (
    State,
    as_states,
    check_input,
    check_lengths,
    check_state_ranks,
    check_state_sizes,
)
from .scripted import scriptable
from .trace import Trace

__all__ = ["RNN", "LSTM", "GRU"]

BACKENDS = ("auto", "fast", "reference")

# The weights of one layer and direction: weight_ih, weight_hh, bias_ih, bias_hh, weight_hr (None if absent)
Weights = tuple[Tensor, Tensor, Tensor | None, Tensor | None, Tensor | None]


def _is_tracing() -> bool:
    """True while torch.jit.trace, torch.compile, torch.export or ONNX export record the computation."""
    return (
        torch.jit.is_tracing()
        or torch.onnx.is_in_onnx_export()
        or torch.compiler.is_compiling()
        or torch.compiler.is_exporting()
    )


def _check_regularisation(weight_drop, locked_dropout) -> None:
    """rnnkit's own constructor checks, for ``weight_drop`` and ``locked_dropout``."""
    if not isinstance(weight_drop, numbers.Real) or isinstance(weight_drop, bool) or not 0 <= weight_drop < 1:
        raise ValueError(
            "weight_drop should be a number in range [0, 1) (the probability of zeroing a hidden-to-hidden "
            f"weight), got {weight_drop!r}"
        )
    if not isinstance(locked_dropout, bool):
        raise TypeError(
            "locked_dropout should be of type bool, got: "
            f"{type(locked_dropout).__name__} ({locked_dropout!r})"
        )


def _check_arguments(input_size, hidden_size, num_layers, bias, batch_first, dropout, proj_size) -> None:
    """PyTorch's constructor checks (the same exception types), each naming the value it got."""
    if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
        raise ValueError(
            "dropout should be a number in range [0, 1] (the probability of zeroing an element), "
            f"got {dropout!r}"
        )
    for name, value in (("bias", bias), ("batch_first", batch_first)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} should be of type bool, got: {type(value).__name__} ({value!r})")
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        if not isinstance(value, int):
            raise TypeError(f"{name} should be of type int, got: {type(value).__name__} ({value!r})")
        if value <= 0:
            raise ValueError(f"{name} must be greater than zero, got {value}")
    if not isinstance(proj_size, int) or proj_size < 0:
        raise ValueError(
            f"proj_size should be a positive integer or zero to disable projections, got {proj_size!r}"
        )
    if proj_size >= hidden_size:
        raise ValueError(f"proj_size has to be smaller than hidden_size, got {proj_size} >= {hidden_size}")


class _Recurrent(nn.RNNBase):
    """What RNN, LSTM and GRU share: PyTorch's parameters and attributes, the checks, the two backends.

    A ``torch.nn.RNNBase``: ``_flat_weights`` / ``_flat_weights_names``, ``all_weights``,
    ``flatten_parameters`` and the rest are PyTorch's own.
    """

    recorded_names: tuple[str, ...]  # what record=True returns per layer and direction
    # Class-level defaults as well, for layers pickled whole before these arguments existed
    weight_drop: float = 0.0  # DropConnect probability on every weight_hh, in training
    locked_dropout: bool = False  # the between-layer dropout: one mask per sequence, for all steps

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int,
        bias: bool,
        batch_first: bool,
        dropout: float,
        bidirectional: bool,
        proj_size: int,
        device,
        dtype,
        backend: str,
        weight_drop: float,
        locked_dropout: bool,
    ):
        _check_arguments(input_size, hidden_size, num_layers, bias, batch_first, dropout, proj_size)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
        _check_regularisation(weight_drop, locked_dropout)
        self.backend = backend
        self.weight_drop = float(weight_drop)
        self.locked_dropout = locked_dropout
        super().__init__(
            mode,
            input_size,
            hidden_size,
            num_layers,
            bias,
            batch_first,
            dropout,
            bidirectional,
            proj_size,
            device=device,
            dtype=dtype,
        )

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def reset_parameters(self) -> None:
        """Draw every parameter uniform in ``[-1/√H, 1/√H]`` (PyTorch's initialisation)."""
        init_uniform(self.parameters(), self.hidden_size)

    def _weights(self, weights: list[Tensor], layer: int, direction: int) -> Weights:
        """``(weight_ih, weight_hh, bias_ih, bias_hh, weight_hr)`` of one layer and direction."""
        per = len(weights) // (self.num_layers * self.num_directions)  # 2 to 5
        start = per * (layer * self.num_directions + direction)
        own = weights[start : start + per]
        biases = (own[2], own[3]) if self.bias else (None, None)
        return own[0], own[1], *biases, own[-1] if self.proj_size > 0 else None

    def _current_weights(self) -> list[Tensor]:
        """All weights in the fused kernels' order: per layer and direction, ih, hh, b_ih, b_hh, hr."""
        if torch.compiler.is_compiling():  # looked up afresh: no weak references in a compiled graph
            return [getattr(self, name) for name in self._flat_weights_names]
        self._update_flat_weights()  # as torch.nn.LSTM: weights swapped by functional_call, weight_norm …
        return self._flat_weights

    def _drop_hidden_weights(self, weights: list[Tensor]) -> list[Tensor]:
        """``weights`` with DropConnect on every ``weight_hh``: ``W_hh' = W_hh ⊙ M / (1 − p)``,
        ``M ~ Bernoulli(1 − p)`` drawn afresh (Wan et al. 2013; AWD-LSTM's weight drop).

        A new list; the parameters themselves are untouched, and their gradients flow through ``M``.
        """
        per = len(weights) // (self.num_layers * self.num_directions)  # ih, hh, b_ih, b_hh, hr
        dropped = list(weights)
        for i in range(1, len(dropped), per):  # each layer and direction's weight_hh
            dropped[i] = F.dropout(dropped[i], self.weight_drop, training=True)
        return dropped

    def _between_layers(self, output: Tensor) -> Tensor:
        """The training-time dropout on a layer's output ``[N, L, D·P]`` before the next layer reads it."""
        if self.locked_dropout:  # one mask (N, 1, D*P) for every step
            return regularize.locked_dropout(output, self.dropout)
        return F.dropout(output, self.dropout, training=True)

    def forward(self, input, hx=None, *, lengths: Tensor | None = None, record: bool = False):
        """Run the layer over a batch of sequences, as ``torch.nn.LSTM`` (GRU, RNN) does.

        Args:
            input: ``[L, N, E]`` (``[N, L, E]`` if ``batch_first``), one unbatched sequence ``[L, E]``,
                or a ``PackedSequence`` (the output is then packed likewise).
            hx: the initial state, ``h_0`` (``(h_0, c_0)`` for LSTM), ``h_0`` ``[num_layers·D, N, P]``
                and ``c_0`` ``[num_layers·D, N, H]`` (no ``N`` for unbatched input); None for zeros.
            lengths: (rnnkit) ``[N]`` integer tensor, each sequence's real length in ``1..L`` (CPU or
                the input's device); steps at and after it are padding. None: every sequence is ``L`` long.
            record: (rnnkit) also return a :class:`Trace` of every step's states and gates. Recording
                always runs the reference path (the fused kernels do not expose gates).

        Returns:
            ``(output, h_n)`` (``(output, (h_n, c_n))`` for LSTM), plus a :class:`Trace` with
            ``record=True``. ``output`` is ``[L, N, D·P]`` (``[N, L, D·P]`` if ``batch_first``), the last
            layer's states with both directions side by side, zero at padded steps. ``h_n`` and ``c_n``
            are ``[num_layers·D, N, P]`` and ``[num_layers·D, N, H]`` with row ``k·D + d`` for layer
            ``k`` and direction ``d``, taken at each sequence's own last real token (the reverse
            direction ends at the first token, having started at the last real one).

        Raises:
            ValueError: input not 2-D or 3-D, of another dtype than the parameters; ``lengths`` of
                the wrong shape, dtype or range.
            RuntimeError: a feature size, batch size or state shape that does not match (PyTorch's
                messages), or ``L = 0``.
            TypeError: input not a tensor or ``PackedSequence``; an LSTM state not a pair.
        """
        if isinstance(input, PackedSequence):
            if lengths is not None:
                raise ValueError(
                    "lengths= is for a padded tensor input; a PackedSequence carries its lengths"
                )
            return self._forward_packed_sequence(input, hx, record)
        tracing = _is_tracing()  # a trace records operations; checks would be frozen into it
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise TypeError(f"{name}: input must be a Tensor or a PackedSequence, got {type(input).__name__}")
        if input.dim() not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}D tensor instead")
        batched = input.dim() == 3
        states = as_states(hx)
        if not tracing:
            check_state_ranks(states, self.mode == "LSTM", batched, hx)
        batch_dim = 0 if self.batch_first else 1
        if not batched:
            if lengths is not None:
                raise ValueError("lengths= is for a batch of sequences; an unbatched [L, E] input has no N")
            input = input.unsqueeze(batch_dim)
            states = None if states is None else tuple(s.unsqueeze(1) for s in states)
        x = input if self.batch_first else input.transpose(0, 1)  # (N, L, E)
        output, final, trace = self._run(x, lengths, states, record, tracing)
        if not self.batch_first:
            output = output.transpose(0, 1)  # (L, N, D*P)
        if not batched:
            output = output.squeeze(batch_dim)
            final = tuple(s.squeeze(1) for s in final)
        final_state = final if self.mode == "LSTM" else final[0]
        return (output, final_state, trace) if record else (output, final_state)

    def _forward_packed_sequence(self, packed: PackedSequence, hx, record: bool):
        """A ``PackedSequence`` runs as the ragged padded batch it stands for, and comes back packed."""
        if packed.data.dim() != 2:
            raise RuntimeError(f"input must have 2 dimensions, got {packed.data.dim()}")
        states = as_states(hx)
        if not _is_tracing():
            check_state_ranks(states, self.mode == "LSTM", True, hx)
        x, lengths = pad_packed_sequence(packed, batch_first=True)  # (N, L, E), lengths in batch order
        output, final, trace = self._run(x, lengths, states, record, _is_tracing())
        if packed.sorted_indices is not None:  # back to the packing's order: longest first
            output = output.index_select(0, packed.sorted_indices)
            lengths = lengths[packed.sorted_indices.cpu()]
        data = pack_padded_sequence(output, lengths, batch_first=True).data  # (sum of lengths, D*P)
        output = PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices)
        final_state = final if self.mode == "LSTM" else final[0]
        return (output, final_state, trace) if record else (output, final_state)

    def _run(
        self, x: Tensor, lengths: Tensor | None, states: State | None, record: bool, tracing: bool
    ) -> tuple[Tensor, State, Trace | None]:
        """The layer on batch-first ``x`` ``[N, L, E]``: ``(output [N, L, D·P], final state, trace)``."""
        weights = self._current_weights()
        n, steps = x.shape[0], x.shape[1]
        if not tracing:
            check_input(x, self.input_size, weights[0].dtype)
            expected_h = [self.num_layers * self.num_directions, n, self.proj_size or self.hidden_size]
            check_state_sizes(states, self.mode == "LSTM", expected_h, self.hidden_size)
            if steps == 0:
                raise RuntimeError("Expected sequence length to be larger than 0 in RNN")
            if lengths is not None and check_lengths(lengths, n, steps, x.device) == steps:
                lengths = None  # no padding (or no sequence): every sequence takes the plain path
        if lengths is not None:
            lengths = lengths.to(device=x.device, dtype=torch.int64)
        if self.weight_drop and self.training:  # once, before either backend: both run the same matrices
            weights = self._drop_hidden_weights(weights)
        if record or self.backend == "reference":
            return self._forward_reference(x, lengths, states, weights, record)
        return (*self._forward_fast(x, lengths, states, weights, tracing), None)

    # -- fast path --------------------------------------------------------------------------------

    def _forward_fast(
        self, x: Tensor, lengths: Tensor | None, states: State | None, weights: list[Tensor], tracing: bool
    ) -> tuple[Tensor, State]:
        layer_by_layer = self.locked_dropout and self.dropout and self.training and self.num_layers > 1
        # Dropped matrices, or one layer's slice, are not cuDNN's flattened chunk: no advice to flatten
        rebuilt = layer_by_layer or (self.weight_drop and self.training)
        with fused.weights_built_per_call(x) if rebuilt else nullcontext():
            if layer_by_layer:
                return self._fast_layer_by_layer(x, lengths, states, weights, tracing)
            return self._fused(x, lengths, states, weights, self.num_layers, self.dropout, tracing)

    def _fast_layer_by_layer(
        self, x: Tensor, lengths: Tensor | None, states: State | None, weights: list[Tensor], tracing: bool
    ) -> tuple[Tensor, State]:
        """The stack one layer at a time (one fused call each), with locked dropout between the calls."""
        d = self.num_directions
        per = len(weights) // (self.num_layers * d) * d  # the weights of one layer, both directions
        finals: list[State] = []
        layer_input = x
        for k in range(self.num_layers):
            layer_states = None if states is None else tuple(s[d * k : d * (k + 1)] for s in states)
            output, final = self._fused(
                layer_input, lengths, layer_states, weights[per * k : per * (k + 1)], 1, 0.0, tracing
            )
            finals.append(final)
            layer_input = self._between_layers(output) if k < self.num_layers - 1 else output  # (N, L, D*P)
        return layer_input, tuple(torch.cat(parts) for parts in zip(*finals, strict=True))  # k*D + d rows

    def _fused(
        self,
        x: Tensor,
        lengths: Tensor | None,
        states: State | None,
        weights: list[Tensor],
        num_layers: int,
        dropout: float,
        tracing: bool,
    ) -> tuple[Tensor, State]:
        """``num_layers`` layers (all, or one) in :mod:`~rnnkit.nn.fused`'s calls, chosen for this batch."""
        config = (num_layers, dropout, self.training, self.bidirectional)
        if lengths is None:
            return fused.full(self.mode, x, states or self._zero_state(x, num_layers), weights, *config)
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

    def __prepare_scriptable__(self) -> nn.RNNBase:
        """What ``torch.jit.script`` compiles: PyTorch's own module on this layer's parameters.

        Its ``forward(input, hx=None)`` is this layer's fast path for a tensor, batched or not
        (see :mod:`rnnkit.nn.scripted`; ``lengths=`` and ``record=`` are for eager calls and tracing).
        As for any ``__prepare_scriptable__``, ``torch.jit.script(model)`` swaps it into ``model``.
        The twin runs PyTorch's own dropout and no ``weight_drop``: in training mode, a layer with
        ``weight_drop`` or ``locked_dropout`` warns that its scripted twin trains differently.
        """
        locked = self.locked_dropout and self.dropout and self.num_layers > 1
        if self.training and (self.weight_drop or locked):
            warnings.warn(
                f"torch.jit.script of a {type(self).__name__} in training mode: the scripted module applies "
                "neither weight_drop nor locked_dropout (it is for inference; call .eval() first)",
                stacklevel=2,
            )
        return scriptable(self)

    # -- reference path ---------------------------------------------------------------------------

    def _forward_reference(
        self, x: Tensor, lengths: Tensor | None, states: State | None, weights: list[Tensor], record: bool
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
                    layer_input, mask, initial, self._weights(weights, k, d), reverse=d == 1, record=record
                )
                outputs.append(output)
                finals.append(final)
                recorded[k].append(steps_seen)
            layer_input = torch.cat(outputs, dim=-1)  # (N, L, D*P)
            if self.dropout and self.training and k < self.num_layers - 1:
                layer_input = self._between_layers(layer_input)
        final_state = tuple(torch.stack(parts) for parts in zip(*finals, strict=True))
        return layer_input, final_state, Trace(recorded) if record else None

    def _scan(
        self, x: Tensor, mask: Tensor | None, state: State, weights: Weights, reverse: bool, record: bool
    ) -> tuple[Tensor, State, dict[str, Tensor]]:
        """One direction of one layer, step by step: ``(output [N, L, P], final state, recorded)``.

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

    def _step(self, x: Tensor, state: State, weights: Weights) -> tuple[State, dict[str, Tensor]]:
        """One time step of this layer's cell (see :mod:`rnnkit.nn.cells`)."""
        raise NotImplementedError

    def _zero_state(self, x: Tensor, num_layers: int | None = None) -> State:
        """The zero state of ``num_layers`` layers (default: all) for ``x``'s batch."""
        rows = (num_layers or self.num_layers) * self.num_directions
        return fused.zero_state(self.mode, x, rows, self.hidden_size, self.proj_size)

    def extra_repr(self) -> str:
        text = super().extra_repr()
        text += f", backend={self.backend!r}" if self.backend != "auto" else ""
        text += f", weight_drop={self.weight_drop}" if self.weight_drop else ""
        return text + (", locked_dropout=True" if self.locked_dropout else "")


class RNN(_Recurrent):
    r"""The plain recurrent layer: :class:`~rnnkit.nn.cells.RNNCell` over time; a drop-in ``torch.nn.RNN``.

    Args:
        input_size: E, features per step (e.g. the embedding size).
        hidden_size: H, the size of the state.
        num_layers: layers stacked; layer ``k+1`` reads layer ``k``'s output ``[…, D·H]``.
        nonlinearity: ``"tanh"`` (default) or ``"relu"``.
        bias: whether to learn ``b_ih`` and ``b_hh`` (default True).
        batch_first: ``input`` is ``[N, L, E]`` rather than ``[L, N, E]`` (default False, as PyTorch).
        dropout: dropout probability on each layer's output except the last, in training only.
        bidirectional: also run each layer from the last token to the first.
        device, dtype: where and in which precision to create the parameters.
        backend: (rnnkit, keyword only) ``"auto"`` (default), ``"fast"`` or ``"reference"`` (see the
            module docstring).
        weight_drop: (rnnkit, keyword only) DropConnect probability on every hidden-to-hidden matrix
            ``weight_hh_l{k}``, in ``[0, 1)``: in training, each call runs with
            ``W_hh ⊙ M / (1 − p)``, a fresh mask ``M`` per call (AWD-LSTM; see the module docstring).
        locked_dropout: (rnnkit, keyword only) make ``dropout`` variational: one mask per sequence and
            feature, shared by all time steps (AWD-LSTM's locked dropout).
        proj_size: only an LSTM projects; any value raises ValueError, as in PyTorch.

    See :meth:`~_Recurrent.forward` for the inputs and outputs.

    >>> rnn = RNN(8, 16, num_layers=2)                       # exactly torch.nn.RNN's call …
    >>> output, h_n = rnn(torch.randn(5, 3, 8))              # (L, N, E)
    >>> output.shape, h_n.shape
    (torch.Size([5, 3, 16]), torch.Size([2, 3, 16]))
    >>> rnn = RNN(8, 16, bidirectional=True, batch_first=True)  # … and rnnkit's ragged batches
    >>> output, h_n = rnn(torch.randn(3, 5, 8), lengths=torch.tensor([5, 2, 4]))
    >>> output.shape, bool(output[1, 2:].eq(0).all())       # padded steps are zero
    (torch.Size([3, 5, 32]), True)
    """

    recorded_names = ("h",)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        backend: str = "auto",
        weight_drop: float = 0.0,
        locked_dropout: bool = False,
        proj_size: None = None,
    ):
        if proj_size is not None:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity {nonlinearity!r}. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(
            mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
            device, dtype, backend, weight_drop, locked_dropout,
        )  # fmt: skip

    def _step(self, x: Tensor, state: State, weights: Weights) -> tuple[State, dict[str, Tensor]]:
        h, gates = rnn_step(x, state[0], *weights[:4], nonlinearity=self.nonlinearity)
        return (h,), gates

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text + (", nonlinearity='relu'" if self.nonlinearity == "relu" else "")


class LSTM(_Recurrent):
    r"""LSTM layer, :class:`~rnnkit.nn.cells.LSTMCell` over time: a drop-in ``torch.nn.LSTM``.

    Its state is a pair ``(h, c)``: ``h`` is what the layer outputs at each step, ``c`` the memory
    that the gates write to, keep and read from. With ``proj_size = P > 0``, each step's ``h`` is
    projected, ``h_t = W_hr (o_t ⊙ tanh(c_t))`` with ``weight_hr_l{k}`` ``[P, H]``, as in PyTorch.

    Args:
        input_size: E, features per step (e.g. the embedding size).
        hidden_size: H, the size of each state.
        num_layers: layers stacked; layer ``k+1`` reads layer ``k``'s output ``[…, D·P]``.
        bias: whether to learn ``b_ih`` and ``b_hh`` (default True).
        batch_first: ``input`` is ``[N, L, E]`` rather than ``[L, N, E]`` (default False, as PyTorch).
        dropout: dropout probability on each layer's output except the last, in training only.
        bidirectional: also run each layer from the last token to the first.
        proj_size: P, project ``h`` to this size (0, the default, for none).
        device, dtype: where and in which precision to create the parameters.
        backend: (rnnkit, keyword only) ``"auto"`` (default), ``"fast"`` or ``"reference"`` (see the
            module docstring).
        weight_drop: (rnnkit, keyword only) DropConnect probability on every hidden-to-hidden matrix
            ``weight_hh_l{k}``, in ``[0, 1)``: in training, each call runs with
            ``W_hh ⊙ M / (1 − p)``, a fresh mask ``M`` per call (AWD-LSTM; see the module docstring).
        locked_dropout: (rnnkit, keyword only) make ``dropout`` variational: one mask per sequence and
            feature, shared by all time steps (AWD-LSTM's locked dropout).
        forget_bias: (rnnkit, keyword only) added to every forget-gate bias ``b_if`` after the uniform
            initialisation (see :class:`~rnnkit.nn.cells.LSTMCell`); 0.0 (default) is PyTorch's.

    See :meth:`~_Recurrent.forward` for the inputs and outputs.

    >>> lstm = LSTM(8, 16)                                   # exactly torch.nn.LSTM's call …
    >>> output, (h_n, c_n) = lstm(torch.randn(5, 3, 8))      # (L, N, E)
    >>> output.shape, h_n.shape
    (torch.Size([5, 3, 16]), torch.Size([1, 3, 16]))
    >>> lstm = LSTM(8, 16, batch_first=True, bidirectional=True)   # … and rnnkit's ragged batches
    >>> output, (h_n, c_n) = lstm(torch.randn(3, 5, 8), lengths=torch.tensor([5, 2, 4]))
    >>> output.shape, h_n.shape, c_n.shape
    (torch.Size([3, 5, 32]), torch.Size([2, 3, 16]), torch.Size([2, 3, 16]))
    >>> torch.allclose(h_n[0, 1], output[1, 1, :16])   # forward direction ends at the last real token
    True
    >>> torch.allclose(h_n[1, 1], output[1, 0, 16:])   # reverse direction ends at the first token
    True
    """

    recorded_names = ("h", "c", "i", "f", "g", "o")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
        *,
        backend: str = "auto",
        weight_drop: float = 0.0,
        locked_dropout: bool = False,
        forget_bias: float = 0.0,
    ):
        self.forget_bias = float(forget_bias)
        super().__init__(
            "LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, proj_size,
            device, dtype, backend, weight_drop, locked_dropout,
        )  # fmt: skip

    def reset_parameters(self) -> None:
        """PyTorch's uniform initialisation, plus ``forget_bias`` on every forget gate's ``b_if``."""
        super().reset_parameters()
        for name in self._flat_weights_names:
            if name.startswith("bias_ih"):
                add_forget_bias(getattr(self, name), self.forget_bias)

    def _step(self, x: Tensor, state: State, weights: Weights) -> tuple[State, dict[str, Tensor]]:
        (h, c), gates = lstm_step(x, state, *weights[:4])
        if weights[4] is not None:  # the projection: h_t = W_hr (o_t ⊙ tanh(c_t))
            h = F.linear(h, weights[4])  # (N, P)
        return (h, c), gates

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text + (f", forget_bias={self.forget_bias}" if self.forget_bias else "")


class GRU(_Recurrent):
    r"""Gated recurrent unit layer: :class:`~rnnkit.nn.cells.GRUCell` over time; a drop-in ``torch.nn.GRU``.

    Args:
        input_size: E, features per step (e.g. the embedding size).
        hidden_size: H, the size of the state.
        num_layers: layers stacked; layer ``k+1`` reads layer ``k``'s output ``[…, D·H]``.
        bias: whether to learn ``b_ih`` and ``b_hh`` (default True).
        batch_first: ``input`` is ``[N, L, E]`` rather than ``[L, N, E]`` (default False, as PyTorch).
        dropout: dropout probability on each layer's output except the last, in training only.
        bidirectional: also run each layer from the last token to the first.
        device, dtype: where and in which precision to create the parameters.
        backend: (rnnkit, keyword only) ``"auto"`` (default), ``"fast"`` or ``"reference"`` (see the
            module docstring).
        weight_drop: (rnnkit, keyword only) DropConnect probability on every hidden-to-hidden matrix
            ``weight_hh_l{k}``, in ``[0, 1)``: in training, each call runs with
            ``W_hh ⊙ M / (1 − p)``, a fresh mask ``M`` per call (AWD-LSTM; see the module docstring).
        locked_dropout: (rnnkit, keyword only) make ``dropout`` variational: one mask per sequence and
            feature, shared by all time steps (AWD-LSTM's locked dropout).
        proj_size: only an LSTM projects; any value raises ValueError, as in PyTorch.

    See :meth:`~_Recurrent.forward` for the inputs and outputs.

    >>> gru = GRU(8, 16, num_layers=2, batch_first=True)
    >>> output, h_n, trace = gru(torch.randn(3, 5, 8), record=True)
    >>> output.shape, h_n.shape, trace.get(1, 0, "z").shape
    (torch.Size([3, 5, 16]), torch.Size([2, 3, 16]), torch.Size([3, 5, 16]))
    """

    recorded_names = ("h", "r", "z", "n")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device=None,
        dtype=None,
        *,
        backend: str = "auto",
        weight_drop: float = 0.0,
        locked_dropout: bool = False,
        proj_size: None = None,
    ):
        if proj_size is not None:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__(
            "GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional, 0,
            device, dtype, backend, weight_drop, locked_dropout,
        )  # fmt: skip

    def _step(self, x: Tensor, state: State, weights: Weights) -> tuple[State, dict[str, Tensor]]:
        h, gates = gru_step(x, state[0], *weights[:4])
        return (h,), gates
