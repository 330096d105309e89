"""Option checks, validate_inputs, and the switch for its value checks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import torch

from aucseg.errors import InputError
from aucseg.losses import (
    SquareAUCLoss,
    input_checks,
    input_checks_enabled,
    set_input_checks,
    validate_inputs,
)
from aucseg.losses.validation import (
    check_ignore_index,
    check_loss_weight,
    check_num_classes,
    check_options,
    check_sync,
)


@pytest.fixture(autouse=True)
def restore_input_checks() -> Iterator[None]:
    """Leave the process-wide switch as it was found, whatever a test does."""
    previous = input_checks_enabled()
    yield
    set_input_checks(previous)


def make_batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(2, 5, 6, 7, generator=gen), torch.randint(0, 5, (2, 6, 7), generator=gen)


def test_validate_inputs_accepts_good_input_and_custom_ignore() -> None:
    logits, target = make_batch()
    target[0, 0, 0] = -100
    validate_inputs(logits, target, 5, ignore_index=-100)
    with pytest.raises(InputError, match=r"labels \[-100\]"):
        validate_inputs(logits, target, 5, ignore_index=255)


def test_many_bad_labels_are_listed_up_to_ten() -> None:
    logits, target = make_batch()
    target[0, 0, :] = torch.arange(10, 17)
    target[1, 0, :] = torch.arange(-7, 0)
    with pytest.raises(
        InputError, match=r"labels \[-7, -6, -5, -4, -3, -2, -1, 10, 11, 12\] \(and 4 more\)"
    ):
        validate_inputs(logits, target, 5)


def test_input_checks_are_on_by_default() -> None:
    assert input_checks_enabled() is True


def test_disabled_checks_let_a_bad_label_pass_enabled_checks_raise() -> None:
    logits, target = make_batch()
    target[1, 2, 3] = 9
    with input_checks(False):
        assert input_checks_enabled() is False
        validate_inputs(logits, target, 5)  # silently accepted: no value is read
    assert input_checks_enabled() is True
    with pytest.raises(InputError, match=r"labels \[9\] outside \[0, 5\)"):
        validate_inputs(logits, target, 5)


def test_disabled_checks_let_nan_logits_reach_the_loss() -> None:
    logits, target = make_batch()
    logits[0, 1, 2, 3] = float("nan")
    loss_fn = SquareAUCLoss(5)
    with pytest.raises(InputError, match="1 NaN and 0 infinite"):
        loss_fn(logits, target)
    with input_checks(False):
        assert torch.isnan(loss_fn(logits, target))


def test_disabled_checks_read_no_tensor_values() -> None:
    """Meta tensors have no data: any value read (a host sync on a GPU) would fail."""
    logits = torch.empty(2, 5, 6, 7, device="meta")
    target = torch.empty(2, 6, 7, dtype=torch.long, device="meta")
    with input_checks(False):
        validate_inputs(logits, target, 5)
    with pytest.raises((RuntimeError, NotImplementedError)):
        validate_inputs(logits, target, 5)


def test_disabled_checks_keep_the_free_checks() -> None:
    logits, target = make_batch()
    with input_checks(False):
        with pytest.raises(InputError, match="spatial size mismatch"):
            validate_inputs(logits[:, :, :3], target)
        with pytest.raises(InputError, match="6 channels but the loss was built for"):
            validate_inputs(torch.randn(2, 6, 6, 7), target, 5)
        with pytest.raises(TypeError, match="target must hold integer class labels"):
            validate_inputs(logits, target.float())


def test_set_input_checks_returns_previous_and_context_restores_on_error() -> None:
    assert set_input_checks(False) is True
    assert set_input_checks(False) is False
    assert set_input_checks(True) is False
    with pytest.raises(RuntimeError, match="boom"), input_checks(False):
        raise RuntimeError("boom")
    assert input_checks_enabled() is True
    with input_checks(False), input_checks(True):
        assert input_checks_enabled() is True
    with pytest.raises(TypeError, match="enabled must be True or False, got int 0"):
        set_input_checks(0)


def test_torchvision_dict_output_names_the_key() -> None:
    logits, target = make_batch()
    message = (
        r"logits is a dict with keys \['aux', 'out'\]; pass logits\['out'\] "
        r"\(torchvision segmentation models return a dict\)"
    )
    with pytest.raises(TypeError, match=message):
        validate_inputs({"out": logits, "aux": logits}, target)
    with pytest.raises(TypeError, match=r"pass logits\['main'\]"):
        SquareAUCLoss(5)({"main": logits}, target)


@dataclass
class SemanticSegmenterOutput:
    """The shape of a Hugging Face segmentation output: logits at 1/4 of the label size."""

    logits: torch.Tensor


def test_output_object_with_logits_attribute_names_the_attribute() -> None:
    logits, target = make_batch()
    outputs = SemanticSegmenterOutput(logits[:, :, :2, :2])
    message = (
        r"SemanticSegmenterOutput with a \.logits attribute; pass outputs\.logits upsampled to "
        r"the label size \(Hugging Face models return logits at 1/4 resolution\)"
    )
    with pytest.raises(TypeError, match=message):
        SquareAUCLoss(5)(outputs, target)


def test_option_checkers() -> None:
    assert check_num_classes(3, 2) == 3
    assert check_loss_weight(4) == 4.0 and isinstance(check_loss_weight(4), float)
    assert check_ignore_index(-1) == -1
    with pytest.raises(TypeError, match="num_classes must be an int, got bool True"):
        check_num_classes(True, 1)
    with pytest.raises(InputError, match="num_classes must be >= 1, got 0; hint"):
        check_num_classes(0, 1, "; hint")
    with pytest.raises(InputError, match="loss_weight must be finite, got inf"):
        check_loss_weight(float("inf"))
    with pytest.raises(TypeError, match="loss_weight must be a real number, got str"):
        check_loss_weight("1")
    with pytest.raises(TypeError, match="ignore_index must be an int, got bool"):
        check_ignore_index(False)
    check_options("exp", "ova", 0.5, "official", True)
    with pytest.raises(InputError, match="surrogate must be one of"):
        check_options("focal", "ovo", 1.0)
    with pytest.raises(TypeError, match="gamma must be a real number"):
        check_options("square", "ovo", "1")
    assert check_sync(True, True, "X") is True
    with pytest.raises(InputError, match="sync=True is not supported by X: no way"):
        check_sync(True, False, "X", "no way")
