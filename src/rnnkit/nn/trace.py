"""What ``record=True`` returns: every step's states and gate activations, per layer and direction."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

__all__ = ["Trace"]


@dataclass
class Trace:
    """Every step's hidden state, cell state (LSTM) and gates, for every layer and direction.

    ``layers[k][d]`` is a dict name → tensor ``[N, L, H]`` for layer ``k`` and direction ``d``
    (0 forward, 1 reverse):

    ========  =========================================================
    cell      names
    ========  =========================================================
    RNN       ``"h"``
    LSTM      ``"h"``, ``"c"``, ``"i"``, ``"f"``, ``"g"``, ``"o"``
    GRU       ``"h"``, ``"r"``, ``"z"``, ``"n"``
    ========  =========================================================

    An LSTM with ``proj_size = P`` records the projected ``h``, ``[N, L, P]``.
    Index ``t`` is token ``t`` in both directions (the reverse direction is stored in token order,
    not in the order it ran). Values at padded steps are zero. Tensors are always batch-first and
    keep their autograd history.

    >>> import torch
    >>> from rnnkit.nn import LSTM
    >>> _, (h_n, _), trace = LSTM(3, 4, batch_first=True)(torch.randn(2, 5, 3), record=True)
    >>> trace.get(0, 0, "f").shape
    torch.Size([2, 5, 4])
    >>> trace.names
    ('h', 'c', 'i', 'f', 'g', 'o')
    """

    layers: list[list[dict[str, Tensor]]]

    def get(self, layer: int, direction: int, name: str) -> Tensor:
        """The ``[N, L, H]`` tensor ``name`` of one layer and direction (0 forward, 1 reverse)."""
        if not 0 <= layer < len(self.layers):
            raise ValueError(f"layer must be in 0..{len(self.layers) - 1}, got {layer}")
        directions = self.layers[layer]
        if not 0 <= direction < len(directions):
            raise ValueError(f"direction must be in 0..{len(directions) - 1}, got {direction}")
        recorded = directions[direction]
        if name not in recorded:
            raise ValueError(f"name must be one of {', '.join(recorded)}, got {name!r}")
        return recorded[name]

    @property
    def names(self) -> tuple[str, ...]:
        """The recorded names, in order (the same for every layer and direction)."""
        return tuple(self.layers[0][0])

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def num_directions(self) -> int:
        return len(self.layers[0])
