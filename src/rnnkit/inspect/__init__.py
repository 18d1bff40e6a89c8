"""See inside a trained network: every token's states and gates, the units that act as flags, the prediction.

- :func:`inspect_text` (:mod:`~rnnkit.inspect.record`): run a classifier or language model over a text
  with ``record=True`` and return an :class:`Inspection` (states and gates per token, per-prefix class
  probabilities, integrated-gradients token contributions, next-token probabilities).
- :func:`find_units` (:mod:`~rnnkit.inspect.units`): rank the units whose value differs most after
  trigger tokens (``not, never, no``) than elsewhere (standardised mean difference).
- :func:`write_report` (:mod:`~rnnkit.inspect.report`): one self-contained HTML page;
  :func:`save_heatmap` (:mod:`~rnnkit.inspect.png`): a PNG heatmap.

``rnnkit inspect RUN TEXT`` is the command-line shell over these.
"""

from .png import save_heatmap
from .record import Inspection, inspect_text
from .report import read_report_data, write_report
from .units import UnitScore, UnitSearch, find_units, read_texts

__all__ = [
    "Inspection", "inspect_text", "find_units", "UnitScore", "UnitSearch", "read_texts",
    "write_report", "read_report_data", "save_heatmap",
]  # fmt: skip
