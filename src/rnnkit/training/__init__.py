"""Training: the model-agnostic :class:`~rnnkit.training.loop.Trainer`, run folder I/O
(:mod:`~rnnkit.training.checkpoint`), metrics, plots, the language-model task and distributed training.

The package is called ``training`` so that it never shadows the function ``rnnkit.train(...)``
(:func:`rnnkit.api.train`).
"""
