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


WITHOUT_EXTRAS = """
import sys
for name in ("fastapi", "uvicorn", "starlette", "onnx", "onnxruntime", "onnxscript"):
    sys.modules[name] = None  # importing it now fails, as if it were not installed
from rnnkit.cli import main
main(sys.argv[1:])
"""


def test_the_command_line_works_without_the_optional_extras(tmp_path):
    """Regression: building ``serve``'s options imported FastAPI, so without the ``serve`` extra every
    command failed with a traceback (found on a machine with a bare PyTorch). Now only ``serve`` and
    ``export --format onnx`` need their extras, and say so in one line."""
    import subprocess
    import sys

    def run(*args):
        return subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS, *args], capture_output=True, text=True)

    for args in (["--help"], ["train", "--help"], ["serve", "--help"]):
        result = run(*args)
        assert result.returncode == 0, (args, result.stderr)
    served = run("serve", str(tmp_path))
    assert served.returncode == 2 and served.stdout == ""
    assert served.stderr.strip().splitlines() == [
        "rnnkit: error: this needs the 'serve' extra: pip install 'rnnkit[serve]' (missing: fastapi, uvicorn)"
    ]
    exported = run("export", str(tmp_path))
    assert exported.returncode == 2
    assert "pip install 'rnnkit[export]' (missing: onnx, onnxruntime)" in exported.stderr
