"""The inspection as one self-contained HTML page: no network, data embedded as JSON, drawn by inline JS.

:func:`write_report` fills ``static/report.html`` with the page's CSS and JS (``static/report.css``,
``static/report.js``, inlined) and the data of :func:`inspection_data`, embedded in
``<script type="application/json" id="rnnkit-data">``. The page shows

- the tokens coloured by one unit's activation (pick layer, direction, state or gate, and unit);
- a tokens × units heatmap of the same layer, direction and state or gate;
- the class probabilities after each prefix (classifier) or the probability of each actual next token
  (language model);
- each token's contribution to the decision (integrated gradients, classifier);
- the gate summary: the share of forget-gate (GRU: update-gate) values above 0.9 and below 0.1 per layer;
- the units the unit finder ranked, if it ran (click one to show it);

with the exact embedded value of anything under the mouse.

Numbers are written with the fewest digits (at most 9) that read back as the same float32, so the page
holds exactly the recorded values: ``numpy.float32(json_value) == tensor``. The states and gates, the bulk
of the data, are embedded once and compactly, as base64 of little-endian float32 (``states_f32``, 5.3
characters a value instead of about 11; :func:`read_report_data` decodes them back to ``states``), and
the page shows each value with the same fewest digits.

>>> round_trip = _floats(torch.tensor([0.1, -2.5, 1 / 3]))
>>> round_trip, torch.equal(torch.tensor(round_trip), torch.tensor([0.1, -2.5, 1 / 3]))
([0.1, -2.5, 0.33333334], True)
"""

from __future__ import annotations

import html
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._io import atomic_write_text

__all__ = ["inspection_data", "render_report", "write_report", "read_report_data", "DATA_ELEMENT_ID"]

FORMAT = 1
MAX_PAGE_VALUES = 1_000_000  # states and gates one page embeds (~5.3 MB); `rnnkit inspect` cuts the text
DATA_ELEMENT_ID = "rnnkit-data"
_DATA_SLOT = "/*RNNKIT_DATA*/"


def _floats(values: torch.Tensor) -> Any:
    """Nested lists of floats, each the shortest (≤ 9 significant digits) that reads back as the float32.

    NaN becomes None (JSON has no NaN).
    """
    a = values.detach().float().cpu().numpy()
    finite = np.isfinite(a)
    safe = np.where(finite, a, 0).astype(np.float32)
    out = np.char.mod("%.9g", safe).astype(np.float64)
    for digits in (8, 7, 6):
        shorter = np.char.mod(f"%.{digits}g", safe).astype(np.float64)
        same = shorter.astype(np.float32) == safe
        out[same] = shorter[same]
    result = out.astype(object)
    result[~finite] = None
    return result.tolist()


def inspection_data(inspection, *, states: bool = True, units=None) -> dict[str, Any]:
    """The page's data: plain JSON-able Python.

    Args:
        inspection: an :class:`~rnnkit.inspect.record.Inspection`.
        states: include every layer's and direction's states and gates.
        units: an optional :class:`~rnnkit.inspect.units.UnitSearch` whose units the page lists.

    Returns:
        ``{"format", "text", "tokens", "ids", "unknown", "task", "cell", "num_layers", "num_directions",
        "hidden_size", "names", "states", "labels", "probs", "prediction", "prefix_probs",
        "contributions", "attribution", "next_token_probs", "gate_summary", "units"}``, where
        ``states[layer][direction][name]`` is ``[L][H]`` (token, unit), ``prefix_probs`` is ``[L][C]``,
        and the entries a task does not have are None.
    """
    i = inspection
    data: dict[str, Any] = {
        "format": FORMAT,
        "text": i.text,
        "tokens": list(i.tokens),
        "ids": list(i.ids),
        "unknown": list(i.unknown),
        "task": i.task,
        "cell": i.cell,
        "num_layers": i.num_layers,
        "num_directions": i.num_directions,
        "hidden_size": i.hidden_size,
        "names": list(i.names),
        "states": None,
        "labels": i.labels,
        "probs": None if i.probs is None else _floats(i.probs),
        "prediction": i.prediction,
        "prefix_probs": None if i.prefix_probs is None else _floats(i.prefix_probs),
        "contributions": None if i.contributions is None else _floats(i.contributions),
        "attribution": i.attribution or None,
        "next_token_probs": None if i.next_token_probs is None else _floats(i.next_token_probs),
        "gate_summary": i.gate_summary(),
        "units": None if units is None else units.to_dict(),
    }
    if states:
        data["states"] = [
            [{name: _floats(i.states(k, d, name)) for name in i.names} for d in range(i.num_directions)]
            for k in range(i.num_layers)
        ]
    return data


