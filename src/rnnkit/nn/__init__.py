"""Recurrent cells and layers, written as the lesson's equations and run at the speed of PyTorch's kernels.

* :mod:`rnnkit.nn.cells` — :class:`RNNCell`, :class:`LSTMCell`, :class:`GRUCell`: one time step each.
* :mod:`rnnkit.nn.recurrent` — :class:`RNN`, :class:`LSTM`, :class:`GRU`: layers over ragged batches,
  bidirectional and stacked, with a ``"reference"`` backend (the cells, step by step) and a ``"fast"``
  one (:mod:`rnnkit.nn.fused`, PyTorch's fused kernels on the same parameters).
* :class:`Trace` — what ``record=True`` returns.

>>> import torch
>>> from rnnkit.nn import LSTM
>>> output, (h_n, c_n) = LSTM(4, 8)(torch.randn(2, 3, 4))
>>> output.shape, h_n.shape
(torch.Size([2, 3, 8]), torch.Size([1, 2, 8]))
"""

from .cells import GRUCell, LSTMCell, RNNCell
from .recurrent import GRU, LSTM, RNN
from .trace import Trace

__all__ = ["RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell", "Trace"]
