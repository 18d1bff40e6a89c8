"""The ``rnnkit`` command: a thin shell over the Python API.

This is the only module that prints or exits. Each command parses its options, calls the library,
and prints the result. Errors the user can fix (:class:`rnnkit.errors.InputError`) become one line on
stderr and exit code 2; anything unexpected keeps its traceback and exits with code 1. Ctrl-C (SIGINT) or
SIGTERM ends any command with one line, ``rnnkit: <command> interrupted by SIGINT; ...``, and exit code
130 or 143 (``train`` first saves a checkpoint and says how to resume).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
from typing import NoReturn

import click

from . import __version__
from ._io import json_line
from .errors import InputError, TrainingError
from .interrupts import InterruptOnSignals, exit_code


class _OneLineError(click.ClickException):
    """A usage error shown as ``rnnkit: error: <message>`` on one line (not click's Usage/Try/Error block)."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        click.echo(f"rnnkit: error: {self.message}", err=True)


def _one_line(text: str) -> str:
    """A message on one line: its lines joined with spaces."""
    return " ".join(str(text).split())


def _usage_error(e: click.ClickException) -> _OneLineError:
    message = _one_line(e.format_message())
    ctx = getattr(e, "ctx", None)
    if isinstance(e, click.UsageError) and ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    return _OneLineError(message, e.exit_code)


class _Group(click.Group):
    """Click group that prints every error the user can fix as one line, ``rnnkit: error: …``, exit code 2:
    click's own usage errors (unknown option, bad value) and the library's input errors alike. A training
    run that diverged is one line too, with exit code 1. An interrupt (Ctrl-C, SIGTERM) is one line and
    exit code 130 / 143, never click's "Aborted!" and exit code 1."""

    signals: InterruptOnSignals | None = None  # main()'s, while the command line runs as a program

    def make_context(self, info_name, args, parent=None, **extra):
        command = next((a for a in args if a in self.commands), None)
        try:
            ctx = self._make_context(info_name, args, parent=parent, **extra)
            ctx.meta["rnnkit.command"] = command
            return ctx
        except KeyboardInterrupt as e:  # while parsing (its checks import PyTorch): as in invoke
            _interrupted(command, getattr(e, "signum", signal.SIGINT))
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception:
            if self.signals is None or self.signals.received is None:
                raise
            _interrupted(command, self.signals.received)

    def _make_context(self, info_name, args, parent=None, **extra):
        from .errors import check_text  # not rnnkit.limits: that imports PyTorch, and --help should not wait

        for number, arg in enumerate(args, start=1):  # bytes that are not UTF-8 arrive as lone surrogates
            try:
                check_text(arg, f"command-line argument {number}")
            except InputError as e:
                raise _OneLineError(str(e)) from None
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.ClickException as e:
            raise _usage_error(e) from None

    def invoke(self, ctx: click.Context):
        try:
            _check_interrupts()  # swallowed while parsing?
            result = super().invoke(ctx)
            _check_interrupts()  # an interrupt a library swallowed on the way still ends the command
            return result
        except _OneLineError:
            raise
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.ClickException as e:
            raise _usage_error(e) from None
        except InputError as e:
            click.echo(f"rnnkit: error: {_one_line(e)}", err=True)
            ctx.exit(2)
        except TrainingError as e:
            click.echo(f"rnnkit: error: {_one_line(e)}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt as e:  # Ctrl-C, or main()'s SIGTERM handler (rnnkit.interrupts.Interrupted)
            _interrupted(ctx.meta.get("rnnkit.command"), getattr(e, "signum", signal.SIGINT))
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception:
            if self.signals is None or self.signals.received is None:
                raise
            _interrupted(ctx.meta.get("rnnkit.command"), self.signals.received)  # e.g. a half-imported module


_WRITES_FILES = {"train", "eval", "export", "inspect", "datasets"}


def _check_interrupts() -> None:
    """Raise the interrupt that a library swallowed, so that the command stops now rather than at its end:
    PyTorch does swallow one that arrives while its import is importing NumPy."""
    if _Group.signals is not None:
        _Group.signals.check()


def _interrupted(command: str | None, signum: int) -> NoReturn:
    """End an interrupted command: one line on stderr, exit code 130 (SIGINT) or 143 (SIGTERM)."""
    command = command or "rnnkit"
    # Every file is written atomically (a temporary file, then a rename): whole, or not at all.
    harm = "no file was left half-written" if command in _WRITES_FILES else "nothing was written"
    click.echo(f"rnnkit: {command} interrupted by {signal.Signals(signum).name}; {harm}", err=True)
    raise click.exceptions.Exit(exit_code(signum))


class _OneLineHandler(logging.Handler):
    """Prints a library warning as one line, ``rnnkit: warning: <message>``, on the current stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        message = " ".join(record.getMessage().splitlines())
        click.echo(f"rnnkit: {record.levelname.lower()}: {message}", err=True)


def _setup_logging() -> None:
    """Show the library's warnings (``logging.getLogger("rnnkit.…")``) on stderr, once per process."""
    logger = logging.getLogger("rnnkit")
    if not any(isinstance(h, _OneLineHandler) for h in logger.handlers):
        logger.addHandler(_OneLineHandler(logging.WARNING))


class DownloadProgress:
    """A ``progress(bytes_done, bytes_total)`` callback that draws a tqdm bar per downloaded file on stderr.

    Pass it to the library (``read_examples(spec, progress=...)``) and close it when done; a new bar
    starts whenever ``bytes_done`` restarts at 0.
    """

    def __init__(self, desc: str = "download"):
        self.desc = desc
        self._bar = None

    def __call__(self, done: int, total: int | None) -> None:
        from tqdm import tqdm

        if self._bar is None or done == 0:
            self.close()
            self._bar = tqdm(total=total, desc=self.desc, unit="B", unit_scale=True, unit_divisor=1024)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> DownloadProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rnnkit")
def cli() -> None:
    """Recurrent neural networks for text: train, evaluate, predict, generate, inspect, serve, export."""
    _setup_logging()


@cli.command("datasets")
@click.option("--download", "download_name", metavar="NAME", help="Download NAME's files into the cache now.")
def datasets_command(download_name: str | None) -> None:
    """List the named datasets usable as --data SPEC: task, splits, size, where, and whether offline."""
    from .data import fetch_dataset, list_datasets

    if download_name:
        with DownloadProgress(download_name) as progress:
            fetch_dataset(download_name, progress=progress)
    header = ("name", "task", "splits", "size", "where", "offline")
    rows = [header, *(_dataset_row(d) for d in list_datasets())]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    click.echo("\nUse a name as --data SPEC, with an optional split: --data ag_news:test.")


def _dataset_row(d: dict) -> tuple[str, ...]:
    sizes = [d["sizes"][s] for s in d["splits"]]
    size = " / ".join("?" if n is None else f"{n:,}" for n in sizes) + f" {d['unit']}"
    where = "bundled" if d["bundled"] else _home_relative(d["where"])
    if d["offline"]:
        offline = "yes"
    elif d["available"]:
        offline = f"{', '.join(d['available'])} only"
    else:
        offline = "no (downloads on first use)"
    return d["name"], d["task"], ", ".join(d["splits"]), size, where, offline


def _home_relative(path: str) -> str:
    from pathlib import Path

    home = str(Path.home())
    return "~" + path[len(home) :] if path.startswith(home + "/") else path


# --- train / eval / predict ------------------------------------------------------------------------
def _config_options(command):
    """Add one option per config field (``ModelConfig.hidden_dim`` → ``--hidden-dim``), help from its comment.

    Every option defaults to None, meaning "not given", so presets and ``--config`` files keep their values.
    """
    import dataclasses
    import typing

    from .config import SECTIONS, field_help, field_types, option_name

    for cls in reversed(list(SECTIONS.values())):
        helps, types = field_help(cls), field_types(cls)
        for f in reversed(dataclasses.fields(cls)):
            tp = types[f.name]
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if args and typing.get_origin(tp) is not typing.Literal:
                tp = args[0]
            default = f.default if f.default is not dataclasses.MISSING else None
            help_text = f"{helps.get(f.name, '')} [default: {default}]"
            name = option_name(f.name)
            if tp is bool:
                option = click.option(f"{name}/--no-{name[2:]}", f.name, default=None, help=help_text)
            elif typing.get_origin(tp) is typing.Literal:
                option = click.option(name, f.name, type=click.Choice(typing.get_args(tp)), help=help_text)
            else:
                option = click.option(name, f.name, type=tp, help=help_text)
            command = option(command)
    return command


@cli.command("train")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="JSON settings file (or a run's config.json).")  # fmt: skip
@click.option("--preset", help="Start from a preset: lesson-rnn, lesson-lstm, lesson-lstm-packed, default, "
                                "ulmfit; char-lm, word-lm, awd-lm (language models).")  # fmt: skip
@click.option("--task", type=click.Choice(["classify", "lm"]),
              help="What to train: a classifier, or a language model (lm; starts from the char-lm preset "
                   "unless --preset says otherwise). [default: classify]")  # fmt: skip
@_config_options
@click.option("--out", type=click.Path(file_okay=False), help="Run folder to write. [default: runs/<preset>]")
@click.option("--resume", is_flag=True,
              help="Continue the interrupted run in --out with its saved settings (or extend a finished "
                   "one: --resume --epochs N).")  # fmt: skip
@click.option("--init-from", "init_from", metavar="RUN",
              help="Start from a trained classifier run's weights, vocabulary and labels (fine-tuning on "
                   "--data; new labels get new output rows), or from a language model run (rnnkit "
                   "pretrain): its vocabulary, embedding and recurrent layers.")  # fmt: skip
@click.option("--quiet", "-q", is_flag=True, help="No progress display (the summary is still printed).")
@click.option("--nproc", type=click.IntRange(min=1),
              help="Train data-parallel in N processes on this machine (PyTorch DDP, as `torchrun "
                   "--nproc-per-node N -m rnnkit train ...`); --batch-size stays the global batch. "
                   "See docs/distributed.md.")  # fmt: skip
def train_command(config_file, preset, task, out, resume, init_from, quiet, nproc, **settings) -> None:
    """Train a model on --data and write a run folder (weights, vocabulary, metrics, report, plots).

    Progress goes to standard error: a live bar on a terminal, one line per evaluation in a log file or
    pipe, nothing with --quiet. Ctrl-C (or SIGTERM) stops after the current step, saves a checkpoint and
    prints how to resume (exit code 130, or 143).
    """
    from . import api
    from .interrupts import Interrupted, StopOnSignals, exit_code
    from .progress import TrainProgress
    from .training import distributed

    settings["task"] = task
    if init_from is not None:
        settings["init_from"] = init_from
    if nproc is not None and nproc > 1:
        _launch_train(nproc, config_file, preset, out, resume, settings)
        return
    main = distributed.is_main_process()  # under torchrun, rank 0 alone shows progress and the summary
    if not main:
        logging.getLogger("rnnkit").setLevel(logging.ERROR)
    progress = TrainProgress("none" if quiet or not main else "auto")
    alone = distributed.current() is None and int(os.environ.get("WORLD_SIZE", "1")) <= 1
    try:
        with StopOnSignals() if alone else contextlib.nullcontext() as stop:
            run = api.train(preset=preset, config=config_file, out=out, resume=resume, progress=progress,
                            callbacks=[stop] if stop else [], **settings)  # fmt: skip
    except Interrupted as e:
        progress.close()
        click.echo(f"rnnkit: {_interrupted_message(e, out)}", err=True)
        sys.exit(exit_code(e.signum))
    finally:
        progress.close()  # a spinner or bar never outlives an error
    if main:
        _print_train_summary(run)


@cli.command("pretrain")
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="JSON settings file (or a run's config.json).")  # fmt: skip
@click.option("--preset", help="Start from a preset. [default: awd-lm]")
@_config_options
@click.option("--out", type=click.Path(file_okay=False), help="Run folder to write. [default: runs/awd-lm]")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in --out with its saved settings.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display (the summary is still printed).")
@click.pass_context
def pretrain_command(ctx, config_file, preset, out, resume, quiet, **settings) -> None:
    """Pretrain a word-level language model for classifiers (ULMFiT's first stage).

    Reads the texts of --data (a labelled CSV/TSV/JSONL file, class folder or dataset: its labels are
    ignored; or a .txt corpus) and of --unlabeled (a .txt file with a text per line, a table's text
    column, or a folder with a text per .txt file), and trains an AWD-LSTM (preset awd-lm) to predict the
    next word. Start a classifier from it with: rnnkit train --data LABELLED --init-from RUN. (Or do both
    at once: rnnkit train --data LABELLED --pretrain [--unlabeled MORE].)
    """
    if settings.get("pretrain"):
        raise click.UsageError("--pretrain is a classifier option (rnnkit train --pretrain)")
    preset = preset or (None if config_file or resume else "awd-lm")
    ctx.invoke(train_command, config_file=config_file, preset=preset, task="lm", out=out, resume=resume,
               init_from=None, quiet=quiet, nproc=None, **settings)  # fmt: skip


