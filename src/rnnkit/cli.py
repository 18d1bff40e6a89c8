"""The ``rnnkit`` command: a thin shell over the Python API.

This is the only module that prints or exits. Each command parses its options, calls the library,
and prints the result. Errors the user can fix (:class:`rnnkit.errors.InputError`) become one line on
stderr and exit code 2; anything unexpected keeps its traceback and exits with code 1.
"""

from __future__ import annotations

import sys

import click

from . import __version__
from .errors import InputError


class _Group(click.Group):
    """Click group that turns library input errors into one line and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except InputError as e:
            click.echo(f"rnnkit: error: {e}", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rnnkit")
def cli() -> None:
    """Recurrent neural networks for text: train, evaluate, predict, generate, inspect, serve, export."""


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``rnnkit`` console script."""
    cli.main(args=argv, prog_name="rnnkit")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
