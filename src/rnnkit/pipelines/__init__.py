"""One pipeline per task: how ``rnnkit.train`` trains it and how ``rnnkit.load`` loads it back.

- :mod:`.classify` — ``task="classify"``: :func:`~.classify.train_classifier`,
  :class:`~.classify.ClassifierRun`.
- :mod:`.language_model` — ``task="lm"``: :func:`~.language_model.train_language_model`,
  :class:`~.language_model.LanguageModelRun`.
"""
