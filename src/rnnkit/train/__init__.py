"""Training: the model-agnostic :class:`~rnnkit.train.loop.Trainer`, run folder I/O
(:mod:`~rnnkit.train.checkpoint`), metrics and plots.

``rnnkit.train`` is also the function ``rnnkit.train(data, ...)`` (:func:`rnnkit.api.train`). Python
binds an imported sub-package to the attribute of the same name on its parent, which would hide that
function as soon as anything imports ``rnnkit.train.loop``; so this package's module object is made
callable and forwards calls to :func:`rnnkit.api.train`.

>>> import rnnkit, rnnkit.train.loop
>>> callable(rnnkit.train)
True
"""

import sys
import types


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from ..api import train

        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
