"""The pydantic run configuration: loading, overrides, registered names and their options."""

from __future__ import annotations

import pytest
import yaml

from aucseg.config import (
    ENGINE_LOSS_PARAMS,
    Config,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    load_config,
    read_config_dict,
    resolve,
    save_config,
    shipped_configs,
)
from aucseg.errors import InputError
from aucseg.losses import LOSSES, loss_options

SYNTHETIC = "synthetic_aucseg_segnext_t"  # square_auc + cross_entropy, cityscapes, 19 classes


def ce_options() -> list[str]:
    """The options a config may give cross_entropy: its signature minus the engine's values."""
    return [k for k in loss_options("cross_entropy") if k not in ENGINE_LOSS_PARAMS]


def write(tmp_path, data: dict, name: str = "cfg.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def tiny(**sections) -> dict:
    """A small config dict: SegNeXt-T on 19 Cityscapes classes plus ``sections``."""
    data = {
        "model": {"name": "segnext_tiny", "num_classes": 19},
        "data": {"dataset": "cityscapes"},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value}
    return data


# ----------------------------------------------------------------------------- round trips


def test_defaults_round_trip(tmp_path):
    cfg = config_from_dict({})
    assert cfg == resolve(Config())
    path = save_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(path) == cfg
    data = config_to_dict(cfg)
    assert data["data"]["crop_size"] == [512, 512]  # plain lists, ready for YAML and torch
    assert config_from_dict(data) == cfg


def test_resolved_config_shows_every_option_of_the_registered_names():
    data = config_to_dict(load_config(SYNTHETIC))
    assert data["model"]["drop_path_rate"] == 0.1 and "dropout" in data["model"]
    ce = data["loss"]["terms"][1]
    assert list(ce) == ["name", "weight", *ce_options()]
    assert ce["avg_non_ignore"] is False  # the class's own default
    assert data["data"]["check_labels"] is True  # the dataset's own option, with its default
    assert data["data"]["sampler"] == {"name": "uniform", "shuffle": True}


def test_resolved_drop_path_comes_from_the_variant():
    def drop_path(name: str) -> float:
        return config_from_dict({"model": {"name": name}}).model.options()["drop_path_rate"]

    assert drop_path("segnext_tiny") == 0.1
    assert drop_path("segnext_large") == 0.3
    over = config_from_dict({"model": {"name": "segnext_tiny", "drop_path_rate": 0.0}})
    assert over.model.options()["drop_path_rate"] == 0.0


# ----------------------------------------------------------------------------- overrides


def test_overrides_are_typed(tmp_path):
    path = write(tmp_path, tiny(loss={"terms": [{"name": "square_auc"}]}))
    cfg = load_config(
        path,
        [
            "optimizer.lr=6e-5",  # YAML 1.1 reads this as a string
            "data.crop_size=[64,96]",
            "loss.terms.0.weight=4",
            "model.pretrained=null",
            "memory_bank.tail_classes=[1,2]",
            "runtime.debug=true",
        ],
    )
    assert isinstance(cfg.optimizer.lr, float) and cfg.optimizer.lr == pytest.approx(6e-5)
    assert cfg.data.crop_size == (64, 96)
    assert cfg.loss.terms[0].weight == 4.0 and isinstance(cfg.loss.terms[0].weight, float)
    assert cfg.model.pretrained is None
    assert cfg.memory_bank.tail_classes == [1, 2]
    assert cfg.runtime.debug is True


def test_a_yaml_file_number_without_a_dot_is_a_float(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("model: {name: segnext_tiny, num_classes: 19}\n"
                    "data: {dataset: cityscapes}\noptimizer: {lr: 6e-5}\n")  # fmt: skip
    assert read_config_dict(path)["optimizer"]["lr"] == "6e-5"
    assert load_config(path).optimizer.lr == pytest.approx(6e-5)


def test_override_syntax_errors():
    with pytest.raises(InputError, match="key=value"):
        apply_overrides({}, ["data.root"])
    with pytest.raises(InputError, match=r"'loss.terms.3': list index must be 0..0"):
        apply_overrides({"loss": {"terms": [{}]}}, ["loss.terms.3.weight=1"])
    with pytest.raises(InputError, match=r"'data.root.x': 'root' holds a value"):
        apply_overrides({"data": {"root": "a"}}, ["data.root.x=1"])
    # a list item of a list the file does not write: set the whole list instead
    with pytest.raises(InputError, match=r"'loss.terms.0'.*no 'loss.terms' list.*loss.terms="):
        load_config(SYNTHETIC, ["loss=null", "loss.terms.0.weight=4"])


# ----------------------------------------------------------------------------- bad keys


def test_unknown_key_names_the_key_and_the_allowed_ones(tmp_path):
    with pytest.raises(InputError, match=r"'data.roots' \(did you mean 'root'\?\).*allowed keys"):
        load_config(write(tmp_path, {"data": {"roots": "x"}}))
    with pytest.raises(InputError, match=r"'optimizer.lrr' \(did you mean 'lr'\?\)") as info:
        load_config(SYNTHETIC, ["optimizer.lrr=1"])
    assert "allowed keys: name, lr, betas, eps, weight_decay" in str(info.value)
    with pytest.raises(InputError, match=r"unknown config key 'modell' \(did you mean 'model'"):
        config_from_dict({"modell": {}})
    with pytest.raises(InputError, match=r"'model.depth' for model 'segnext_tiny'.*drop_path_rate"):
        load_config(SYNTHETIC, ["model.depth=3"])


def test_a_loss_option_the_loss_does_not_take_is_refused():
    with pytest.raises(InputError) as info:
        load_config(SYNTHETIC, ["loss.terms.1.gamma=2"])  # term 1 is cross_entropy
    message = str(info.value)
    assert "'loss.terms.1.gamma'" in message and "loss 'cross_entropy'" in message
    assert message.endswith(f"allowed keys: {', '.join(['name', 'weight', *ce_options()])}")
    with pytest.raises(InputError, match=r"gets 'num_classes' from aucseg"):
        load_config(SYNTHETIC, ["loss.terms.0.num_classes=3"])


def test_hinge_form_is_accepted_and_shown():
    cfg = load_config(SYNTHETIC, ["loss.terms.0.name=hinge_auc", "loss.terms.0.form=official"])
    term = config_to_dict(cfg)["loss"]["terms"][0]
    assert term == {"name": "hinge_auc", "weight": 1.0, "gamma": 1.0, "transform": "ovo",
                    "form": "official"}  # fmt: skip
    default = load_config(SYNTHETIC, ["loss.terms.0.name=hinge_auc"])
    assert default.loss.terms[0].options()["form"] == "pairwise"
    with pytest.raises(InputError, match=r"'loss.terms.0.form'.*'pairwise' or 'official'"):
        load_config(SYNTHETIC, ["loss.terms.0.name=hinge_auc", "loss.terms.0.form=linear"])


def test_bad_literal_lists_the_allowed_values():
    with pytest.raises(InputError, match=r"'runtime.amp': got 'fp8'.*'none', 'bf16' or 'fp16'"):
        load_config(SYNTHETIC, ["runtime.amp=fp8"])
    with pytest.raises(InputError, match=r"'loss.terms.0.transform'.*'ovo' or 'ova'"):
        load_config(SYNTHETIC, ["loss.terms.0.transform=ovx"])
    with pytest.raises(InputError, match=r"'evaluation.best_metric'.*'mIoU'"):
        config_from_dict(tiny(evaluation={"best_metric": "loss"}))


def test_registered_name_typos_list_the_registered_names():
    with pytest.raises(InputError, match=r"'model.name'.*'segnext_tiy'.*segnext_tiny, "):
        load_config(SYNTHETIC, ["model.name=segnext_tiy"])
    with pytest.raises(InputError, match=r"'square_aucc' \(did you mean 'square_auc'\?\)") as e:
        load_config(SYNTHETIC, ["loss.terms.0.name=square_aucc"])
    assert str(e.value).endswith(f"registered: {', '.join(sorted(LOSSES))}")
    with pytest.raises(InputError, match=r"'data.dataset'.*did you mean 'ade20k'.*folder"):
        load_config(SYNTHETIC, ["data.dataset=ade2k"])
    with pytest.raises(InputError, match=r"'data.sampler.name'.*rare_class, repeat_factor, unif"):
        load_config(SYNTHETIC, ["data.sampler.name=rare"])


# ----------------------------------------------------------------------------- bad values


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optimizer.lr=.inf", r"'optimizer.lr': got inf; .*finite"),
        ("optimizer.lr=nan", r"'optimizer.lr': .*finite"),
        ("optimizer.lr=0", r"'optimizer.lr': got 0; .*greater than 0"),
        ("optimizer.lr=-1e-4", r"'optimizer.lr': got '-1e-4'; .*greater than 0"),
        ("optimizer.grad_clip=-1", r"'optimizer.grad_clip': got -1; .*greater than 0"),
        ("optimizer.grad_clip=0", r"'optimizer.grad_clip': got 0"),
        ("optimizer.weight_decay=-0.1", r"'optimizer.weight_decay': got -0.1"),
        ("optimizer.betas=[0.9,1.0]", r"'optimizer.betas': got \[0.9, 1.0\], allowed: .*\[0, 1\)"),
        ("optimizer.betas=[-0.1,0.9]", r"'optimizer.betas': got \[-0.1, 0.9\]"),
        ("model.drop_path_rate=.nan", r"'model.drop_path_rate': got nan"),
        ("data.batch_size=four", r"'data.batch_size': got 'four'; .*valid integer"),
        ("schedule.max_iters=0", r"'schedule.max_iters': got 0"),
        ("runtime.device=gpu", r"'runtime.device': got 'gpu', allowed: 'auto', 'cpu'"),
    ],
)
def test_bad_values_are_refused_naming_the_key(override, message):
    with pytest.raises(InputError, match=message):
        load_config(SYNTHETIC, [override])


