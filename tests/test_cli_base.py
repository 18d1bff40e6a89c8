"""The command's shell: version, help, and the error contract (one line, exit 2)."""

import click
import pytest

from rnnkit import cli as cli_module
from rnnkit.errors import DataError


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as e:
        cli_module.main(["--version"])
    assert e.value.code == 0
    assert "rnnkit" in capsys.readouterr().out


def test_input_error_is_one_line_and_exit_2(capsys, monkeypatch):
    @cli_module.cli.command("boom-for-test")
    def boom():
        raise DataError("wrong column count: expected 2, got 3", path="x.csv", line=7)

    try:
        with pytest.raises(SystemExit) as e:
            cli_module.main(["boom-for-test"])
    finally:
        cli_module.cli.commands.pop("boom-for-test")
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err == "rnnkit: error: x.csv:7: wrong column count: expected 2, got 3\n"


def test_unexpected_error_is_not_swallowed():
    @cli_module.cli.command("bug-for-test")
    def bug():
        raise KeyError("a bug")

    try:
        with pytest.raises(KeyError):
            cli_module.cli.main(args=["bug-for-test"], standalone_mode=False)
    finally:
        cli_module.cli.commands.pop("bug-for-test")
    assert isinstance(cli_module.cli, click.Group)
