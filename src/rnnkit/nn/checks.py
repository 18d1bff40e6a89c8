"""The layers' input checks: PyTorch's exception types and messages, or clearer ones where it has none.

Shapes: ``N`` batch, ``L`` length, ``D`` directions, ``H`` hidden, ``P`` projected hidden,
``E`` input features.
"""

from __future__ import annotations

import torch
from torch import Tensor

State = tuple[Tensor, ...]  # (h,) or (h, c), each [num_layers*D, N, P or H]


def check_input(x: Tensor, input_size: int, dtype: torch.dtype) -> None:
    """Raise unless ``x`` ``[N, L, E]`` has the layer's dtype (ValueError) and ``input_size`` features
    (RuntimeError), as ``torch.nn.LSTM`` does."""
    if x.dtype != dtype and not torch._C._is_any_autocast_enabled():
        raise ValueError(
            f"RNN input dtype ({x.dtype}) does not match weight dtype ({dtype}). "
            f"Convert input: input.to({dtype}), or convert model: model.to({x.dtype})"
        )
    if x.shape[-1] != input_size:
        raise RuntimeError(
            f"input.size(-1) must be equal to input_size. Expected {input_size}, got {x.shape[-1]}"
        )


def check_state_ranks(states: State | None, lstm: bool, batched: bool, hx) -> None:
    """Raise unless the initial state is a tensor (a pair for an LSTM) of the input's rank, as torch does."""
    if states is None:
        return
    if lstm and len(states) != 2:
        raise TypeError(f"LSTM hx must be a tuple (h_0, c_0), got {type(hx).__name__}")
    if not lstm and (len(states) != 1 or isinstance(hx, (tuple, list))):
        raise TypeError(f"hx must be a tensor h_0 (only an LSTM takes a tuple), got {type(hx).__name__}")
    for s in states:
        if not isinstance(s, Tensor):
            raise TypeError(f"hx must hold tensors, got {type(s).__name__}")
    rank = 3 if batched else 2
    if any(s.dim() != rank for s in states):
        kind = "batched 3-D" if batched else "unbatched 2-D"
        if lstm:
            raise RuntimeError(
                f"For {kind} input, hx and cx should also be {rank}-D but got "
                f"({states[0].dim()}-D, {states[1].dim()}-D) tensors"
            )
        raise RuntimeError(f"For {kind} input, hx should also be {rank}-D but got {states[0].dim()}-D tensor")


def check_state_sizes(states: State | None, lstm: bool, expected_h: list[int], hidden_size: int) -> None:
    """Raise RuntimeError unless ``h_0`` is ``expected_h`` and an LSTM's ``c_0`` the same with ``H``
    features (PyTorch's messages)."""
    if states is None:
        return
    if not lstm:
        if list(states[0].shape) != expected_h:
            raise RuntimeError(f"Expected hidden size {tuple(expected_h)}, got {list(states[0].shape)}")
        return
    expected_c = [*expected_h[:2], hidden_size]
    for i, (s, expected) in enumerate(zip(states, (expected_h, expected_c), strict=True)):
        if list(s.shape) != expected:
            raise RuntimeError(f"Expected hidden[{i}] size {tuple(expected)}, got {list(s.shape)}")


def check_lengths(lengths, n: int, steps: int, device: torch.device) -> int:
    """Raise unless ``lengths`` is an integer tensor ``[N]`` of values in ``1..L``; return the shortest
    (``L`` for an empty batch)."""
    if not isinstance(lengths, Tensor):
        raise TypeError(f"lengths must be an int64 tensor [N], got {type(lengths).__name__}")
    if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
        raise ValueError(f"lengths must be an integer tensor (int64), got dtype {lengths.dtype}")
    if lengths.dim() != 1 or lengths.shape[0] != n:
        raise ValueError(f"lengths must have shape [N]=[{n}], got {list(lengths.shape)}")
    if lengths.device.type != "cpu" and lengths.device != device:
        raise ValueError(
            f"lengths must be on the CPU or on the input's device {device}, got {lengths.device}"
        )
    if n == 0:
        return steps
    shortest, longest = (int(v) for v in torch.aminmax(lengths))
    if shortest < 1 or longest > steps:
        i = int(((lengths < 1) | (lengths > steps)).nonzero()[0, 0])
        raise ValueError(f"lengths must be in 1..L={steps}, got {int(lengths[i])} at batch index {i}")
    return shortest


def as_states(state) -> State | None:
    """The initial state as a tuple ``(h_0,)`` or ``(h_0, c_0)``; None stays None."""
    if state is None or isinstance(state, (tuple, list)):
        return None if state is None else tuple(state)
    return (state,)