def test_null_grad_clip_is_off():
    assert load_config(SYNTHETIC, ["optimizer.grad_clip=null"]).optimizer.grad_clip is None


def test_cross_field_checks():
    with pytest.raises(InputError, match=r"evaluation.crop_size"):
        config_from_dict(tiny(evaluation={"mode": "slide"}))
    with pytest.raises(InputError, match=r"data.class_groups.*aucseg stats"):
        config_from_dict(tiny(evaluation={"best_metric": "mIoU_tail"}))
    with pytest.raises(InputError, match=r"data.class_groups.*rare_class"):
        config_from_dict(tiny(data={"sampler": {"name": "rare_class"}}))
    with pytest.raises(InputError, match=r"'memory_bank.tail_classes': got \[19\].*0..18"):
        config_from_dict(tiny(memory_bank={"tail_classes": [19]}))


def test_class_count_mismatches_name_the_fix():
    with pytest.raises(InputError) as info:
        config_from_dict({"model": {"num_classes": 10}, "data": {"dataset": "ade20k"}})
    message = str(info.value)
    assert "model.num_classes=10" in message and "'ade20k' has 150 classes" in message
    assert "data.dataset: folder" in message
    folder = {"dataset": "folder", "classes": 5}
    with pytest.raises(InputError, match=r"num_classes=19 but data.classes defines 5 classes"):
        config_from_dict({"model": {"num_classes": 19}, "data": folder})
    names = {"dataset": "folder", "classes": ["sky", "road", "car"]}
    cfg = config_from_dict({"model": {"name": "segnext_tiny", "num_classes": 3}, "data": names})
    assert cfg.data.options()["classes"] == ["sky", "road", "car"]
    with pytest.raises(InputError, match=r"'data.classes' is required"):
        config_from_dict({"model": {"num_classes": 3}, "data": {"dataset": "folder"}})


# ----------------------------------------------------------------------------- files


def test_missing_file_lists_the_shipped_configs(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.yaml.*synthetic_ce_segnext_t\.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_bad_yaml_and_non_mapping_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(InputError, match=r"bad\.yaml is not valid YAML"):
        load_config(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match="must hold a mapping of sections"):
        load_config(listed)


@pytest.mark.parametrize("name", shipped_configs())
def test_every_shipped_config_loads_and_round_trips(name, tmp_path):
    cfg = load_config(name)
    assert cfg.model.num_classes >= 2
    assert load_config(save_config(cfg, tmp_path / name)) == cfg
