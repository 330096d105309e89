"""Configs through the command line: registered options with their defaults, refused values,
and the listing commands ``aucseg configs``, ``aucseg models`` and ``aucseg config``."""

from __future__ import annotations

import yaml

from aucseg.config import shipped_configs

from .conftest import EXTERNAL, run_cli, small_config, write_config


def test_hinge_official_form_selectable_from_config_file(
    tmp_path, capsys, synthetic, external_on_path
):
    cfg = small_config(
        synthetic,
        loss={"terms": [{"name": "hinge_auc", "form": "official"}, {"name": "cross_entropy"}]},
        schedule={"max_iters": 1, "warmup_iters": 0},
        evaluation={"interval": 0},
    )
    work = tmp_path / "run"
    result = run_cli(capsys, "train", write_config(tmp_path / "c.yaml", cfg), "--work-dir", work)
    assert result.code == 0, result.err
    resolved = yaml.safe_load((work / "config.yaml").read_text())
    hinge = resolved["loss"]["terms"][0]
    assert hinge["name"] == "hinge_auc" and hinge["form"] == "official"
    assert {"gamma", "transform"} <= set(hinge)  # the class defaults are written out


def test_gamma_on_cross_entropy_is_refused_naming_it(tmp_path, capsys):
    work = tmp_path / "run"
    result = run_cli(capsys, "train", "synthetic_aucseg_segnext_t", "--work-dir", work,
                     "--set", "loss.terms.1.gamma=2")  # fmt: skip
    assert result.code == 2
    assert len(result.err_lines) == 1 and "loss.terms.1.gamma" in result.err
    assert "cross_entropy" in result.err
    assert not work.exists()


def test_segnext_tiny_gets_its_own_drop_path_rate(segnext_config, segnext_run, capsys):
    assert "drop_path_rate" not in segnext_config.read_text()
    resolved = yaml.safe_load((segnext_run / "config.yaml").read_text())
    assert resolved["model"]["drop_path_rate"] == 0.1
    large = run_cli(capsys, "config", segnext_config, "--set", "model.name=segnext_large")
    assert large.code == 0
    assert yaml.safe_load(large.out)["model"]["drop_path_rate"] == 0.3


def test_infinite_lr_is_refused_naming_the_key(tmp_path, capsys, tiny_config):
    work = tmp_path / "run"
    result = run_cli(capsys, "train", tiny_config, "--work-dir", work, "--set", "optimizer.lr=.inf")
    assert result.code == 2 and len(result.err_lines) == 1
    assert "optimizer.lr" in result.err
    assert not work.exists()


def test_negative_grad_clip_is_refused(tmp_path, capsys, tiny_config):
    work = tmp_path / "run"
    args = ["train", tiny_config, "--work-dir", work, "--set", "optimizer.grad_clip=-1"]
    result = run_cli(capsys, *args)
    assert result.code == 2 and len(result.err_lines) == 1
    assert "optimizer.grad_clip" in result.err and "-1" in result.err


def test_configs_lists_every_shipped_config(capsys):
    result = run_cli(capsys, "configs")
    assert result.code == 0
    listed = [line.split()[0] for line in result.out.splitlines() if line.strip()]
    assert listed == [name[: -len(".yaml")] for name in shipped_configs()]


def test_models_lists_registered_models_with_defaults(capsys):
    result = run_cli(capsys, "models", "--num-classes", "19")
    assert result.code == 0
    rows = {line.split()[0]: line for line in result.out.splitlines() if line.strip()}
    assert {"segnext_tiny", "segnext_large", "huggingface"} <= set(rows)
    assert "drop_path_rate=0.1" in rows["segnext_tiny"] and " M " in rows["segnext_tiny"]
    assert "drop_path_rate=0.3" in rows["segnext_large"]
    assert rows["huggingface"].split()[1:] == ["-", "source"]  # a required option: no count


def test_config_prints_resolved_config_with_overrides(capsys, tiny_config):
    result = run_cli(capsys, "config", tiny_config, "--set", "model.width=4", "optimizer.lr=0.01")
    assert result.code == 0, result.err
    resolved = yaml.safe_load(result.out)
    assert resolved["model"] == {
        "name": EXTERNAL, "num_classes": 19, "pretrained": None, "sync_bn": True, "width": 4,
        "delay": 0.0, "poison_rank": -1, "poison_step": 0,
    }  # fmt: skip
    assert resolved["optimizer"]["lr"] == 0.01
    bad = run_cli(capsys, "config", tiny_config, "--set", "model.depth=3")
    assert bad.code == 2 and "model.depth" in bad.err and "width" in bad.err