def _static(name: str) -> str:
    return resources.files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def _script_json(data: dict[str, Any]) -> str:
    """JSON safe inside a ``<script>`` element: ``<``, ``>`` and ``&`` written as ``\\u`` escapes."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page_token_limit(values_per_token: int) -> int:
    """The most tokens whose states fit in :data:`MAX_PAGE_VALUES` (at least 1).

    >>> page_token_limit(2 * 6 * 256)   # a 2-layer LSTM with 256 units: h, c and four gates each
    325
    """
    return max(1, MAX_PAGE_VALUES // max(1, values_per_token))


def _base64_f32(values: torch.Tensor) -> str:
    import base64

    return base64.b64encode(values.detach().float().cpu().numpy().astype("<f4").tobytes()).decode("ascii")


def _decode_f32(text: str, hidden: int) -> Any:
    import base64

    flat = np.frombuffer(base64.b64decode(text), dtype="<f4")
    return _floats(torch.from_numpy(flat.reshape(-1, hidden).copy()))


def render_report(inspection, units=None) -> str:
    """The report page as one HTML string (see the module docstring).

    Args:
        inspection: an :class:`~rnnkit.inspect.record.Inspection`.
        units: an optional :class:`~rnnkit.inspect.units.UnitSearch` to list and highlight.
    """
    i = inspection
    data = inspection_data(i, states=False, units=units)
    data["states_f32"] = [
        [{name: _base64_f32(i.states(k, d, name)) for name in i.names} for d in range(i.num_directions)]
        for k in range(i.num_layers)
    ]
    title = inspection.text if len(inspection.text) <= 60 else inspection.text[:57] + "..."
    values = {
        "{{TITLE}}": html.escape(f"rnnkit inspect: {title}"),
        "/*{{CSS}}*/": _static("report.css"),
        "/*{{JS}}*/": _static("report.js"),
        _DATA_SLOT: _script_json(data),
    }
    slots = re.compile("|".join(re.escape(slot) for slot in values))
    return slots.sub(lambda m: values[m.group()], _static("report.html"))  # one pass: filled text stays as is


def write_report(inspection, path: str | os.PathLike, units=None) -> None:
    """Write the report page to ``path`` (atomically).

    Args:
        inspection: an :class:`~rnnkit.inspect.record.Inspection`.
        path: the ``.html`` file to write.
        units: an optional :class:`~rnnkit.inspect.units.UnitSearch` to list and highlight.
    """
    atomic_write_text(path, render_report(inspection, units=units))


def read_report_data(path: str | os.PathLike) -> dict[str, Any]:
    """The data embedded in a report page written by :func:`write_report` (for tests and tools).

    Raises:
        ValueError: the file holds no ``rnnkit-data`` element.
    """
    page = Path(path).read_text(encoding="utf-8")
    start_tag = f'<script type="application/json" id="{DATA_ELEMENT_ID}">'
    start = page.find(start_tag)
    if start < 0:
        raise ValueError(f"{path}: no <script id={DATA_ELEMENT_ID!r}> element; is it an rnnkit report?")
    start += len(start_tag)
    end = page.index("</script>", start)
    data = json.loads(page[start:end])
    packed = data.pop("states_f32", None)
    if packed is not None:
        h = data["hidden_size"]
        data["states"] = [[{n: _decode_f32(v, h) for n, v in d.items()} for d in layer] for layer in packed]
    return data
