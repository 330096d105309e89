from pathlib import Path

import pytest
import yaml

from aucseg.config import (
    Config,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _write(tmp_path, data):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_defaults_round_trip(tmp_path):
    cfg = Config()
    path = save_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(path) == cfg


def test_override_values_are_typed(tmp_path):
    path = _write(
        tmp_path, {"loss": {"terms": [{"name": "square_auc"}, {"name": "cross_entropy"}]}}
    )
    cfg = load_config(
        path,
        [
            "data.root=/data/ade",
            "optimizer.lr=1e-4",
            "data.crop_size=[64,96]",
            "loss.terms.0.weight=4",
            "model.pretrained=null",
            "memory_bank.tail_classes=[1,2]",
        ],
    )
    assert cfg.data.root == "/data/ade"
    assert cfg.optimizer.lr == pytest.approx(1e-4) and isinstance(cfg.optimizer.lr, float)
    assert cfg.data.crop_size == (64, 96)
    assert cfg.loss.terms[0].weight == 4.0 and cfg.loss.terms[1].name == "cross_entropy"
    assert cfg.model.pretrained is None
    assert cfg.memory_bank.tail_classes == [1, 2]


def test_unknown_key_names_key_and_allowed(tmp_path):
    path = _write(tmp_path, {"data": {"roots": "x"}})
    with pytest.raises(ValueError, match=r"'data.roots'.*did you mean 'root'.*allowed keys"):
        load_config(path)
    with pytest.raises(ValueError, match=r"unknown config key 'optimizer.lrr'"):
        load_config(_write(tmp_path, {}), ["optimizer.lrr=1"])
    with pytest.raises(ValueError, match=r"unknown config key 'modell'"):
        config_from_dict({"modell": {}})


def test_bad_choice_lists_allowed_values(tmp_path):
    with pytest.raises(ValueError, match=r"runtime.amp.*'none', 'bf16', 'fp16'"):
        load_config(_write(tmp_path, {}), ["runtime.amp=fp8"])
    with pytest.raises(ValueError, match=r"loss.terms.0.name.*'square_auc'"):
        config_from_dict({"loss": {"terms": [{"name": "dice"}]}})


def test_bad_type_and_cross_field(tmp_path):
    with pytest.raises(ValueError, match=r"data.batch_size.*'four'"):
        load_config(_write(tmp_path, {}), ["data.batch_size=four"])
    with pytest.raises(ValueError, match=r"evaluation.crop_size"):
        config_from_dict({"evaluation": {"mode": "slide"}})
    with pytest.raises(ValueError, match=r"evaluation.best_metric"):
        config_from_dict({"evaluation": {"best_metric": "loss"}})
    with pytest.raises(ValueError, match=r"data.class_groups.*aucseg stats"):
        config_from_dict({"evaluation": {"best_metric": "mIoU_tail"}})
    with pytest.raises(ValueError, match=r"memory_bank.tail_classes"):
        config_from_dict({"model": {"num_classes": 5}, "memory_bank": {"tail_classes": [7]}})
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides({}, ["data.root"])
    with pytest.raises(ValueError, match="list index"):
        apply_overrides({"loss": {"terms": [{}]}}, ["loss.terms.3.weight=1"])


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_to_dict_is_plain():
    data = config_to_dict(Config())
    assert data["data"]["crop_size"] == [512, 512]
    assert config_from_dict(data) == Config()


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert cfg.model.num_classes >= 2
