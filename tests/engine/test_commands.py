"""train/test/predict through ``aucseg.cli.main`` with stand-in model/data/eval layers."""

import json
from pathlib import Path

import pytest
import torch

from aucseg.cli import main
from aucseg.engine.checkpoint import load_checkpoint_file

from . import fakes

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SYNTH = str(CONFIGS / "synthetic_aucseg_segnext_t.yaml")


def small(root, **extra):
    values = {
        "data.root": root,
        "data.num_workers": 0,
        "data.batch_size": 2,
        "schedule.max_iters": 4,
        "schedule.warmup_iters": 1,
        "evaluation.interval": 2,
        "runtime.checkpoint_interval": 2,
        "runtime.log_interval": 1,
        "runtime.tensorboard": "false",
        "runtime.progress": "false",
        "runtime.device": "cpu",
        **extra,
    }
    return ["--set", *[f"{k}={v}" for k, v in values.items()]]


def test_bad_key_fails_before_work(tmp_path, capsys):
    code = main(["train", SYNTH, "--work-dir", str(tmp_path / "w"), "--set", "data.roots=x"])
    assert code == 2
    err = capsys.readouterr().err
    assert "'data.roots'" in err and "allowed keys" in err
    assert not (tmp_path / "w").exists()


def test_bad_value_and_bad_option(tmp_path, capsys):
    assert main(["train", SYNTH, "--work-dir", str(tmp_path), "--set", "runtime.amp=fp8"]) == 2
    assert "'none', 'bf16', 'fp16'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["train", SYNTH, "--work-dir", str(tmp_path), "--amp", "fp8"])
    assert exc.value.code == 2
    assert main(["test", str(tmp_path / "missing.yaml"), "x.pth"]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_missing_pretrained_names_where_to_get_it(tmp_path, monkeypatch, capsys):
    fakes.install(monkeypatch)
    args = small(tmp_path, **{"model.pretrained": str(tmp_path / "mscan_t.pth")})
    assert main(["train", SYNTH, "--work-dir", str(tmp_path / "w"), *args]) == 2
    err = capsys.readouterr().err
    assert "mscan_t.pth" in err and "Visual-Attention-Network/SegNeXt" in err


def test_train_resume_test_predict(tmp_path, monkeypatch, capsys):
    built = fakes.install(monkeypatch)
    work = tmp_path / "run"
    assert main(["train", SYNTH, "--work-dir", str(work), "--seed", "3", *small(tmp_path)]) == 0
    assert (work / "config.yaml").is_file()
    state = load_checkpoint_file(work / "checkpoints" / "last.pth")
    assert state["iteration"] == 4 and state["config"]["runtime"]["seed"] == 3
    assert state["memory_bank"] == {"calls": 4}
    assert (work / "checkpoints" / "best.pth").is_file()
    names = [name for name, _, _ in built["losses"]]
    assert names == ["square_auc", "cross_entropy"]
    assert built["losses"][0][2]["sync"] is False
    records = [json.loads(x) for x in (work / "log.jsonl").read_text().splitlines()]
    assert {"loss_square_auc", "loss_ce", "bank/calls"} <= set(records[0])

    # continue the same run to 6 iterations
    more = small(tmp_path, **{"schedule.max_iters": 6})
    assert main(["train", SYNTH, "--work-dir", str(work), "--resume", *more]) == 0
    assert load_checkpoint_file(work / "checkpoints" / "last.pth")["iteration"] == 6

    out = tmp_path / "metrics.json"
    ckpt = str(work / "checkpoints" / "last.pth")
    args = ["test", SYNTH, ckpt, "--out", str(out), "--tta", *small(tmp_path)]
    assert main(args) == 0
    metrics = json.loads(out.read_text())
    assert metrics["flip"] is True and len(metrics["scales"]) == 6
    assert "mIoU" in capsys.readouterr().out

    image = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(image)
    assert main(["predict", ckpt, str(image), "--out", str(tmp_path / "pred")]) == 0
    assert (tmp_path / "pred" / "a_overlay.png").is_file()
    assert main(["predict", ckpt, str(tmp_path / "nope.png"), "--out", str(tmp_path)]) == 2


def test_nan_returns_1_and_names_term(tmp_path, monkeypatch, capsys):
    fakes.install(monkeypatch)
    args = small(tmp_path, **{"optimizer.lr": "1e30", "schedule.warmup_iters": 0})
    code = main(["train", SYNTH, "--work-dir", str(tmp_path / "w"), *args])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "loss term 'loss_" in err and "at iteration" in err


def test_official_checkpoint_without_config_needs_config(tmp_path, monkeypatch, capsys):
    fakes.install(monkeypatch)
    path = tmp_path / "official.pth"
    torch.save({"meta": {}, "state_dict": {}}, path)
    image = tmp_path / "a.png"
    image.write_bytes(b"")
    assert main(["predict", str(path), str(image), "--out", str(tmp_path / "o")]) == 2
    assert "--config" in capsys.readouterr().err