def _interrupted_message(e, out) -> str:
    """What an interrupted run says: where its checkpoint is and the command that resumes it."""
    import shlex
    import signal
    from pathlib import Path

    from .training.checkpoint import TRAINER_STATE

    run = e.run or (Path(out) if out else None)
    name = signal.Signals(e.signum).name
    if run is None or not (Path(run) / TRAINER_STATE).is_file():
        return f"interrupted by {name} before the first training step; nothing to resume"
    at = f" at step {e.step:,}" if e.step is not None else ""
    return (f"interrupted by {name}{at}; checkpoint saved in {run}. "
            f"Resume with: rnnkit train --out {shlex.quote(str(run))} --resume")  # fmt: skip


def _launch_train(nproc: int, config_file, preset, out, resume: bool, settings: dict) -> None:
    """``train --nproc N``: check the settings here, then run the same command (without ``--nproc``) in N
    processes under torch's launcher; exit with the first failed process's exit code."""
    from .config import option_name, resolve_config
    from .training import distributed

    if not resume:
        cfg = resolve_config(preset=preset, config_file=config_file, overrides=settings)
        distributed.check_world_size(nproc, cfg.train.batch_size)
    args = ["train"]
    for flag, value in (("--config", config_file), ("--preset", preset), ("--out", out)):
        if value is not None:
            args += [flag, str(value)]
    for name, value in settings.items():
        if isinstance(value, bool):
            args.append(option_name(name) if value else "--no-" + option_name(name)[2:])
        elif value is not None:
            args += [option_name(name), str(value)]
    if resume:
        args.append("--resume")
    errors: list[str] = []
    code = distributed.launch(nproc, args, errors=errors)
    for line in errors:  # a process other than rank 0 failed first: its own line, once
        click.echo(line, err=True)
    if code:
        sys.exit(code)


