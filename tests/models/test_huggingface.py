"""Hugging Face transformers models through the registered ``huggingface`` factory."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from aucseg.errors import InputError
from aucseg.models import (
    SegmentorAdapter,
    build_model,
    convert_checkpoint,
    huggingface,
    load_checkpoint,
)

HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None
needs_transformers = pytest.mark.skipif(not HAS_TRANSFORMERS, reason="pip install aucseg[hf]")


@pytest.fixture(scope="module")
def segformer_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A tiny SegFormer (5 classes) written by save_pretrained, and its state_dict."""
    transformers = pytest.importorskip("transformers")
    config = transformers.SegformerConfig(
        hidden_sizes=[8, 16, 24, 32],
        depths=[1, 1, 1, 1],
        num_attention_heads=[1, 1, 1, 1],
        decoder_hidden_size=16,
        num_labels=5,
    )
    torch.manual_seed(0)
    model = transformers.SegformerForSemanticSegmentation(config)
    path = tmp_path_factory.mktemp("segformer")
    model.save_pretrained(path)
    return path, {k: v.clone() for k, v in model.state_dict().items()}


@needs_transformers
@pytest.mark.parametrize("num_classes", [5, 7])
def test_segformer_builds_runs_and_trains(segformer_dir: tuple[Path, dict], num_classes: int):
    path, saved = segformer_dir
    model = build_model("huggingface", num_classes, source=str(path)).train()
    assert isinstance(model, SegmentorAdapter) and model.num_classes == num_classes
    state = model.state_dict()
    head = "model.decode_head.classifier.weight"
    assert state[head].shape == (num_classes, 16, 1, 1)
    for key, value in saved.items():  # every saved weight loaded; the head only when it fits
        if key.startswith("decode_head.classifier.") and num_classes != 5:
            continue
        torch.testing.assert_close(state[f"model.{key}"], value, rtol=0, atol=0)
    images = torch.randn(2, 3, 64, 48)
    logits = model(images)
    assert logits.shape == (2, num_classes, 64, 48)  # SegFormer predicts at stride 4
    assert torch.isfinite(logits).all()
    logits.logsumexp(dim=1).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.model.decode_head.classifier.weight.grad.abs().sum() > 0


@needs_transformers
def test_segformer_state_dict_round_trip(segformer_dir: tuple[Path, dict], tmp_path: Path):
    path, _ = segformer_dir
    torch.manual_seed(0)
    trained = build_model("huggingface", 7, source=str(path))
    torch.save({"model": trained.state_dict()}, tmp_path / "seg7.pth")
    torch.manual_seed(1)  # another random 7-class head
    fresh = build_model("huggingface", 7, source=str(path))
    assert not torch.equal(
        fresh.model.decode_head.classifier.weight, trained.model.decode_head.classifier.weight
    )
    load_checkpoint(fresh, tmp_path / "seg7.pth")
    for key, value in trained.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value, rtol=0, atol=0)
    images = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(fresh.eval()(images), trained.eval()(images), rtol=0, atol=0)


def test_missing_directory_says_how_to_download(tmp_path: Path) -> None:
    absent = tmp_path / "segformer-b0"
    with pytest.raises(InputError, match=r"no config\.json.*hf download nvidia/segformer-b0"):
        huggingface(5, str(absent))
    with pytest.raises(InputError, match=str(absent)):
        build_model("huggingface", 5, source=str(absent))


@needs_transformers
def test_directory_of_another_kind_of_model(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(InputError, match="could not load a semantic-segmentation model"):
        huggingface(5, str(tmp_path))


@pytest.mark.skipif(HAS_TRANSFORMERS, reason="checks the message shown without transformers")
def test_without_transformers_names_the_extra(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(InputError, match=r"pip install aucseg\[hf\]"):
        huggingface(5, str(tmp_path))


@needs_transformers
def test_meta_build_and_convert(segformer_dir: tuple[Path, dict], tmp_path: Path) -> None:
    path, _ = segformer_dir
    model = build_model("huggingface", 7, source=str(path))
    with torch.device("meta"):  # the layout only, no weights read
        layout = build_model("huggingface", 7, source=str(path))
    assert {k: v.shape for k, v in layout.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }
    assert layout.model.decode_head.classifier.weight.device.type == "meta"
    torch.save(model.state_dict(), tmp_path / "hf.pth")
    options = {"source": str(path)}
    dst, meta = convert_checkpoint(
        tmp_path / "hf.pth", tmp_path / "hf.safetensors", "huggingface", 7, options=options
    )
    assert (meta["model"], meta["num_classes"], meta["options"]) == ("huggingface", 7, options)
    fresh = build_model("huggingface", 7, source=str(path))
    assert load_checkpoint(fresh, dst).loaded == len(model.state_dict())
    torch.testing.assert_close(
        fresh.model.decode_head.classifier.weight, model.model.decode_head.classifier.weight
    )
