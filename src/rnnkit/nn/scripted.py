"""What ``torch.jit.script`` compiles for :class:`rnnkit.nn.LSTM`, ``GRU`` and ``RNN``: their fast path.

TorchScript cannot compile the layers' Python (ragged batches, recording, keyword-only arguments), so
each layer's ``__prepare_scriptable__`` hands it one of these instead: PyTorch's own module class with
the layer's very parameters (same names, same tensors) and a ``forward(input, hx=None)`` for a tensor,
batched or unbatched -- the layer's fast path, one fused kernel call. Unlike ``torch.nn.LSTM``, whose
``forward`` is overloaded for ``PackedSequence`` and so cannot be scripted on its own, these script
as the top-level module too.

Shapes: ``N`` batch, ``L`` length, ``D`` directions, ``H`` hidden, ``P`` the LSTM's projection
(``H`` without one), ``E`` input features.
"""

from __future__ import annotations

import warnings
from typing import Optional

import torch
from torch import _VF, Tensor, nn

__all__ = ["ScriptedLSTM", "ScriptedGRU", "ScriptedRNN", "scriptable"]


def _check_rank(name: str, input: Tensor) -> bool:
    """Raise ValueError unless ``input`` is 2-D or 3-D (PyTorch's message); return whether it is batched."""
    if input.dim() not in (2, 3):
        raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.dim()}D tensor instead")
    return input.dim() == 3


def _batched_hidden(hx: Tensor, batched: bool) -> Tensor:
    """``hx`` ``[num_layers·D, N, H]``, from an unbatched ``[num_layers·D, H]`` too (checked as torch)."""
    if batched:
        if hx.dim() != 3:
            raise RuntimeError(f"For batched 3-D input, hx should also be 3-D but got {hx.dim()}-D tensor")
        return hx
    if hx.dim() != 2:
        raise RuntimeError(f"For unbatched 2-D input, hx should also be 2-D but got {hx.dim()}-D tensor")
    return hx.unsqueeze(1)


def _input_and_state(
    input: Tensor, hx: Optional[Tensor], batched: bool, batch_dim: int, rows: int, hidden_size: int  # noqa: UP045
) -> tuple[Tensor, Tensor]:
    """GRU / RNN: the input with a batch dimension, and the initial state (zeros when ``hx`` is None)."""
    if not batched:
        input = input.unsqueeze(batch_dim)
    if hx is None:
        h0 = torch.zeros(rows, input.size(batch_dim), hidden_size, dtype=input.dtype, device=input.device)
    else:
        h0 = _batched_hidden(hx, batched)
    return input, h0


