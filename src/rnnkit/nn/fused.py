"""The layers' fast path: PyTorch's fused recurrent kernels run on the layer's own parameters.

PyTorch's kernels (oneDNN on CPU, cuDNN on GPU, a native fallback elsewhere) run a whole stack of
layers over a batch in one call, from a flat list of weights in the order ``weight_ih, weight_hh,
bias_ih, bias_hh`` per layer and direction -- the order :class:`rnnkit.nn.LSTM` keeps its parameters
in, so no weight is copied and gradients reach the layer's parameters directly.

Three ways to run a batch, all equal to the reference path (the tests prove it):

``full``
    every sequence is ``L`` long (``lengths=None``): one call for the whole stack.
``padded`` (ragged batches; the default)
    one call per layer on the padded batch, run time-major (``[L, N, ·]``, the kernels' own layout,
    so they copy no input). Because padding only ever trails, the forward direction's real steps
    are exact, whatever the padding holds; its final ``h`` is read at each sequence's last real
    step, and the output is zero at padded steps. Two more things make the rest exact (a
    unidirectional GRU or RNN needs neither):

    * *frozen padding* (LSTM; a bidirectional GRU with no initial state): the first layer's input is
      zeroed at padded steps, and every layer gets one extra input feature, 1.0 at padded steps and
      0.0 at real ones, whose weights (a cached constant column) push the gates to saturation --
      LSTM ``i = 0, f = 1, o = 0`` and GRU ``z = 1``, exactly, in floating point. Padded steps then
      leave ``c`` (LSTM) and ``h`` (GRU) unchanged, so the kernel's own final cell state is the one
      at the last real step; an LSTM's output there is ``0 ⊙ tanh(c) = 0``, which is also what the
      next layer reads; and the reverse direction, which meets the trailing padding first, starts
      at each sequence's last real token with its initial state still zero. (The extended
      ``weight_ih`` is a concatenation built per call, a few kilobytes; gradients flow through it
      to the layer's parameter.) On CPU the zeroing is a product, 5x cheaper than ``where``, and
      the final state is checked: inf or NaN in the padding would turn into NaN, and then the batch
      runs again with ``where``, which drops whatever the padding holds.
    * *per-sequence reversal* (bidirectional plain RNN, which has no gates, and any bidirectional
      cell given an initial state):
      the reverse direction runs on each sequence reversed within its own length
      (``t -> len - 1 - t``), which puts its padding at the end too.

    On CPU, large ragged batches are first cut into a few groups of similar lengths
    (:func:`group_count`), so less padding is computed.
``packed``
    ``pack_padded_sequence`` and the kernels' packed entry point, as ``torch.nn.LSTM`` does. Used
    only where it wins (:func:`prefers_packing`): GRU and plain RNN inference on CPU, when the
    batch has enough padding to skip.

Which wins was measured on torch 2.11-2.13, single-threaded CPU and an H100 (ragged lengths 5-80):
padded LSTM training runs 2-6x faster than packed on CPU (oneDNN runs only padded LSTMs), and LSTMs
and GRUs run 1.3-4x faster padded than packed on the H100. ``benchmarks/layers.py`` measures it again.

``full`` and ``padded`` with one group are a fixed graph of tensor operations (no Python decisions
on tensor values), so ``torch.jit.trace`` and ONNX export capture them for any batch size and
length; the layers use only those while tracing.

Shapes: ``N`` batch, ``L`` length, ``D`` directions, ``H`` hidden, ``E`` input features; ``x`` is
batch-first ``[N, L, E]``; a state is a tuple ``(h,)`` or ``(h, c)`` of ``[num_layers·D, N, H]``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings

import torch
import torch.nn.functional as F
from torch import _VF, Tensor
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

__all__ = [
    "full",
    "padded",
    "packed",
    "prefers_packing",
    "group_count",
    "step_mask",
    "zero_state",
    "weights_built_per_call",
]

State = tuple[Tensor, ...]

_KERNELS = {"LSTM": _VF.lstm, "GRU": _VF.gru, "RNN_TANH": _VF.rnn_tanh, "RNN_RELU": _VF.rnn_relu}
_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}

# A pre-activation of ±1e4 puts σ at exactly 1.0 or 0.0 in float16/32/64 and dwarfs anything a
# trained network adds to it (its inputs are zero at padded steps, and |h| <= 1 for LSTM and GRU).
_SATURATE = 1e4


def _per_direction(weights: list[Tensor], num_layers: int, bidirectional: bool) -> int:
    """How many weights each layer and direction has: 2 (no bias), 4, or one more with a projection."""
    return len(weights) // (num_layers * (2 if bidirectional else 1))


def _sizes(mode: str, weights: list[Tensor], per: int) -> tuple[int, int]:
    """``(H, P)``: the hidden size, and an LSTM's ``proj_size`` (0 without projection; ``per`` weights
    per layer and direction tell, a Python decision even while tracing)."""
    weight_hh = weights[1]  # [G*H, P or H]
    return weight_hh.shape[0] // _GATES[mode], weight_hh.shape[1] if per in (3, 5) else 0


def _call(
    mode: str,
    x: Tensor,
    state: State,
    weights: list[Tensor],
    num_layers: int,
    dropout: float,
    training: bool,
    bidirectional: bool,
    batch_first: bool = False,
) -> tuple[Tensor, State]:
    """One fused call: ``(output, final state)``, ``x`` and ``output`` batch-first (``[N, L, ·]``) or not."""
    hx = state if mode == "LSTM" else state[0]
    has_biases = _per_direction(weights, num_layers, bidirectional) >= 4
    kernel = _KERNELS[mode]
    if mode == "LSTM" and torch.compiler.is_compiling():
        kernel = _lstm_outside_the_graph
    output, *final = kernel(
        x, hx, weights, has_biases, num_layers, dropout, training, bidirectional, batch_first
    )
    return output, tuple(final)


@torch.compiler.disable
def _lstm_outside_the_graph(*args):
    """The fused LSTM kernel, left out of a ``torch.compile`` graph as ``torch.nn.LSTM`` is.

    Inductor's CPU decomposition of ``aten.lstm`` (into ``mkldnn_rnn_layer``) fails on torch 2.13
    ("expected Tensor() for op: torch.ops.aten.mkldnn_rnn_layer.default"); run eagerly, it is exact.
    """
    return _VF.lstm(*args)


def full(
    mode: str,
    x: Tensor,
    state: State,
    weights: list[Tensor],
    num_layers: int,
    dropout: float,
    training: bool,
    bidirectional: bool,
) -> tuple[Tensor, State]:
    """Every sequence is ``L`` long: the whole stack in one fused call."""
    return _call(mode, x, state, weights, num_layers, dropout, training, bidirectional, batch_first=True)


def zero_state(mode: str, x: Tensor, rows: int, hidden_size: int, proj_size: int = 0) -> State:
    """The all-zero state for ``x``'s batch: ``(h,)`` or ``(h, c)``, ``h`` ``[rows, N, P]`` (``P`` the
    LSTM's ``proj_size``, or ``H``) and ``c`` ``[rows, N, H]``."""
    zeros = x.new_zeros(rows, x.shape[0], proj_size or hidden_size)
    if mode != "LSTM":
        return (zeros,)
    return zeros, x.new_zeros(rows, x.shape[0], hidden_size)


