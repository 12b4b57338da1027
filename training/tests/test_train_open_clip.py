"""open_clip specs: a clear error without open_clip; a save/load/train-step round trip with it."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from countclip.model.factory import load_model
from countclip.model.open_clip_adapter import parse_spec

torch.set_num_threads(1)
HAVE_OPEN_CLIP = importlib.util.find_spec("open_clip") is not None


def test_specs_parse_by_form():
    assert parse_spec("open_clip:ViT-B-32/laion2b_s34b_b79k") == ("ViT-B-32", "laion2b_s34b_b79k")
    assert parse_spec("open_clip:ViT-B-32") == ("ViT-B-32", None)
    assert parse_spec("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K") == ("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", None)
    with pytest.raises(ValueError):
        parse_spec("open_clip:/tag-without-arch")


@pytest.mark.skipif(HAVE_OPEN_CLIP, reason="open_clip is installed")
def test_without_open_clip_the_error_says_what_to_install():
    with pytest.raises(ImportError, match="pip install open_clip_torch"):
        load_model("open_clip:ViT-B-32")


@pytest.mark.skipif(not HAVE_OPEN_CLIP, reason="open_clip (open_clip_torch + torchvision) is not installed")
def test_open_clip_model_trains_saves_and_reloads(tmp_path):
    from countclip.train.step import ContrastiveModel

    adapter = load_model("open_clip:RN50")  # random init: no download
    tokens = adapter.tokenize(["two dogs", "a photo of three red circles"])
    assert tokens["input_ids"].shape[1] < 77 and tokens["attention_mask"].sum(1).tolist()[0] < tokens["input_ids"].shape[1]
    pixels = torch.randn(2, 3, adapter.preprocess_config.crop_size, adapter.preprocess_config.crop_size)
    out = ContrastiveModel(adapter)(pixels, tokens["input_ids"], tokens["attention_mask"])
    assert out["image_features"].shape == out["text_features"].shape == (2, adapter.embed_dim)
    adapter.save(tmp_path / "m")
    again = load_model(str(tmp_path / "m"))
    for (name, a), b in zip(adapter.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name