class ScriptedLSTM(nn.LSTM):
    """``torch.nn.LSTM`` with a ``forward`` TorchScript compiles on its own: a tensor in, the fused kernel."""

    def forward(
        self,
        input: Tensor,
        hx: Optional[tuple[Tensor, Tensor]] = None,  # noqa: UP045 -- TorchScript reads this annotation
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        batched = _check_rank("LSTM", input)
        batch_dim = 0 if self.batch_first else 1
        if not batched:
            input = input.unsqueeze(batch_dim)
        n = input.size(batch_dim)
        rows = self.num_layers * (2 if self.bidirectional else 1)
        if hx is None:
            real_size = self.proj_size if self.proj_size > 0 else self.hidden_size
            h0 = torch.zeros(rows, n, real_size, dtype=input.dtype, device=input.device)
            c0 = torch.zeros(rows, n, self.hidden_size, dtype=input.dtype, device=input.device)
        else:
            rank = 3 if batched else 2
            if hx[0].dim() != rank or hx[1].dim() != rank:
                kind = "batched 3-D" if batched else "unbatched 2-D"
                raise RuntimeError(
                    f"For {kind} input, hx and cx should also be {rank}-D but got "
                    f"({hx[0].dim()}-D, {hx[1].dim()}-D) tensors"
                )
            h0 = _batched_hidden(hx[0], batched)
            c0 = _batched_hidden(hx[1], batched)
        self.check_forward_args(input, (h0, c0), None)
        output, h_n, c_n = _VF.lstm(
            input,
            (h0, c0),
            self._flat_weights,
            self.bias,
            self.num_layers,
            float(self.dropout),
            self.training,
            self.bidirectional,
            self.batch_first,
        )
        if not batched:
            return output.squeeze(batch_dim), (h_n.squeeze(1), c_n.squeeze(1))
        return output, (h_n, c_n)


class ScriptedGRU(nn.GRU):
    """``torch.nn.GRU`` with a ``forward`` TorchScript compiles on its own: a tensor in, the fused kernel."""

    def forward(
        self,
        input: Tensor,
        hx: Optional[Tensor] = None,  # noqa: UP045
    ) -> tuple[Tensor, Tensor]:
        batched = _check_rank("GRU", input)
        batch_dim = 0 if self.batch_first else 1
        rows = self.num_layers * (2 if self.bidirectional else 1)
        input, h0 = _input_and_state(input, hx, batched, batch_dim, rows, self.hidden_size)
        self.check_forward_args(input, h0, None)
        output, h_n = _VF.gru(
            input,
            h0,
            self._flat_weights,
            self.bias,
            self.num_layers,
            float(self.dropout),
            self.training,
            self.bidirectional,
            self.batch_first,
        )
        if not batched:
            return output.squeeze(batch_dim), h_n.squeeze(1)
        return output, h_n


class ScriptedRNN(nn.RNN):
    """``torch.nn.RNN`` with a ``forward`` TorchScript compiles on its own: a tensor in, the fused kernel."""

    def forward(
        self,
        input: Tensor,
        hx: Optional[Tensor] = None,  # noqa: UP045
    ) -> tuple[Tensor, Tensor]:
        batched = _check_rank("RNN", input)
        batch_dim = 0 if self.batch_first else 1
        rows = self.num_layers * (2 if self.bidirectional else 1)
        input, h0 = _input_and_state(input, hx, batched, batch_dim, rows, self.hidden_size)
        self.check_forward_args(input, h0, None)
        arguments = (self.bias, self.num_layers, float(self.dropout), self.training, self.bidirectional)
        if self.mode == "RNN_TANH":
            output, h_n = _VF.rnn_tanh(input, h0, self._flat_weights, *arguments, self.batch_first)
        else:
            output, h_n = _VF.rnn_relu(input, h0, self._flat_weights, *arguments, self.batch_first)
        if not batched:
            return output.squeeze(batch_dim), h_n.squeeze(1)
        return output, h_n


_SCRIPTED = {"LSTM": ScriptedLSTM, "GRU": ScriptedGRU, "RNN_TANH": ScriptedRNN, "RNN_RELU": ScriptedRNN}


def scriptable(layer: nn.RNNBase) -> nn.RNNBase:
    """The scriptable twin of an rnnkit layer: same configuration, the layer's own parameters."""
    arguments: dict = {
        "num_layers": layer.num_layers,
        "bias": layer.bias,
        "batch_first": layer.batch_first,
        "dropout": layer.dropout,
        "bidirectional": layer.bidirectional,
    }
    if layer.mode == "LSTM":
        arguments["proj_size"] = layer.proj_size
    elif layer.mode.startswith("RNN"):
        arguments["nonlinearity"] = "tanh" if layer.mode == "RNN_TANH" else "relu"
    with warnings.catch_warnings():  # the dropout warning was given when the layer was built
        warnings.simplefilter("ignore")
        twin = _SCRIPTED[layer.mode](layer.input_size, layer.hidden_size, **arguments, device="meta")
    for name in layer._flat_weights_names:
        setattr(twin, name, getattr(layer, name))
    twin._init_flat_weights()
    return twin.train(layer.training)