def _how_long(epochs: float, steps: int) -> str:
    """``2 epochs (24 steps)``, ``1 epoch (12 steps)``, or ``5 steps (0.4% of an epoch)`` for short runs."""
    from .progress import plural

    if epochs >= 0.995:
        return f"{plural(round(epochs, 2), 'epoch')} ({plural(steps, 'step')})"
    return f"{plural(steps, 'step')} ({epochs:.1%} of an epoch)"


def _print_train_summary(run) -> None:
    from .training.checkpoint import CONFUSION, CURVES, REPORT, RunFolder

    folder = RunFolder(run)
    report = folder.read_json(REPORT)
    r = report
    if "accuracy" in r:
        scores = f"accuracy {r['accuracy']:.4f}  macro-F1 {r['macro_f1']:.4f}"
        click.echo(f"{r.get('split', 'test')} {scores}  ({r['n']:,} examples of {r.get('data', '?')})")
    if "perplexity" in r:  # a language model
        scores = f"loss {r['loss']:.4f}  perplexity {r['perplexity']:.2f}"
        scores += f"  bits/char {r['bpc']:.4f}" if "bpc" in r else ""
        click.echo(f"{r.get('split', 'valid')} {scores}  ({r.get('data', '?')})")
    if "train_seconds" in r:
        click.echo(f"trained {_how_long(r.get('epochs', 0), r.get('steps', 0))} in "
                   f"{r['train_seconds']:.1f} s, {r.get('tokens_per_s', 0):,.0f} tokens/s "
                   f"on {r.get('device', '?')}; stopped by {r.get('stop_reason', '?')}")  # fmt: skip
    _print_recipe(r.get("recipe") or {})
    if "vectors" in r:
        v = r["vectors"]
        click.echo(f"vectors: {v['found']:,} of {v['words']:,} words ({v['coverage']:.1%}) found in "
                   f"{v['path']}, covering {v['token_coverage']:.1%} of training tokens")  # fmt: skip
    click.echo(f"report: {folder.file(REPORT)}")
    plots = [str(folder.file(n)) for n in (CURVES, CONFUSION) if folder.exists(n)]
    if plots:
        click.echo(f"plots:  {'  '.join(plots)}")


