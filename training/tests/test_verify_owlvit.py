"""The real transformers path of `countclip verify`: a tiny random OWL-ViT saved locally and
loaded back exactly as a hub id would be (model, CLIP BPE tokenizer, image processor)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import torch
from PIL import Image

from countclip.mining import verify
from countclip.mining.detectors import HFZeroShotDetector, box_iou, load_detector
from countclip.model.base import clip_bpe_dir

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def owlvit_dir(tmp_path_factory) -> Path:
    from transformers import CLIPTokenizer, OwlViTConfig, OwlViTForObjectDetection, OwlViTProcessor
    from transformers import OwlViTImageProcessorPil

    directory = tmp_path_factory.mktemp("tiny-owlvit")
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    config = OwlViTConfig(text_config=dict(vocab_size=49408, max_position_embeddings=16, **small),
                          vision_config=dict(image_size=32, patch_size=8, **small), projection_dim=32)
    torch.manual_seed(0)
    OwlViTForObjectDetection(config).save_pretrained(directory)
    bpe = clip_bpe_dir()
    tokenizer = CLIPTokenizer(str(bpe / "vocab.json"), str(bpe / "merges.txt"), model_max_length=16)
    image_processor = OwlViTImageProcessorPil(size={"height": 32, "width": 32}, crop_size={"height": 32, "width": 32})
    OwlViTProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(directory)
    return directory


def images() -> list[Image.Image]:
    return [Image.new("RGB", (48, 32), (200, 30, 30)), Image.new("RGB", (20, 60), (30, 30, 200)),
            Image.new("L", (33, 33), 128)]


def test_detections_are_thresholded_nms_filtered_and_deterministic(owlvit_dir):
    detector = load_detector(str(owlvit_dir), threshold=0.0, nms_iou=0.3)
    assert isinstance(detector, HFZeroShotDetector)
    first = detector.detect(images(), ["dogs", "red apples", "cat"])
    assert first == detector.detect(images(), ["dogs", "red apples", "cat"])
    assert len(first) == 3
    for detection in first:
        assert detection.count == len(detection.boxes) == len(detection.scores) >= 1
        boxes = torch.tensor(detection.boxes)
        for i in range(len(boxes)):
            others = torch.cat([boxes[:i], boxes[i + 1:]])
            assert others.numel() == 0 or box_iou(boxes[i], others).max() <= 0.3 + 1e-6
    loose = load_detector(str(owlvit_dir), threshold=0.0, nms_iou=1.0).detect(images(), ["dogs", "red apples", "cat"])
    assert all(a.count >= b.count for a, b in zip(loose, first))  # 16 patches, none merged
    assert load_detector(str(owlvit_dir), threshold=1.0).detect(images(), ["a", "b", "c"])[0].count == 0
    with pytest.raises(ValueError):
        detector.detect(images(), ["only one noun"])


def test_verify_cli_runs_the_transformers_detector(owlvit_dir, tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for i, image in enumerate(images()):
            encoded = io.BytesIO()
            image.convert("RGB").save(encoded, format="JPEG")
            meta = json.dumps({"count": 2 + i, "noun": "dogs"}).encode()
            for ext, data in (("jpg", encoded.getvalue()), ("json", meta), ("txt", f"{2 + i} dogs".encode())):
                info = tarfile.TarInfo(f"{i:05d}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    (tmp_path / "shard-00000.tar").write_bytes(buffer.getvalue())
    out = tmp_path / "out"
    code = verify.main([str(tmp_path / "shard-00000.tar"), "--out", str(out), "--detector", str(owlvit_dir),
                        "--threshold", "0.0", "--batch-size", "2", "--device", "cpu"])
    assert code == 0
    report = json.loads((out / verify.REPORT_NAME).read_text())
    assert report["samples"] == 3 and report["detectors"] == [str(owlvit_dir)]
    assert report["kept"] + sum(report["dropped"].values()) == 3
    detected = {int(c): next(iter(v)) for c, v in report["detected_vs_caption"].items()}
    direct = HFZeroShotDetector(str(owlvit_dir), threshold=0.0).detect(
        [Image.open(io.BytesIO(_jpeg(im))) for im in images()], ["dogs"] * 3)
    assert [int(detected[c]) for c in (2, 3, 4)] == [d.count for d in direct]


def _jpeg(image: Image.Image) -> bytes:
    encoded = io.BytesIO()
    image.convert("RGB").save(encoded, format="JPEG")
    return encoded.getvalue()
