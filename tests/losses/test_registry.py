"""LOSSES, build_loss and loss_options: the option schema is the constructor signature."""

from __future__ import annotations

import inspect
import typing

import pytest

from aucseg.errors import InputError
from aucseg.losses import LOSSES, HingeAUCLoss, SquareAUCLoss, build_loss, loss_options

AUC_NAMES = ["square_auc", "hinge_auc", "exp_auc"]
PLAIN_TYPES = (int, float, bool, str, type(None))


def test_registered_names_and_loss_names() -> None:
    assert {*AUC_NAMES, "cross_entropy"} <= set(LOSSES)
    names = {name: build_loss(name, 4).loss_name for name in (*AUC_NAMES, "cross_entropy")}
    assert names == {
        "square_auc": "loss_square_auc",
        "hinge_auc": "loss_hinge_auc",
        "exp_auc": "loss_exp_auc",
        "cross_entropy": "loss_ce",
    }


def test_build_loss_passes_options() -> None:
    loss = build_loss("square_auc", 150, loss_weight=4.0, gamma=0.5)
    assert isinstance(loss, SquareAUCLoss) and loss.loss_weight == 4.0 and loss.gamma == 0.5
    assert loss.num_classes == 150
    hinge = build_loss("hinge_auc", 3, form="official", sync=True)
    assert isinstance(hinge, HingeAUCLoss) and hinge.form == "official" and hinge.sync is True
    assert build_loss("hinge_auc", 3).form == "pairwise"


def test_unknown_name_lists_the_valid_names() -> None:
    with pytest.raises(InputError, match=r"unknown loss 'focall'.*cross_entropy, dice, exp_auc"):
        build_loss("focall", 4)
    with pytest.raises(InputError, match="unknown loss 'focall'"):
        loss_options("focall")


def test_unknown_option_names_the_key_and_the_accepted_ones() -> None:
    accepted = r"\['gamma', 'transform', 'loss_weight', 'ignore_index', 'sync'\]"
    with pytest.raises(InputError, match=rf"unknown option\(s\) \['form'\]; it accepts {accepted}"):
        build_loss("square_auc", 4, form="official")
    with pytest.raises(InputError, match=r"\['avg_non_ignore', 'margin'\]"):
        build_loss("hinge_auc", 4, margin=1.0, avg_non_ignore=True)


def test_loss_options_are_the_constructor_signature() -> None:
    options = loss_options("hinge_auc")
    assert list(options) == [
        "num_classes", "gamma", "transform", "loss_weight", "ignore_index", "sync", "form"
    ]  # fmt: skip
    assert options["num_classes"].default is inspect.Parameter.empty
    assert options["gamma"].annotation is float and options["gamma"].default == 1.0
    assert options["transform"].annotation == typing.Literal["ovo", "ova"]
    assert options["form"].annotation == typing.Literal["pairwise", "official"]
    assert options["form"].default == "pairwise"
    assert options["sync"].annotation is bool and options["sync"].default is False
    assert "form" not in loss_options("square_auc")


def _is_plain(annotation: object) -> bool:
    """int/float/bool/str/None, a Literal of those, or a union of plain annotations."""
    if annotation in PLAIN_TYPES:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return all(isinstance(v, PLAIN_TYPES) for v in typing.get_args(annotation))
    return origin is typing.Union and all(_is_plain(a) for a in typing.get_args(annotation))


@pytest.mark.parametrize("name", AUC_NAMES)
def test_auc_options_have_plain_annotations_and_valid_defaults(name: str) -> None:
    """The config layer validates options by signature: every one is typed and defaulted."""
    options = loss_options(name)
    for key, param in options.items():
        assert _is_plain(param.annotation), (key, param.annotation)
        assert param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        if key != "num_classes":
            assert param.default is not inspect.Parameter.empty, key
    defaults = {k: p.default for k, p in options.items() if k != "num_classes"}
    loss = build_loss(name, 3, **defaults)  # the stated defaults are accepted as given
    assert all(getattr(loss, k) == v for k, v in defaults.items())


@pytest.mark.parametrize("name", AUC_NAMES)
def test_every_auc_loss_states_its_sync_capability(name: str) -> None:
    loss = build_loss(name, 3)
    assert isinstance(loss.supports_sync, bool)
    assert loss.supports_sync is (name != "hinge_auc")  # the default hinge form is pairwise
