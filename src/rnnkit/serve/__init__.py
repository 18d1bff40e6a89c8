"""Serve a trained model over HTTP: a JSON API, a web page, micro-batching, limits and Prometheus metrics.

- :mod:`rnnkit.serve.app` — ``create_app(run_or_model, ServeSettings(...))`` (FastAPI), ``serve(...)``
  (uvicorn; what ``rnnkit serve`` runs) and ``serve_in_thread(app)``.
- :mod:`rnnkit.serve.batching` — :class:`~rnnkit.serve.batching.MicroBatcher`: concurrent requests share
  one forward pass.
- :mod:`rnnkit.serve.metrics` — counters and histograms in the Prometheus text format.

FastAPI and uvicorn are the ``serve`` extra (``pip install rnnkit[serve]``); importing this package does
not import them.
"""