def _print_recipe(recipe: dict) -> None:
    """The preset, what the data planned, and how the two paths of the default recipe scored and mixed."""
    if not recipe.get("preset"):
        return
    planned = "; ".join(recipe.get("planned", {}).values())
    click.echo(f"preset {recipe['preset']}" + (f" ({planned})" if planned else ""))
    mix = recipe.get("mix")
    if mix:
        metric = "macro-F1" if mix["monitor"] == "macro_f1" else "accuracy"
        weights = f"{mix['mix']:.2f} : {1 - mix['mix']:.2f}"
        click.echo(f"validation {metric}: recurrent path {mix['rnn_only']:.4f}, n-gram path "
                   f"{mix['ngrams_only']:.4f}, mixed {weights} {mix['valid']:.4f}")  # fmt: skip


@cli.command("eval")
@click.argument("run", type=click.Path())
@click.option("--data", "data", required=True,
              help="Data SPEC: a file, folder, or registered name (labelled data for a classifier, "
                   "a text file or corpus for a language model).")  # fmt: skip
@click.option("--text-col", help="Column(s) holding the text. [default: the run's]")
@click.option("--label-col", help="Column holding the label. [default: the run's]")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
@click.option("--predictions", "predictions_file", type=click.Path(dir_okay=False),
              help="Write every example's prediction (text, label, predicted, probability, correct) to this "
                   ".csv, .tsv or .jsonl file, for error analysis.")  # fmt: skip
def eval_command(run, data, text_col, label_col, device, as_json, predictions_file) -> None:
    """Evaluate a trained run: a classifier's accuracy, per-class precision, recall and F1 with macro and
    weighted averages (scikit-learn's classification_report layout) on labelled data; a language model's
    loss, perplexity and bits per character on a text."""

    from . import api
    from .errors import ConfigError

    if predictions_file and not predictions_file.lower().endswith((".csv", ".tsv", ".jsonl")):
        raise ConfigError(f"--predictions {predictions_file}: name a .csv, .tsv or .jsonl file")
    loaded = api.load(run, device=device)
    options = {k: v for k, v in (("text_col", text_col), ("label_col", label_col)) if v}
    if predictions_file:
        if not hasattr(loaded, "labels"):
            raise ConfigError("--predictions is for classifiers; a language model has no labels to predict")
        options["predictions"] = True
    metrics = loaded.evaluate(data, **options)
    predicted = metrics.pop("predictions", None)
    if predicted is not None:
        _write_predictions(predictions_file, predicted)
    if as_json:
        click.echo(json_line(metrics))
        return
    if "accuracy" not in metrics:
        for key, value in metrics.items():
            click.echo(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
        return
    m = metrics
    click.echo(f"accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  ({m['n']:,} examples)\n")
    click.echo(format_classification_report(m))
    if predicted is not None:
        click.echo(f"\npredictions: {predictions_file}")


def format_classification_report(m: dict, digits: int = 4) -> str:
    """``report.json``'s metrics in scikit-learn's ``classification_report`` layout (macro and weighted
    averages included)."""
    width = max([len("weighted avg"), *(len(label) for label in m["labels"])])
    cell = digits + 5
    header = " ".join(f"{h:>{cell}}" for h in ("precision", "recall", "f1-score", "support"))
    lines = [f"{'':>{width}} {header}", ""]

    def row(name: str, s: dict) -> str:
        scores = " ".join(f"{s[k]:>{cell}.{digits}f}" for k in ("precision", "recall", "f1"))
        return f"{name:>{width}} {scores} {s['support']:>{cell},}"

    lines += [row(label, s) for label, s in m["per_class"].items()]
    lines.append("")
    blank = " " * cell
    lines.append(f"{'accuracy':>{width}} {blank} {blank} {m['accuracy']:>{cell}.{digits}f} {m['n']:>{cell},}")
    if "macro_avg" in m:
        lines += [row("macro avg", m["macro_avg"]), row("weighted avg", m["weighted_avg"])]
    return "\n".join(lines)


def _write_predictions(path: str, rows: list[dict]) -> None:
    """Per-example predictions as CSV / TSV (a header, then one row each) or JSON lines, atomically."""
    import csv
    import io
    import json

    from ._io import atomic_write_text

    if path.lower().endswith(".jsonl"):
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        return
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else ["text"],
                            delimiter="\t" if path.lower().endswith(".tsv") else ",")  # fmt: skip
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


