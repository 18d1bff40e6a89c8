"""A tokens × units heatmap as a PNG, for documents (``rnnkit inspect … --png FILE``).

Rows are units, columns are tokens; gates (values in [0, 1]) use a sequential colour map, states a
diverging one centred on 0. With many units, the most varied ``max_units`` are shown.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from .._io import atomic_open

__all__ = ["save_heatmap"]

GATES_01 = {"i", "f", "o", "r", "z"}


def save_heatmap(
    inspection,
    path: str | os.PathLike,
    *,
    layer: int | None = None,
    direction: int = 0,
    name: str = "h",
    units: Sequence[int] | None = None,
    marked: Sequence[int] = (),
    max_units: int = 64,
    dpi: int = 120,
) -> list[int]:
    """Write a heatmap of one layer's, direction's and state's (or gate's) values per token and unit.

    Args:
        inspection: an :class:`~rnnkit.inspect.record.Inspection`.
        path: the PNG to write.
        layer: the layer (default the last).
        direction: 0 forward, 1 reverse.
        name: ``h``, ``c`` or a gate (see :attr:`Inspection.names`).
        units: the units to show, in this order (default all, or the ``max_units`` most varied).
        marked: units to mark with ★ in the row labels (e.g. those the unit finder ranked).
        max_units: the most rows drawn when ``units`` is None.
        dpi: resolution.

    Returns:
        The units shown, top to bottom.

    Raises:
        ValueError: an unknown layer, direction, name or unit.
    """
    from matplotlib.figure import Figure  # no pyplot: the user's backend and open figures are left alone

    layer = inspection.num_layers - 1 if layer is None else layer
    values = inspection.states(layer, direction, name)  # (L, H)
    hidden = values.shape[1]
    if units is not None:
        which = f"units {', '.join(map(str, list(units)[:8]))}{' …' if len(units) > 8 else ''} (chosen)"
    elif hidden > max_units:
        spread = values.std(dim=0) if values.shape[0] > 1 else values.abs()[0]
        units = sorted(torch.topk(spread, max_units).indices.tolist())
        which = f"the {max_units} of {hidden} units that vary most over the text"
    else:
        units = list(range(hidden))
        which = f"all {hidden} units"
    bad = [u for u in units if not 0 <= u < hidden]
    if bad:
        raise ValueError(f"units must be in 0..{hidden - 1}, got {bad}")
    grid = values[:, list(units)].T.numpy()  # (units, L)
    if name in GATES_01:
        options = {"cmap": "Purples", "vmin": 0.0, "vmax": 1.0}
    else:
        bound = float(abs(grid).max()) or 1.0
        options = {"cmap": "RdBu_r", "vmin": -bound, "vmax": bound}

    tokens = [_shown(t) for t in inspection.tokens]
    width = min(40.0, 2.0 + 0.32 * len(tokens))
    height = min(40.0, 1.6 + 0.18 * len(units))
    fig = Figure(figsize=(width, height))
    ax = fig.subplots()
    image = ax.imshow(grid, aspect="auto", interpolation="nearest", **options)
    ax.set_xticks(range(len(tokens)))
    ax.set_xticklabels(tokens, rotation=60, ha="right", fontsize=8)
    marked = set(marked)
    ax.set_yticks(range(len(units)))
    ax.set_yticklabels([f"★{u}" if u in marked else str(u) for u in units], fontsize=7)
    where = f"layer {layer}, {'forward' if direction == 0 else 'reverse'}"
    stars = "; ★ = ranked by --find-units" if marked else ""
    ax.set_title(f"{NAMES.get(name, name)} ({where}): {which}{stars}", fontsize=10)
    ax.set_ylabel("unit")
    ax.set_xlabel("token")
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01, label=_value_label(name))
    fig.tight_layout()
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=dpi)
    return list(units)


NAMES = {
    "h": "hidden state h", "c": "cell state c", "i": "input gate i", "f": "forget gate f", "g": "candidate g",
    "o": "output gate o", "r": "reset gate r", "z": "update gate z", "n": "new state n",
}  # fmt: skip


def _value_label(name: str) -> str:
    """What the colour bar measures."""
    if name in GATES_01:
        return "gate value (0 = closed, 1 = open)"
    if name == "c":
        return "cell state value (unbounded; red > 0 > blue)"
    return "activation (red > 0 > blue)"


def _shown(token: str) -> str:
    return token.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥")
