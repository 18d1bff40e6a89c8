"""Training progress that fits where it runs: a live bar on a terminal or in a notebook, one line per
evaluation in a log file, nothing when asked for quiet.

:class:`TrainProgress` is a Trainer callback (and a pipeline callback: ``on_stage`` while the data loads,
``on_data`` with a summary of it). ``mode="auto"`` picks:

- ``"bar"`` when the stream is a terminal, or in a Jupyter notebook (``tqdm.auto`` draws a widget there):
  a bar whose total follows whichever of epochs, ``max_steps`` or the time budget ends the run, with the
  loss, accuracy and tokens/s; each evaluation is printed above it as one line;
- ``"lines"`` otherwise (a log file, a pipe, CI): no carriage-return updates at all, one line per
  evaluation in the style of Keras ``verbose=2``, with the time the stretch took::

      epoch 1/4 - step 50/200 - 12.3s - loss 0.6931 - acc 0.512 - valid loss 0.6543 - valid accuracy 0.700

The library itself never prints: ``rnnkit.train(progress=True)`` and ``rnnkit train`` create this
callback. ``rnnkit.train(progress=fn)`` calls ``fn(logs)`` after every step instead.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

__all__ = ["TrainProgress", "FunctionProgress", "plural", "data_summary_line", "in_notebook"]


def plural(n: float, word: str, words: str | None = None) -> str:
    """``1 epoch``, ``2 epochs``, ``1.5 epochs``, ``1,000 steps``.

    >>> plural(1, "epoch"), plural(0, "epoch"), plural(2.5, "epoch"), plural(1200, "step")
    ('1 epoch', '0 epochs', '2.5 epochs', '1,200 steps')
    """
    shown = f"{n:,}" if isinstance(n, int) else f"{round(n, 2):,g}"
    return f"{shown} {word if n == 1 else (words or word + 's')}"


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (where ``tqdm.auto`` draws a widget)."""
    shell = sys.modules.get("IPython")
    ip = getattr(shell, "get_ipython", lambda: None)() if shell else None
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def _is_terminal(stream: IO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def data_summary_line(summary: dict[str, Any]) -> str:
    """One line describing the training data, e.g.
    ``data: 90 train / 10 valid / 30 test examples, vocabulary 45 tokens, 3 labels (food, sport, tech)``.

    >>> data_summary_line({"train": 1, "valid": 2, "vocab": 10, "labels": ["a", "b"], "cut": 1, "max_len": 5})
    'data: 1 train / 2 valid examples, vocabulary 10 tokens, 2 labels (a, b); 1 training text cut to 5 tokens'
    """
    splits = [f"{summary[k]:,} {k}" for k in ("train", "valid", "test") if summary.get(k) is not None]
    unit = summary.get("unit", "examples")
    parts = [f"data: {' / '.join(splits)} {unit}", f"vocabulary {plural(summary['vocab'], 'token')}"]
    labels = summary.get("labels")
    if labels:
        shown = ", ".join(labels[:6]) + (f", … {len(labels) - 6} more" if len(labels) > 6 else "")
        parts.append(f"{plural(len(labels), 'label')} ({shown})")
    line = ", ".join(parts)
    if summary.get("cut"):
        line += f"; {plural(summary['cut'], 'training text')} cut to {summary['max_len']:,} tokens"
    return line


class TrainProgress:
    """A Trainer callback showing progress on ``file`` (default: standard error).

    Args:
        mode: ``"auto"``, ``"bar"``, ``"lines"`` or ``"none"`` (see the module docstring).
        file: the stream to write to.
    """

    def __init__(self, mode: str = "auto", file: IO | None = None):
        if mode not in ("auto", "bar", "lines", "none"):
            raise ValueError(f"progress mode must be auto, bar, lines or none, got {mode!r}")
        self.file = file if file is not None else sys.stderr
        if mode == "auto":
            mode = "bar" if in_notebook() or _is_terminal(self.file) else "lines"
        self.mode = mode
        self.bar: Any = None
        self._shown = 0.0
        self._last_eval_s = 0.0
        self._spinner: _Spinner | _Delayed | None = None

    # pipeline hooks ---------------------------------------------------------------------------------
    def on_stage(self, text: str) -> None:
        """A stage begins (e.g. reading the data): a spinner on a terminal; in a log, one line once it has
        taken ``STAGE_LINE_AFTER_S`` seconds (a quick stage, or one that fails at once, prints nothing)."""
        self._stop_spinner()
        if self.mode == "bar":
            self._spinner = _Spinner(text, self.file)
        elif self.mode == "lines":
            self._spinner = _Delayed(f"{text} …", self.file, STAGE_LINE_AFTER_S)

    def on_data(self, summary: dict[str, Any]) -> None:
        """The data is read and encoded: one summary line."""
        self._stop_spinner()
        if self.mode != "none":
            self._write(data_summary_line(summary))

    # trainer hooks ----------------------------------------------------------------------------------
    def on_train_begin(self, trainer: Any) -> None:
        self._stop_spinner()
        self._last_eval_s = trainer.state.elapsed_s
        if self.mode != "bar":
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(total=trainer.total_steps, initial=trainer.state.step, desc="train", unit="step",
                        file=self.file, dynamic_ncols=True, leave=False)  # fmt: skip

    def on_step_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        if self.bar is None:
            return
        now = time.monotonic()
        if now - self._shown < 0.2 and logs["step"] < self.bar.total:
            return
        self._shown = now
        self.bar.total = self._expected_steps(trainer, logs)
        self.bar.update(logs["step"] - self.bar.n)
        postfix = {"loss": f"{logs['loss']:.4f}"}
        if "accuracy" in logs:
            postfix["acc"] = f"{logs['accuracy']:.3f}"
        postfix["tok/s"] = f"{logs['tokens_per_s']:,.0f}"
        self.bar.set_postfix(postfix, refresh=True)

    @staticmethod
    def _expected_steps(trainer: Any, logs: dict[str, Any]) -> int:
        """The step the run will end at: its step total, or sooner where the time budget runs out first."""
        total = trainer.total_steps
        budget = trainer.config.time_budget
        step, elapsed = logs["step"], logs["elapsed_s"]
        if budget and step and elapsed > 1.0:
            by_budget = step + (budget - elapsed) * step / elapsed
            total = min(total, max(step, int(by_budget)))
        return max(total, step)

    def on_evaluate(self, trainer: Any, record: dict[str, Any]) -> None:
        if self.mode == "none":
            return
        took = record.get("elapsed_s", 0.0) - self._last_eval_s
        self._last_eval_s = record.get("elapsed_s", 0.0)
        epochs = trainer.config.epochs if trainer.config.max_steps is None else None
        epoch = f"epoch {record['epoch']:.2f}" + (f"/{epochs}" if epochs else "")
        budgeted = trainer.config.time_budget and not trainer.config.max_steps
        total = "" if budgeted else f"/{trainer.total_steps:,}"
        shown = [epoch, f"step {record['step']:,}{total}", f"{took:.1f}s"]
        for key, value in record.items():
            if key.startswith(("train_", "valid_")):
                name = key.replace("train_", "").replace("_", " ")
                shown.append(f"{name} {value:.4f}")
        shown.append(f"{record.get('tokens_per_s', 0):,.0f} tok/s")
        self._write(" - ".join(shown))

    def on_train_end(self, trainer: Any, result: Any) -> None:
        self.close()

    def close(self) -> None:
        self._stop_spinner()
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    # helpers ---------------------------------------------------------------------------------------
    def _write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=self.file)
        else:
            print(line, file=self.file, flush=True)

    def _stop_spinner(self) -> None:
        if self._spinner is not None:
            self._spinner.stop()
            self._spinner = None


STAGE_LINE_AFTER_S = 2.0


class _Delayed:
    """Write one line after ``delay`` seconds unless stopped first."""

    def __init__(self, line: str, file: IO, delay: float):
        self._timer = threading.Timer(delay, lambda: print(line, file=file, flush=True))
        self._timer.daemon = True
        self._timer.start()

    def stop(self) -> None:
        self._timer.cancel()


class _Spinner:
    """``text ⠋ 3s`` redrawn in place on a terminal until :meth:`stop`; then the line is cleared."""

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, text: str, file: IO):
        self.text, self.file = text, file
        self._done = threading.Event()
        self._start = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        while not self._done.wait(0.2 if i else 0.0):
            seconds = time.monotonic() - self._start
            self.file.write(f"\r{self.text} {self.FRAMES[i % len(self.FRAMES)]} {seconds:.0f}s")
            self.file.flush()
            i += 1

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
        self.file.write("\r\033[K")
        self.file.flush()


class FunctionProgress:
    """Wraps a plain function as a Trainer callback: ``fn(logs)`` after every step."""

    def __init__(self, fn: Callable[[dict[str, Any]], Any]):
        self.fn = fn

    def on_step_end(self, trainer: Any, logs: dict[str, Any]) -> None:
        self.fn(logs)
