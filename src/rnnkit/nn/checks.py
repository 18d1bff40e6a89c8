"""The layers' input checks: clear errors naming what was expected and what came.

Shapes: ``N`` batch, ``L`` length, ``D`` directions, ``H`` hidden, ``E`` input features.
"""

from __future__ import annotations

import torch
from torch import Tensor

State = tuple[Tensor, ...]  # (h,) or (h, c), each [num_layers*D, N, H]


def check_input(x, input_size: int, batch_first: bool, dtype: torch.dtype) -> None:
    """Raise unless ``x`` is a non-empty 3-D tensor of ``input_size`` features and the layer's dtype."""
    layout = "[N, L, E]" if batch_first else "[L, N, E]"
    if not isinstance(x, Tensor):
        raise TypeError(f"input must be a torch.Tensor {layout}, got {type(x).__name__}")
    if x.dim() != 3:
        raise ValueError(f"input must be 3-D {layout}, got {x.dim()}-D with shape {list(x.shape)}")
    if x.shape[-1] != input_size:
        raise ValueError(
            f"input must have E=input_size={input_size} features, got {x.shape[-1]} (shape {list(x.shape)})"
        )
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"input must have at least one sequence and one step, got shape {list(x.shape)}")
    if x.dtype != dtype:
        raise TypeError(
            f"input dtype must match the layer's parameters ({dtype}), got {x.dtype}; "
            f"convert the input with .to({dtype}) or the layer with .to({x.dtype})"
        )


def check_lengths(lengths, n: int, steps: int, device: torch.device) -> int:
    """Raise unless ``lengths`` is an integer tensor ``[N]`` of values in ``1..L``; return the shortest."""
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
    shortest, longest = (int(v) for v in torch.aminmax(lengths))
    if shortest < 1 or longest > steps:
        i = int(((lengths < 1) | (lengths > steps)).nonzero()[0, 0])
        raise ValueError(f"lengths must be in 1..L={steps}, got {int(lengths[i])} at batch index {i}")
    return shortest


def check_state(state, lstm: bool, expected: list[int]) -> State | None:
    """Raise unless ``state`` is ``h_0`` (``(h_0, c_0)`` for an LSTM) of shape ``expected``."""
    if state is None:
        return None
    if lstm and (not isinstance(state, (tuple, list)) or len(state) != 2):
        raise TypeError(f"LSTM state must be a tuple (h_0, c_0), got {type(state).__name__}")
    if not lstm and not isinstance(state, Tensor):
        raise TypeError(
            f"state must be a tensor h_0 (only an LSTM takes a tuple), got {type(state).__name__}"
        )
    states = as_states(state)
    for name, s in zip(("h_0", "c_0"), states, strict=False):
        if not isinstance(s, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(s).__name__}")
        if list(s.shape) != expected:
            raise ValueError(f"{name} must have shape [num_layers*D, N, H]={expected}, got {list(s.shape)}")
    return states


def as_states(state) -> State | None:
    """The initial state as a tuple ``(h_0,)`` or ``(h_0, c_0)``; None stays None."""
    if state is None or isinstance(state, (tuple, list)):
        return None if state is None else tuple(state)
    return (state,)