@cli.command("predict")
@click.argument("run", type=click.Path())
@click.argument("inputs", nargs=-1)
@click.option("--text", "texts", multiple=True, metavar="TEXT",
              help="A text to label, never read as a file (repeatable).")  # fmt: skip
@click.option("--file", "files", multiple=True, metavar="PATH",
              help="A file of texts to label (as an INPUT that must be a file; '-' reads standard input).")
@click.option("--text-col", help="Column(s) holding the text in a table INPUT. [default: the run's]")
@click.option("--top-k", type=click.IntRange(min=1), help="Show the K most likely labels per text.")
@click.option("--threshold", type=click.FloatRange(0, 1),
              help="Show only labels with probability ≥ P (up to --top-k); a text none reaches gets no "
                   "label ('-', null in JSON).")  # fmt: skip
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--backend", type=click.Choice(["eager", "onnx", "torchscript"]),
              help="eager PyTorch, or ONNX Runtime / TorchScript (a run folder is then exported in memory "
                   "and checked first). [default: eager for a run, the export's own format]")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="One JSON object per text: label, probability, probs.")
def predict_command(run, inputs, texts, files, text_col, top_k, threshold, device, backend, as_json) -> None:
    """Label texts with a trained run or an export.

    Each INPUT is read as a file when it is '-' (standard input) or an existing file: one text per line,
    or the text column of a .csv, .tsv or .jsonl table. Any other INPUT is a text to label, except a
    missing file name (one word ending in .txt, .csv, .tsv, .jsonl, .json or .gz), which is an error.
    --text TEXT always labels TEXT itself.
    """
    import os

    from .errors import ConfigError, DataError
    from .export import load_predictor
    from .inputs import read_file_texts, read_lines, texts_to_label

    for path in files:
        if path != "-" and not os.path.isfile(path):
            raise DataError("no such file", path=path)
    loaded = _load_predictor(load_predictor, run, backend, device)
    _check_interrupts()  # before a long file is read and labelled
    config = getattr(loaded, "config", None)
    cols = text_col or (config.data.text_col if config is not None else "text")
    text_cols = tuple(c.strip() for c in cols.split(",") if c.strip())
    found = texts_to_label(inputs, texts, text_cols=text_cols)
    for path in files:
        found += read_lines(sys.stdin) if path == "-" else read_file_texts(path, text_cols)
    if not found:
        raise ConfigError("give texts to label: TEXT or FILE arguments, --text TEXT, or - for standard input")
    k = top_k if threshold is None else (top_k or len(loaded.labels))
    for result in loaded.predict(found, top_k=k):
        if threshold is not None:
            result["probs"] = {label: p for label, p in result["probs"].items() if p >= threshold}
            if not result["probs"]:
                result["label"] = result["probability"] = None
        if as_json:
            click.echo(json_line(result))
        elif top_k or threshold is not None:
            ranked = "  ".join(f"{label} {p:.3f}" for label, p in result["probs"].items()) or "-"
            click.echo(f"{ranked}\t{result['text']}")
        else:
            click.echo(f"{result['label']}\t{result['probability']:.3f}\t{result['text']}")


def _load_predictor(load_predictor, run: str, backend: str | None, device: str):
    """A run or export that can ``predict``; a failed equality check is one line and exit code 1."""
    from .export import ExportCheckError

    try:
        return load_predictor(run, backend, device=device)
    except ExportCheckError as e:
        click.echo(f"rnnkit: error: {e}", err=True)
        sys.exit(1)


