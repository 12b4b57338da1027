"""The convolutional CLIP (the synthetic world's model): load paths, save/load, counting-friendly pooling."""

from __future__ import annotations

import json

import pytest
import torch

from countclip.model.conv_clip import (CONFIG_FILE, ConvClipAdapter, ConvClipArchitecture, ConvImageTower,
                                       create_conv_model, load_conv_clip)
from countclip.model.factory import load_model

torch.set_num_threads(1)


def test_random_spec_builds_a_registered_conv_architecture():
    adapter = load_model("random:tiny-conv")
    assert isinstance(adapter, ConvClipAdapter)
    batch = adapter.tokenize(["three cats", "a photo of two dogs on a sofa"])
    assert adapter.encode_text(batch["input_ids"], batch["attention_mask"]).shape == (2, 32)
    assert adapter.encode_image(torch.zeros(3, 3, 32, 32)).shape == (3, 32)


def test_unknown_architecture_lists_both_families():
    with pytest.raises(ValueError, match="small-conv"):
        load_model("random:no-such-arch")


def test_save_then_load_through_the_directory_spec_gives_identical_outputs(tmp_path):
    adapter = create_conv_model("tiny-conv", seed=3, name="conv-test").eval()
    with torch.no_grad():
        adapter.logit_scale.fill_(2.5)  # a trained value, not the init, must survive the round trip
    adapter.save(tmp_path)
    assert json.loads((tmp_path / CONFIG_FILE).read_text())["channels"] == [8, 16]
    loaded = load_model(str(tmp_path)).eval()
    assert isinstance(loaded, ConvClipAdapter) and loaded.name == "conv-test"
    pixels = torch.randn(2, 3, 32, 32)
    batch = adapter.tokenize(["seven apples", "two"])
    with torch.no_grad():
        assert torch.equal(adapter.encode_image(pixels), loaded.encode_image(pixels))
        assert torch.equal(adapter.encode_text(**batch), loaded.encode_text(**batch))
    assert float(loaded.logit_scale.detach()) == 2.5
    assert loaded.tokenize(["seven apples"])["input_ids"].tolist() == adapter.tokenize(["seven apples"])["input_ids"].tolist()


def test_weights_of_another_architecture_are_refused(tmp_path):
    create_conv_model("tiny-conv").save(tmp_path)
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    config["channels"] = [8, 24]
    (tmp_path / CONFIG_FILE).write_text(json.dumps(config))
    with pytest.raises((ValueError, RuntimeError)):
        load_conv_clip(tmp_path)


def test_pooled_feature_does_not_depend_on_where_the_objects_are():
    """Local layers and a mean over locations: moving an object (away from borders) barely changes the feature."""
    tower = create_conv_model("tiny-conv", seed=0).model.vision.eval()

    def scene(positions):
        image = torch.zeros(1, 3, 32, 32)
        for x, y in positions:
            image[:, :, y:y + 4, x:x + 4] = 1.0
        return tower(image)

    with torch.no_grad():
        here, there = scene([(8, 8), (20, 8)]), scene([(8, 20), (20, 20)])
        one = scene([(8, 8)])
    assert torch.allclose(here, there, atol=1e-5)
    assert not torch.allclose(here, one, atol=1e-3)


def test_architecture_needs_one_stride_per_convolution():
    with pytest.raises(ValueError):
        ConvClipArchitecture(embed_dim=8, image_size=16, channels=(8, 16), strides=(2,), text_width=8,
                             text_layers=1, text_heads=1)


def test_head_width_selects_an_mlp_projection_and_older_configs_stay_linear():
    arch = create_conv_model("tiny-conv").model.arch
    assert arch.head_width > 0
    mlp = ConvImageTower(arch).projection
    assert isinstance(mlp, torch.nn.Sequential) and mlp[0].out_features == arch.head_width
    # Bundles written before head_width existed have no such key: they load with the linear projection.
    older = {key: value for key, value in arch.to_json().items() if key != "head_width"}
    assert isinstance(ConvImageTower(ConvClipArchitecture.from_json(older)).projection, torch.nn.Linear)
