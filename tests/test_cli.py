import subprocess
import sys

import pytest

from aucseg import __version__
from aucseg.cli import COMMANDS, main


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_top_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_is_rejected(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert f"aucseg {name}" in capsys.readouterr().out


def test_python_m_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "aucseg", "--version"], capture_output=True, text=True, check=True
    )
    assert __version__ in out.stdout


def test_bad_input_is_one_error_line_with_exit_code_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AUCSEG_DEBUG", raising=False)
    code = main(["make-synthetic", "--root", str(tmp_path), "--height", "4"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("aucseg make-synthetic: error:") and "height" in err
    monkeypatch.setenv("AUCSEG_DEBUG", "1")
    with pytest.raises(ValueError, match="height"):
        main(["make-synthetic", "--root", str(tmp_path), "--height", "4"])
