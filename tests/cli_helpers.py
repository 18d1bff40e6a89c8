"""What the command-line tests share: running the CLI in-process and checking one-line errors."""

from __future__ import annotations

from click.testing import CliRunner

from rnnkit.cli import cli


def invoke(*args, input=None, env=None):
    """Run ``rnnkit ARGS`` in-process (every argument made a string); click's result."""
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, env=env)


def option_args(settings: dict) -> list[str]:
    """``{"hidden_dim": 8}`` → ``["--hidden-dim", "8"]``."""
    return [a for k, v in settings.items() for a in (f"--{k.replace('_', '-')}", str(v))]


def one_line_error(result, *needles) -> None:
    """Exit code 2 and exactly one ``rnnkit: error: …`` line on stderr, containing every needle."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    err = result.stderr
    assert err.count("\n") == 1 and err.startswith("rnnkit: error: "), err
    for needle in needles:
        assert needle in err, err