def step_mask(lengths: Tensor, steps: int) -> Tensor:
    """``[N, L]`` bool, True at each sequence's real steps ``t < length``."""
    return torch.arange(steps, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


def _reverse_each(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse every sequence of time-major ``x`` ``[L, N, ·]`` within its own length
    (``t -> len-1-t``); padding stays in place.

    The map is its own inverse, so the same call also undoes it.
    """
    steps, n = x.shape[0], x.shape[1]
    t = torch.arange(steps, device=x.device).unsqueeze(1)  # (L, 1)
    last = (lengths - 1).unsqueeze(0)  # (1, N)
    source = torch.where(t <= last, last - t, t)  # (L, N)
    rows = source * n + torch.arange(n, device=x.device)  # (L, N) into (L*N, ...)
    return x.reshape(steps * n, -1).index_select(0, rows.reshape(-1)).reshape(x.shape)


@functools.lru_cache(maxsize=32)
def _saturating_column(mode: str, rows: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """The extra input column that freezes the state at padded steps (see the module docstring).

    A constant, built once per cell, size, dtype and device.
    """
    h = rows // (4 if mode == "LSTM" else 3)
    column = torch.zeros(rows, 1, dtype=dtype, device=device)  # (G*H, 1)
    if mode == "LSTM":  # gates i, f, g, o: i -> 0, f -> 1, o -> 0
        column[:h] = -_SATURATE
        column[h : 2 * h] = _SATURATE
        column[3 * h :] = -_SATURATE
    else:  # gates r, z, n: z -> 1
        column[h : 2 * h] = _SATURATE
    return column


def _with_padding_feature(mode: str, weights: list[Tensor], per: int) -> list[Tensor]:
    """Each direction's ``weight_ih`` (every ``per``-th weight) with the saturating column appended
    (``[G·H, E+1]``)."""
    out = list(weights)
    # torch.compile folds the constant into its graph; the cache is for eager calls
    column = _saturating_column.__wrapped__ if torch.compiler.is_compiling() else _saturating_column
    for i in range(0, len(out), per):
        w = out[i]
        out[i] = torch.cat([w, column(mode, w.shape[0], w.dtype, w.device)], dim=1)
    return out


def _zero_padding(x: Tensor, padded_steps: Tensor, padding: Tensor, robust: bool) -> Tensor:
    """Time-major ``x`` ``[L, N, E]`` with zeros at padded steps (``padded_steps`` ``[L, N, 1]`` bool,
    ``padding`` its 0/1 float copy).

    ``robust`` uses ``where``, which drops whatever the padding holds, even inf or NaN; otherwise a
    product, 5x faster on CPU and just as exact for finite padding -- but ``inf · 0`` is NaN, so a
    caller taking the product checks the result (see :func:`padded`).
    """
    return torch.where(padded_steps, 0.0, x) if robust else x * (1.0 - padding)


def padded(
    mode: str,
    x: Tensor,
    lengths: Tensor,
    state: State | None,
    weights: list[Tensor],
    num_layers: int,
    dropout: float,
    training: bool,
    bidirectional: bool,
    groups: int = 1,
    checked: bool = False,
) -> tuple[Tensor, State]:
    """A ragged batch on its padding, layer by layer (see the module docstring).

    The layers run time-major (``[L, N, ·]``), the kernels' own layout, so they copy no input.

    Args:
        state: the initial state, or None for zeros.
        lengths: ``[N]`` int64 on ``x``'s device, each in ``1..L``.
        groups: run the batch as this many groups of similar lengths (see :func:`group_count`),
            each on its own, shorter padding. 1 (default) keeps the graph free of data-dependent
            shapes, as tracing needs.
        checked: zero the padding by a product rather than ``where`` (CPU), then check that the
            final state is finite and, if it is not (inf or NaN in the padding, or in the input),
            run the batch again with ``where``. Not while tracing: the check is a Python decision.

    Returns:
        ``output`` ``[N, L, D·H]`` with zeros at padded steps, and the final state taken at each
        sequence's last real step.
    """
    config = (weights, num_layers, dropout, training, bidirectional)
    if groups > 1:
        return _in_length_groups(mode, x, lengths, state, config, groups, checked)
    if not checked or not _frozen(mode, state, bidirectional):
        return _padded(mode, x, lengths, state, config, robust=True)
    output, final = _padded(mode, x, lengths, state, config, robust=False)
    if math.isfinite(sum(float(s.detach().sum()) for s in final)):  # NaN or inf if any term is
        return output, final
    return _padded(mode, x, lengths, state, config, robust=True)  # inf or NaN somewhere: drop the padding's


def _frozen(mode: str, state: State | None, bidirectional: bool) -> bool:
    """Whether :func:`padded` freezes the state at padded steps (see the module docstring).

    LSTM's final c is the kernel's own, so it needs frozen padding; so does a bidirectional GRU
    without initial state, whose reverse direction then shares the forward one's call. Every final h
    is read from the output, and a forward direction (or a reversed sequence) never reads its
    trailing padding.
    """
    return mode == "LSTM" or (mode == "GRU" and state is None and bidirectional)


def _padded(
    mode: str, x: Tensor, lengths: Tensor, state: State | None, config: tuple, robust: bool
) -> tuple[Tensor, State]:
    """:func:`padded` in one group, zeroing the padding with ``where`` (``robust``) or a product."""
    weights, num_layers, dropout, training, bidirectional = config
    n, steps = x.shape[0], x.shape[1]
    d = 2 if bidirectional else 1
    per = _per_direction(weights, num_layers, bidirectional)
    frozen = _frozen(mode, state, bidirectional)
    one_call = frozen and state is None and d == 2  # the reverse direction starts from zeros too
    if state is None:  # the kernels only read it, so h_0 and c_0 can share one tensor of zeros
        hidden_size, proj_size = _sizes(mode, weights, per)
        zeros = x.new_zeros(num_layers * d, n, hidden_size)
        h_zeros = x.new_zeros(num_layers * d, n, proj_size) if proj_size else zeros
        state = (h_zeros, zeros) if mode == "LSTM" else (zeros,)
    last = lengths - 1
    padded_steps = (torch.arange(steps, device=x.device).unsqueeze(1) > last).unsqueeze(-1)  # (L, N, 1)
    padding = padded_steps.to(x.dtype) if frozen else None  # the extra input feature of frozen padding
    finals: list[State] = []
    layer_input = x.transpose(0, 1)  # (L, N, E)
    for k in range(num_layers):
        layer_weights = weights[per * d * k : per * d * (k + 1)]
        layer_state = state if num_layers == 1 else tuple(s[d * k : d * (k + 1)] for s in state)
        if frozen:  # later layers read bounded outputs: the saturated gates dwarf them
            if k == 0:
                layer_input = _zero_padding(layer_input, padded_steps, padding, robust)
            layer_input = torch.cat([layer_input, padding], dim=-1)  # (L, N, E+1)
            layer_weights = _with_padding_feature(mode, layer_weights, per)
        with weights_built_per_call(x):
            if d == 1 or one_call:
                output, final = _call(mode, layer_input, layer_state, layer_weights, 1, 0.0, training, d == 2)
            else:
                output, final = _reverse_in_own_call(
                    mode, layer_input, lengths, layer_state, layer_weights, training, per
                )
        h_n = _last_real_steps(output, last, d)
        # The kernel's final c is exact (frozen padding); its final h is not (h = o ⊙ tanh(c) moves).
        finals.append((h_n, final[1]) if mode == "LSTM" else (h_n,))
        layer_input = output  # (L, N, D*H); padded steps only ever reach later padded steps
        if dropout and training and k < num_layers - 1:
            layer_input = F.dropout(layer_input, dropout, training)
    if mode != "LSTM":  # an LSTM's frozen padding already zeroed them (o = 0 there)
        layer_input = torch.where(padded_steps, 0.0, layer_input)
    output = layer_input.transpose(0, 1)  # (N, L, D*H), a view, as torch.nn.LSTM(batch_first=True) returns
    if num_layers == 1:
        return output, finals[0]
    return output, tuple(torch.cat(parts) for parts in zip(*finals, strict=True))


def weights_built_per_call(x: Tensor) -> contextlib.AbstractContextManager:
    """Silence cuDNN's advice to flatten weights where they are built for every call (the padded path,
    the layers' ``weight_drop``)."""
    return _quiet_cudnn() if x.is_cuda else contextlib.nullcontext()


@contextlib.contextmanager
def _quiet_cudnn():
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="RNN module weights are not part of single contiguous chunk"
        )
        yield


# Packing costs a fixed ~0.1-0.6 ms (sorting, packing, unpacking); it pays once the padding it skips
# (padded steps × hidden size) is worth more. Fitted to GRU inference on this repository's CPU runs.
PACKING_PAYS = 2**16


def prefers_packing(
    mode: str, x: Tensor, lengths: Tensor, hidden_size: int, bidirectional: bool = False
) -> bool:
    """Whether to pack this ragged batch rather than run it on its padding.

    Only on CPU, for GRU and plain RNN, when no backward pass will follow (``torch.no_grad``):
    PyTorch runs those cells with the same native kernel padded or packed (oneDNN only takes
    LSTMs), so without a backward pass to speed up, skipping the padding wins -- unless, in one
    direction, the padding is too little to pay for packing (a bidirectional layer always packs:
    on its padding it needs frozen padding or per-sequence reversal, more work than packing).
    Training, LSTMs, and every cell on GPU are faster on the padded path (measured; see
    docs/benchmarks.md).

    >>> with torch.no_grad():
    ...     x = torch.zeros(64, 80, 8)
    ...     big = prefers_packing("GRU", x, torch.full((64,), 40), hidden_size=128)    # 2,560 padded steps
    ...     small = prefers_packing("GRU", x[:16], torch.full((16,), 40), hidden_size=32)  # 640 of H=32
    ...     both_ways = prefers_packing("GRU", x[:16], torch.full((16,), 40), 32, bidirectional=True)
    >>> big, small, both_ways, prefers_packing("LSTM", x, torch.full((64,), 40), hidden_size=128)
    (True, False, True, False)
    """
    if x.device.type != "cpu" or mode == "LSTM" or torch.is_grad_enabled():
        return False
    if bidirectional:
        return True
    padding = x.shape[0] * x.shape[1] - int(lengths.sum())
    return padding * hidden_size >= PACKING_PAYS


def group_count(lengths: Tensor, mode: str, hidden_size: int, max_groups: int = 4, min_size: int = 8) -> int:
    """How many groups of similar lengths to run a ragged batch as (CPU; always 1 on GPU).

    Sorted by length and cut into ``g`` equal parts of at least ``min_size`` sequences, a batch
    costs about ``sum over parts of longest · (step_overhead + size)`` sequence-steps: each part
    computes its own padding, and each step of a call costs a fixed ``step_overhead`` sequences'
    worth of work -- about 512/H for oneDNN's LSTM and 4096/H for the native GRU and RNN kernels,
    fitted to single-thread runs. This returns the ``g <= max_groups`` of least cost (the fewest,
    on ties). On GPU, the extra launches and host syncs cost more than the padding saved.

    >>> group_count(torch.tensor([80, 79, 10, 9]), "LSTM", 128)      # too few sequences to split
    1
    >>> group_count(torch.tensor([80] * 32 + [10] * 32), "LSTM", 128)
    2
    """
    if lengths.device.type != "cpu" or len(lengths) < 2 * min_size:
        return 1
    step_overhead = (512 if mode == "LSTM" else 4096) / hidden_size
    ordered = sorted(lengths.tolist(), reverse=True)
    n = len(ordered)

    def cost(g: int) -> float:
        size = -(-n // g)  # torch.chunk's part size
        return sum(ordered[i] * (step_overhead + min(size, n - i)) for i in range(0, n, size))

    candidates = [g for g in range(1, max_groups + 1) if g == 1 or n // g >= min_size]
    return min(candidates, key=cost)


def _in_length_groups(
    mode: str, x: Tensor, lengths: Tensor, state: State | None, config: tuple, groups: int, checked: bool
) -> tuple[Tensor, State]:
    """:func:`padded` on ``groups`` groups of similar lengths, put back in batch order."""
    weights, num_layers, _, _, bidirectional = config
    d = 2 if bidirectional else 1
    hidden_size, proj_size = _sizes(mode, weights, _per_direction(weights, num_layers, bidirectional))
    output = x.new_zeros(x.shape[0], x.shape[1], d * (proj_size or hidden_size))
    finals = zero_state(mode, x, num_layers * d, hidden_size, proj_size)  # filled group by group, like output
    for rows in torch.argsort(lengths, descending=True, stable=True).chunk(groups):
        longest = int(lengths[rows[0]])
        part_state = None if state is None else tuple(s[:, rows] for s in state)
        part_output, part_final = padded(
            mode, x[rows, :longest], lengths[rows], part_state, *config, checked=checked
        )
        output[rows, :longest] = part_output  # (n_g, L_g, D*H) into (N, L, D*H)
        for final, part in zip(finals, part_final, strict=True):
            final[:, rows] = part
    return output, finals


def _reverse_in_own_call(
    mode: str, x: Tensor, lengths: Tensor, state: State, weights: list[Tensor], training: bool, per: int
) -> tuple[Tensor, State]:
    """One time-major bidirectional layer as two calls, the reverse one on each sequence reversed in place."""
    forward, forward_final = _call(
        mode, x, tuple(s[:1] for s in state), weights[:per], 1, 0.0, training, False
    )
    backward, backward_final = _call(
        mode, _reverse_each(x, lengths), tuple(s[1:] for s in state), weights[per:], 1, 0.0, training, False
    )
    output = torch.cat([forward, _reverse_each(backward, lengths)], dim=-1)  # (L, N, 2*H)
    final = tuple(torch.cat(pair) for pair in zip(forward_final, backward_final, strict=True))
    return output, final


def _last_real_steps(output: Tensor, last: Tensor, d: int) -> Tensor:
    """``h_n`` ``[D, N, H]`` from time-major ``output`` ``[L, N, D·H]``: forward at each sequence's
    last real step (``last = lengths - 1``), reverse at its first."""
    n, h = output.shape[1], output.shape[2] // d
    at_last = last.view(1, n, 1).expand(1, n, h)
    forward = (output if d == 1 else output[:, :, :h]).gather(0, at_last)  # (1, N, H)
    return forward if d == 1 else torch.cat([forward, output[:1, :, h:]])  # (D, N, H)


def packed(
    mode: str,
    x: Tensor,
    lengths: Tensor,
    state: State | None,
    weights: list[Tensor],
    num_layers: int,
    dropout: float,
    training: bool,
    bidirectional: bool,
) -> tuple[Tensor, State]:
    """A ragged batch packed, as ``torch.nn.LSTM`` runs a ``PackedSequence`` (see :func:`prefers_packing`)."""
    batch = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    rows = num_layers * (2 if bidirectional else 1)
    if state is None:  # zeros need no sorting
        state = zero_state(
            mode, x, rows, *_sizes(mode, weights, _per_direction(weights, num_layers, bidirectional))
        )
    else:
        state = tuple(s.index_select(1, batch.sorted_indices) for s in state)
    hx = state if mode == "LSTM" else state[0]
    has_biases = _per_direction(weights, num_layers, bidirectional) >= 4
    data, *final = _KERNELS[mode](
        batch.data, batch.batch_sizes, hx, weights, has_biases, num_layers, dropout, training, bidirectional
    )
    result = PackedSequence(data, batch.batch_sizes, batch.sorted_indices, batch.unsorted_indices)
    output, _ = pad_packed_sequence(result, batch_first=True, total_length=x.shape[1])
    return output, tuple(s.index_select(1, batch.unsorted_indices) for s in final)
