"""The ``aucseg`` dispatcher and its one error path."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import yaml

from aucseg import __version__
from aucseg.cli import COMMANDS, _one_line, _resume_hint, main
from aucseg.errors import InputError, Interrupted

SYNTHETIC = "synthetic_aucseg_segnext_t"


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_top_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name, (_, description) in COMMANDS.items():
        assert f"  {name}" in out and description in out


def test_no_command_prints_help_and_returns_2(capsys):
    assert main([]) == 2
    assert "usage: aucseg" in capsys.readouterr().out


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


# ----------------------------------------------------------------------------- error path


def test_bad_input_is_one_error_line_with_exit_code_2(capsys, monkeypatch):
    monkeypatch.delenv("AUCSEG_DEBUG", raising=False)
    assert main(["config", SYNTHETIC, "--set", "optimizer.lr=0"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("aucseg config: error: config key 'optimizer.lr': got 0")
    monkeypatch.setenv("AUCSEG_DEBUG", "1")  # the traceback, for a bug report
    with pytest.raises(InputError, match=r"optimizer\.lr"):
        main(["config", SYNTHETIC, "--set", "optimizer.lr=0"])


def test_a_missing_file_is_exit_code_2(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("AUCSEG_DEBUG", raising=False)
    assert main(["config", str(tmp_path / "nope.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("aucseg config: error: config file not found:") and "nope.yaml" in err


def test_config_prints_the_resolved_config(capsys):
    assert main(["config", SYNTHETIC, "--set", "optimizer.lr=6e-5", "model.dropout=0.0"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["optimizer"]["lr"] == pytest.approx(6e-5)
    assert printed["model"] == {
        "name": "segnext_tiny", "num_classes": 19, "pretrained": None, "sync_bn": True,
        "drop_path_rate": 0.1, "dropout": 0.0,
    }  # fmt: skip


def test_configs_lists_the_shipped_configs(capsys):
    assert main(["configs"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert SYNTHETIC in names and "aucseg_segnext_l_ade20k_512x512_160k" in names


class _BadItem(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int):
        raise InputError(f"label file x{i}.png holds value 300; fix the labels")


def test_an_input_error_from_a_dataloader_worker_is_unwrapped_to_its_line():
    loader = torch.utils.data.DataLoader(_BadItem(), num_workers=1)
    with pytest.raises(InputError) as info:
        next(iter(loader))
    assert "Original Traceback" in str(info.value)  # what torch re-raises in the main process
    assert _one_line(info.value) == "label file x0.png holds value 300; fix the labels"


def test_os_errors_read_as_reason_and_file():
    assert _one_line(PermissionError(13, "Permission denied", "/runs/a")) == (
        "Permission denied: /runs/a"
    )
    assert _one_line(FileNotFoundError("config file not found: a.yaml")) == (
        "config file not found: a.yaml"
    )


def test_interrupt_hint_names_the_resume_command(tmp_path):
    exc = Interrupted(12, 2, tmp_path / "run" / "checkpoints" / "last.pth")
    assert _resume_hint(exc) == (
        f"interrupted at iteration 12; resume with: aucseg train --work-dir {tmp_path / 'run'} "
        f"--resume"
    )
    assert _resume_hint(Interrupted(0, 15, None)).endswith("aucseg train --resume")
