"""Recurrent cells and layers, written as the lesson's equations and run at the speed of PyTorch's kernels.

Drop-ins for ``torch.nn``'s: the same constructors, calls, parameter names, errors and defaults
(``batch_first=False``), so existing PyTorch code can swap them in.

* :mod:`rnnkit.nn.cells` — :class:`RNNCell`, :class:`LSTMCell`, :class:`GRUCell`: one time step each.
* :mod:`rnnkit.nn.recurrent` — :class:`RNN`, :class:`LSTM`, :class:`GRU`: layers, bidirectional and
  stacked, with a ``"reference"`` backend (the cells, step by step) and a ``"fast"`` one
  (:mod:`rnnkit.nn.fused`, PyTorch's fused kernels on the same parameters), plus rnnkit's extras:
  ragged batches (``lengths=``) and recording (``record=True``).
* :mod:`rnnkit.nn.regularize` — AWD-LSTM's regularisers around the layers: :class:`LockedDropout`,
  :func:`embedding_dropout`, :func:`ar_loss`, :func:`tar_loss` (the layers themselves take
  ``weight_drop=`` and ``locked_dropout=``).
* :class:`Trace` — what ``record=True`` returns.
* :mod:`rnnkit.nn.scripted` — what ``torch.jit.script`` compiles for a layer (its fast path).

>>> import torch
>>> from rnnkit.nn import LSTM
>>> output, (h_n, c_n) = LSTM(4, 8)(torch.randn(3, 2, 4))            # as torch.nn.LSTM: (L, N, E)
>>> output.shape, h_n.shape
(torch.Size([3, 2, 8]), torch.Size([1, 2, 8]))
>>> lstm = LSTM(4, 8, batch_first=True)
>>> output, (h_n, c_n) = lstm(torch.randn(2, 3, 4), lengths=torch.tensor([3, 1]))   # rnnkit's extra
>>> output.shape, bool(output[1, 1:].eq(0).all())
(torch.Size([2, 3, 8]), True)
"""

from .cells import GRUCell, LSTMCell, RNNCell
from .recurrent import GRU, LSTM, RNN
from .regularize import LockedDropout, ar_loss, embedding_dropout, locked_dropout, tar_loss
from .trace import Trace

__all__ = [
    "RNN",
    "LSTM",
    "GRU",
    "RNNCell",
    "LSTMCell",
    "GRUCell",
    "Trace",
    "LockedDropout",
    "locked_dropout",
    "embedding_dropout",
    "ar_loss",
    "tar_loss",
]
