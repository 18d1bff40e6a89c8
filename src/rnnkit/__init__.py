"""rnnkit: recurrent neural networks for text, from the cell equations to a served model.

The layers live in :mod:`rnnkit.nn`; the data pipeline in :mod:`rnnkit.data`. ``rnnkit.train(...)``
trains a model into a run folder and ``rnnkit.load(run_dir)`` loads one back.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "train", "load"]


def __getattr__(name: str):
    # Lazy: importing rnnkit stays cheap (no model code loaded until it is used).
    if name in ("train", "load"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'rnnkit' has no attribute {name!r}")
