"""The registry: factories whose signatures hold the defaults, import paths, option checks."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Literal

import pytest
import torch

from aucseg.errors import InputError
from aucseg.models import (
    MODELS,
    build_model,
    count_parameters,
    list_models,
    model_options,
    resolve_model,
    segnext_large,
    segnext_tiny,
)

HERE = Path(__file__).resolve().parent
# Official SegNeXt configs: T/S/B drop_path_rate 0.1, L 0.3 (spec §5.4); head dropout 0.1.
DROP_PATH = {"segnext_tiny": 0.1, "segnext_small": 0.1, "segnext_base": 0.1, "segnext_large": 0.3}


def _defaults(name: str) -> dict[str, object]:
    return {k: p.default for k, p in model_options(name).items()}


@pytest.mark.parametrize("name", sorted(DROP_PATH))
def test_segnext_defaults_live_in_the_signature(name: str) -> None:
    assert _defaults(name) == {"drop_path_rate": DROP_PATH[name], "dropout": 0.1}
    with torch.device("meta"):
        model = build_model(name, 19)
    assert model.backbone.block4[-1].drop_path.p == pytest.approx(DROP_PATH[name])


@pytest.mark.parametrize("name", ["deeplabv3plus_r50", "deeplabv3plus_r101"])
def test_deeplab_options_have_plain_annotations(name: str) -> None:
    options = model_options(name)
    assert list(options) == ["output_stride", "dropout"]  # no drop_path_rate at all
    assert options["output_stride"].annotation == Literal[8, 16]
    assert options["output_stride"].default == 16
    assert options["dropout"].annotation is float


def test_registry_lists_factories() -> None:
    assert list_models() == list(MODELS)
    assert list_models()[:4] == ["segnext_tiny", "segnext_small", "segnext_base", "segnext_large"]
    assert "huggingface" in list_models()
    assert resolve_model("segnext_tiny") is segnext_tiny
    assert MODELS["segnext_large"] is segnext_large
    assert inspect.signature(segnext_tiny).parameters["num_classes"].default is inspect._empty


def test_count_parameters_matches_spec_on_meta() -> None:
    with torch.device("meta"):
        tiny = build_model("segnext_tiny", 150)
        large = build_model("segnext_large", 150)
    assert count_parameters(tiny) == 4_263_414
    assert count_parameters(large) == 48_926_550


def test_unknown_option_names_key_and_accepted_options() -> None:
    with pytest.raises(InputError, match=r"'output_stride'.*drop_path_rate=0\.1, dropout=0\.1"):
        build_model("segnext_tiny", 19, output_stride=8)
    with pytest.raises(InputError, match=r"'drop_path_rate'.*output_stride=16, dropout=0\.1"):
        build_model("deeplabv3plus_r50", 19, drop_path_rate=0.1)
    with pytest.raises(InputError, match=r"needs option 'source'"):
        build_model("huggingface", 19)


def test_option_values_are_checked() -> None:
    with pytest.raises(InputError, match="output_stride=32"):
        build_model("deeplabv3plus_r50", 19, output_stride=32)
    with pytest.raises(InputError, match=r"drop_path_rate=None.*\[0, 1\)"):
        build_model("segnext_tiny", 19, drop_path_rate=None)
    with pytest.raises(InputError, match=r"dropout=1\.5"):
        build_model("segnext_tiny", 19, dropout=1.5)
    with pytest.raises(InputError, match="num_classes=0"):
        build_model("segnext_tiny", 0)


def test_unknown_names_list_the_registry() -> None:
    with pytest.raises(InputError, match=r"segnext_tiny.*deeplabv3plus_r101.*package\.module"):
        resolve_model("segnext_huge")
    with pytest.raises(
        InputError, match=r"cannot import module 'no_such_package_xyz\.models' \(No module"
    ):
        build_model("no_such_package_xyz.models:make", 3)
    with pytest.raises(TypeError, match="str"):
        resolve_model(3)  # type: ignore[arg-type]


def test_import_path_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(HERE))
    assert callable(resolve_model("external_models:make"))
    assert list(model_options("external_models:make")) == ["width"]
    with pytest.raises(InputError, match="has no attribute 'absent'"):
        resolve_model("external_models:absent")
    with pytest.raises(InputError, match="is a int, not callable"):
        resolve_model("external_models:NOT_CALLABLE")
    with pytest.raises(InputError, match="takes no num_classes argument"):
        build_model("external_models:make_without_classes", 3)
    with pytest.raises(InputError, match=r"returned a list, not an nn\.Module"):
        build_model("external_models:make_not_a_module", 3)
    with pytest.raises(InputError, match=r"'depth'.*width=8"):
        build_model("external_models:make", 3, depth=2)