# --- inspect ---------------------------------------------------------------------------------------
def _window(ctx, param, value: str) -> int | None:
    if value == "all":
        return None
    if value.isdigit():
        return int(value)
    raise click.BadParameter(f"expected a number of tokens ≥ 0 or 'all', got {value!r}")


@cli.command("inspect")
@click.argument("run", type=click.Path())
@click.argument("text")
@click.option("--out", type=click.Path(dir_okay=False), default="report.html", show_default=True,
              help="The self-contained HTML report to write.")  # fmt: skip
@click.option("--png", type=click.Path(dir_okay=False), help="Also write a tokens × units heatmap PNG.")
@click.option("--layer", type=click.IntRange(min=0), help="Layer of the --png heatmap. [default: the last]")
@click.option("--direction", type=click.Choice(["forward", "reverse"]), default="forward", show_default=True,
              help="Direction of the --png heatmap.")  # fmt: skip
@click.option("--state", default="h", show_default=True,
              help="State or gate of the --png heatmap: h, c, i, f, g, o (LSTM); r, z, n (GRU).")  # fmt: skip
@click.option("--find-units", is_flag=True, help="Rank the units that react to --pattern in --data's texts.")
@click.option("--pattern", help="Trigger tokens for --find-units, comma-separated, e.g. not,never,no.")
@click.option("--data", "data", help="Texts for --find-units: a data SPEC (file, folder or registered name).")
@click.option("--window", default="0", show_default=True, callback=_window,
              help="Positions after a trigger: the trigger token (0), N tokens more, or 'all'.")  # fmt: skip
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="Units to list.")
@click.option("--max-texts", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Read at most this many texts of --data.")  # fmt: skip
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: tokens, prediction, per-prefix probabilities, contributions, "
              "gate summary and units (the page's data without the states).")  # fmt: skip
def inspect_command(run, text, out, png, layer, direction, state, find_units, pattern, data, window, top,
                    max_texts, device, as_json) -> None:  # fmt: skip
    """See inside a trained run: every token's states and gates, as a web page (and PNG).

    The page shows the tokens coloured by a unit, a tokens × units heatmap, the class probabilities
    after each prefix and each token's contribution (classifier) or each next token's probability
    (language model), and what the gates keep and forget. With --find-units --pattern not,never,no
    --data SPEC it also ranks the units that act as flags for the pattern.
    """

    from . import api
    from .errors import ConfigError
    from .inspect import find_units as find
    from .inspect import inspect_text, read_texts

    if find_units and not (pattern and data):
        raise click.UsageError("--find-units needs --pattern (e.g. not,never,no) and --data SPEC")
    if (pattern or data) and not find_units:
        raise click.UsageError("--pattern and --data go with --find-units")
    if not text.strip():
        raise ConfigError("TEXT is empty; give the text to inspect, e.g. rnnkit inspect RUN 'not good'")
    loaded = api.load(run, device=device)
    if not hasattr(loaded, "model"):
        raise ConfigError(f"{run} is an export; inspect needs the run folder it was exported from")
    try:  # every check before any file is written: a failed inspect leaves report.html as it was
        inspection = inspect_text(loaded, text, max_tokens=_page_tokens(loaded.config.model))
        d = 0 if direction == "forward" else 1
        k = inspection.num_layers - 1 if layer is None else layer
        _check_heatmap_choice(inspection, k, d, state, png is not None or layer is not None)
        units = None
        if find_units:
            texts = read_texts(data, loaded)
            units = find(loaded, texts, pattern, window=window, top_k=top, max_texts=max_texts)
    except InputError:
        raise
    except ValueError as e:  # the inspection's own checks (an empty text, a pattern that never occurs)
        raise ConfigError(str(e)) from None
    inspection.save_html(out, units=units)
    if png:
        ranked = units.top if units else []
        marked = [u.unit for u in ranked if (u.layer, u.direction, u.name) == (k, d, state)]
        inspection.save_png(png, layer=k, direction=d, name=state, marked=marked)
    if as_json:
        summary = inspection.to_dict(states=False)
        summary["units"] = units.to_dict() if units else None
        summary["files"] = {"report": out, "png": png}
        click.echo(json_line(summary))
        return
    _print_inspection(inspection, units)
    click.echo(f"report: {out}" + (f"\nheatmap: {png}" if png else ""))


def _page_tokens(model) -> int:
    """The most tokens `inspect` reads, so the page stays a few MB (a longer text is cut, with a warning)."""
    from .inspect.record import MAX_TOKENS
    from .inspect.report import page_token_limit

    names = {"lstm": 6, "gru": 4, "rnn": 1}.get(model.cell, 6)  # h (c) and the gates, per unit
    per_token = model.layers * (2 if model.bidirectional else 1) * names * model.hidden_dim
    return min(MAX_TOKENS, page_token_limit(per_token))


