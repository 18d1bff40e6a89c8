"""Stopping a training run on Ctrl-C or ``kill``: after the current step, with a checkpoint to resume from.

:class:`StopOnSignals` is both a context manager (it installs SIGINT and SIGTERM handlers for its
duration, in the main thread only) and a Trainer callback (it learns which trainer is running). The first
signal during training asks the trainer to stop after the step in progress; the trainer then saves a
checkpoint and raises :class:`Interrupted`. A signal outside training (while the data loads, or while the
report is written), or a second signal, raises :class:`Interrupted` at once.

``rnnkit train`` uses it and exits with 130 (SIGINT) or 143 (SIGTERM) after printing how to resume. In
Python::

    with StopOnSignals() as stop:
        rnnkit.train("news.csv", out="runs/news", callbacks=[stop])

:class:`InterruptOnSignals` is for everything else the command line runs (predict, eval, export, ...): a
signal raises :class:`Interrupted` at once, and is remembered, so that a library which swallows the
``KeyboardInterrupt`` (some do while importing) cannot hide it.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

__all__ = ["Interrupted", "InterruptOnSignals", "StopOnSignals", "exit_code"]


class Interrupted(KeyboardInterrupt):
    """Training stopped on a signal.

    Attributes:
        signum: the signal (``signal.SIGINT`` or ``signal.SIGTERM``).
        step: the optimizer steps done when the checkpoint was saved (None: none was saved now).
        run: the run folder the checkpoint is in (None: unknown or none).
    """

    def __init__(self, signum: int, step: int | None = None, run: Path | None = None):
        self.signum = signum
        self.step = step
        self.run = run
        where = f" at step {step}, checkpoint saved in {run}" if step is not None and run is not None else ""
        super().__init__(f"interrupted by {signal.Signals(signum).name}{where}")


def exit_code(signum: int) -> int:
    """The shell's exit code for a process stopped by ``signum``: 128 + signal number (130, 143)."""
    return 128 + int(signum)


class _SignalHandlers:
    """A context manager that routes ``self.signals`` to ``self._handle`` in the main thread (elsewhere it
    does nothing) and puts the previous handlers back on exit."""

    signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)
    _previous: dict[int, Any]

    def __enter__(self):
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for s in self.signals:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Any) -> None:
        raise NotImplementedError


class StopOnSignals(_SignalHandlers):
    """Stop training cleanly on SIGINT / SIGTERM (see the module docstring)."""

    def __init__(self) -> None:
        self.trainer: Any = None
        self.run: Path | None = None  # the run folder of the last trainer seen
        self.signum: int | None = None
        self._previous = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.trainer is None or self.signum is not None:  # not in a step loop, or asked twice
            raise Interrupted(signum, run=self.run)
        self.signum = signum
        self.trainer.interrupt(signum)

    # Trainer callback hooks
    def on_train_begin(self, trainer: Any) -> None:
        self.trainer = trainer
        self.run = trainer.run.path if getattr(trainer, "run", None) is not None else None

    def on_train_end(self, trainer: Any, result: Any) -> None:
        self.trainer = None


class InterruptOnSignals(_SignalHandlers):
    """Raise :class:`Interrupted` on SIGINT / SIGTERM at once, wherever the main thread is, and remember it.

    A context manager (handlers installed in the main thread only, the previous ones restored on exit).
    ``received`` is the last signal seen (None: none); :meth:`check` raises it again, for a caller that
    wants to know whether an interrupt was swallowed on the way (by a library's bare ``except``).
    Handlers installed inside the block (uvicorn's, :class:`StopOnSignals`) take precedence while they
    are installed.
    """

    def __init__(self, signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)) -> None:
        self.signals = tuple(signals)
        self.received: int | None = None
        self._previous = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = signum
        raise Interrupted(signum)

    def check(self) -> None:
        """Raise :class:`Interrupted` if a signal arrived (even one whose exception was swallowed)."""
        if self.received is not None:
            raise Interrupted(self.received)

    def clear(self) -> None:
        """Forget the signals seen so far (e.g. the one a server stopped on gracefully)."""
        self.received = None