def _check_heatmap_choice(inspection, layer: int, direction: int, state: str, asked: bool) -> None:
    """``--layer``, ``--direction`` and ``--state`` name something the model has (ConfigError if not)."""
    from .errors import ConfigError

    i = inspection
    if not 0 <= layer < i.num_layers:
        last = i.num_layers - 1
        raise ConfigError(f"--layer {layer}: the model has {i.num_layers} layer(s), numbered 0..{last}")
    if direction >= i.num_directions:
        raise ConfigError("--direction reverse: the model reads one direction only (trained without "
                          "--bidirectional); use --direction forward")  # fmt: skip
    if state not in i.names:
        cell = i.cell.upper()
        raise ConfigError(f"--state {state}: a {cell} records {', '.join(i.names)}"
                          + ("; only an LSTM has a cell state c" if state == "c" else ""))  # fmt: skip


def _print_inspection(inspection, units) -> None:
    i = inspection
    if i.task == "classify":
        c = int(i.probs.argmax())
        click.echo(f"prediction: {i.prediction} {float(i.probs[c]):.3f} (of {len(i.labels)} classes)")
        header = f"p({i.prediction}) after it"
        click.echo(f"{'token':<16}  {header}  contribution")
        for t, token in enumerate(i.tokens):
            p, contribution = float(i.prefix_probs[t, c]), float(i.contributions[t])
            click.echo(f"{token[:16]:<16}  {p:>{len(header)}.3f}  {contribution:>+12.4f}")
    else:
        click.echo(f"{'token':<16}  p(token | tokens before)")
        for t, token in enumerate(i.tokens):
            p = float(i.next_token_probs[t])
            click.echo(f"{token[:16]!r:<16}  {'-' if p != p else f'{p:.4f}'}")
    for g in i.gate_summary():
        where = f"layer {g['layer']} {'forward' if g['direction'] == 0 else 'reverse'}"
        click.echo(f"gate {g['gate']} {where}: {g['above_0_9']:.1%} kept (> 0.9), "
                   f"{g['below_0_1']:.1%} forgotten (< 0.1)")  # fmt: skip
    if units is not None:
        scope = "any later token" if units.window is None else f"window {units.window}"
        click.echo(f"units for {', '.join(units.pattern)} (standardised mean difference, {scope}; "
                   f"{units.triggers:,} matches in {units.texts:,} texts):")  # fmt: skip
        for rank, u in enumerate(units.top, start=1):
            where = f"layer {u.layer} {'forward' if u.direction == 0 else 'reverse'} {u.name} unit {u.unit}"
            means = f"mean {u.mean_after:+.3f} after vs {u.mean_elsewhere:+.3f} elsewhere"
            counts = f"n = {u.n_after:,} / {u.n_elsewhere:,}"
            click.echo(f"{rank:>3}. {where:<32} d = {u.score:+.3f}  {means} ({counts})")


# --- serve / export --------------------------------------------------------------------------------
def _serve_options(command):
    """One option per :class:`rnnkit.serve.settings.ServeSettings` field, help from its comment."""
    import dataclasses
    import typing

    from .config import field_help
    from .serve.settings import ServeSettings  # not the app: FastAPI is an extra

    helps = field_help(ServeSettings)
    hints = typing.get_type_hints(ServeSettings)
    for f in reversed(dataclasses.fields(ServeSettings)):
        name = "--" + f.name.replace("_", "-")
        help_text = f"{helps.get(f.name, '')} [default: {f.default}]"
        if f.name == "backend":
            option = click.option(name, f.name, type=click.Choice(["eager", "onnx", "torchscript"]),
                                  default=f.default, help=help_text)  # fmt: skip
        else:
            tp = next((a for a in typing.get_args(hints[f.name]) if a is not type(None)), hints[f.name])
            option = click.option(name, f.name, type=tp, default=f.default, help=help_text)
        command = option(command)
    return command


@cli.command("serve")
@click.argument("run", type=click.Path(exists=True))
@_serve_options
def serve_command(run, **settings) -> None:
    """Serve a trained run (or an export: file or folder) over HTTP: JSON API, web page at /, metrics at
    /metrics, docs at /docs.

    Listens on 127.0.0.1 unless --host says otherwise. Ctrl-C or SIGTERM stops it once in-flight requests
    finish (exit code 0); interrupted while the model loads, it exits with 130 / 143. An export is served
    by its own format's runtime, without /v1/inspect (serve the run folder to inspect).
    """
    from .errors import require_extra
    from .serve.settings import ServeSettings, check_port_free

    options = ServeSettings(**settings)
    require_extra("serve", "fastapi", "uvicorn")
    if options.backend == "onnx":
        require_extra("export", "onnxruntime")
    from .serve.app import backend_summary, create_app, serve

    if options.threads:
        import torch

        torch.set_num_threads(options.threads)
    _check_port(options.host, options.port)
    check_port_free(options.host, options.port)  # before announcing: a port in use is one line
    app = create_app(run, options)  # before announcing too: a run that cannot be served is one line
    _check_interrupts()  # interrupted while loading (and swallowed): do not start the server
    url = f"http://{options.host}:{options.port}/"
    click.echo(f"rnnkit: serving {run} ({backend_summary(app)}) on {url}", err=True)
    serve(app, options)
    if _Group.signals is not None:
        _Group.signals.clear()  # the signal uvicorn stopped on (and raised again after): a graceful stop


def _check_port(host: str, port: int) -> None:
    """A ConfigError unless ``host:port`` can be listened on now (checked before "serving on …" is said)."""
    import socket

    from .errors import ConfigError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError, OverflowError) as e:
        raise ConfigError(f"--host {host}: not an address this machine can listen on ({e})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(address)
        except OSError as e:
            raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e} (another server?); "
                              f"choose another --port") from None  # fmt: skip


@cli.command("export")
@click.argument("run", type=click.Path())
@click.option("--format", "format", type=click.Choice(["onnx", "torchscript"]),
              help="ONNX (run it with ONNX Runtime) or TorchScript (torch.jit.load). "
                   "[default: from --out's suffix (.onnx, .pt), else onnx]")  # fmt: skip
@click.option("--out", type=click.Path(dir_okay=False),
              help="The model file to write (.onnx or .pt); the vocabulary, labels and config are embedded "
              "in it. [default: RUN/export/model.onnx or model.pt]")  # fmt: skip
@click.option("--check", is_flag=True,
              help="Run the export on sample texts; fail unless every probability is within 1e-4 "
              "of eager PyTorch's.")  # fmt: skip
@click.option("--check-file", type=click.File("r", encoding="utf-8", errors="replace"),
              help="Texts for --check, one per line (default: ragged samples from the vocabulary).")
def export_command(run, format, out, check, check_file) -> None:
    """Export a trained classifier to one self-describing ONNX or TorchScript file: any batch size and
    length, exact when ragged, with its vocabulary and labels inside."""
    from pathlib import Path

    from .errors import require_extra
    from .export import ExportCheckError, export_model

    if format is None:
        format = "torchscript" if out is not None and Path(out).suffix.lower() == ".pt" else "onnx"
    if format == "onnx":
        require_extra("export", "onnx", "onnxruntime")

    out = out or str(Path(run) / "export" / ("model.onnx" if format == "onnx" else "model.pt"))
    texts = [line.rstrip("\n") for line in check_file if line.strip()] if check_file else None
    try:
        result = export_model(run, out, format=format, check=check or texts is not None, texts=texts)
    except ExportCheckError as e:
        click.echo(f"rnnkit: error: {e}", err=True)
        sys.exit(1)
    click.echo(f"wrote {result.path} ({format}; vocabulary, labels and config embedded)")
    if result.max_abs_diff is not None:
        click.echo(f"check passed: max |p_export - p_eager| = {result.max_abs_diff:.2e} on "
                   f"{result.checked_texts} texts (tolerance 1e-4)")  # fmt: skip


@cli.command("generate")
@click.argument("run", type=click.Path())
@click.option("--prime", default="", help="Text to continue (printed first). [default: start fresh]")
@click.option("--length", type=int, default=500, show_default=True,
              help="Tokens to generate: characters for a character model, words for a word model.")
@click.option("--temperature", type=float, default=1.0, show_default=True,
              help="Divide the logits by T: below 1 safer, above 1 wilder; 0 is greedy (no randomness).")
@click.option("--top-k", type=int, help="Sample among the K most likely tokens only.")
@click.option("--top-p", type=float, help="Nucleus sampling: the fewest top tokens holding probability P.")
@click.option("--seed", type=int, help="Seed the sampling, so the same seed gives the same text.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
def generate_command(run, prime, length, temperature, top_k, top_p, seed, device) -> None:
    """Generate text with a trained language model, printing it as it is sampled."""
    from . import api
    from .errors import RunFolderError
    from .generate import check_options

    check_options(length, temperature, top_k, top_p, seed)
    loaded = api.load(run, device=device)
    if not isinstance(loaded, api.LanguageModelRun):
        raise RunFolderError(
            f"{run} holds a {loaded.config.task} run; `rnnkit generate` needs a language model "
            f"(train one with `rnnkit train --task lm`)"
        )
    _check_interrupts()  # before the text starts
    pieces = loaded.stream(prime, length, temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    last = ""
    try:
        for piece in pieces:
            click.echo(piece, nl=False)  # click.echo flushes: each piece shows as soon as it is sampled
            last = piece
    except KeyboardInterrupt:
        if last and not last.endswith("\n"):
            click.echo()  # the text so far ends its line before `rnnkit: generate interrupted ...`
        raise
    if not last.endswith("\n"):
        click.echo()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``rnnkit`` console script.

    SIGINT and SIGTERM raise :class:`rnnkit.interrupts.Interrupted` wherever the command is (``train`` and
    ``serve`` install their own handlers while they train or serve), so that every command ends an
    interrupt with one line and exit code 130 / 143. A process of ``train --nproc`` (under torch's
    launcher) keeps SIGTERM's default: the launcher stops its ranks with it.
    """
    rank = os.environ.get("WORLD_SIZE", "1").strip() not in ("", "0", "1")
    signals = (signal.SIGINT,) if rank else (signal.SIGINT, signal.SIGTERM)
    with InterruptOnSignals(signals) as caught:
        _Group.signals = caught
        try:
            cli.main(args=argv, prog_name="rnnkit")
        finally:
            _Group.signals = None


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
