"""Zero-shot retention: class names from folders, prompt ensemble, top-1/top-5 on known answers."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch import nn

from countclip.evaluation import zeroshot
from fake_models import TextRecordingModel

torch.set_num_threads(1)

COLORS = {"red_apple": (220, 20, 20), "green leaf": (20, 200, 20), "blue car": (20, 20, 220)}


class FakeColorClip(TextRecordingModel):
    """Embeds an image by its dominant channel and a prompt by the colour word in it."""

    name = "fake-color"
    WORDS = ("red", "green", "blue")

    def __init__(self, confuse_blue: bool = False) -> None:
        super().__init__()
        self.confuse_blue = confuse_blue

    def encode_text(self, input_ids, attention_mask):
        rows = []
        for text in self.recorded(input_ids):
            word = next(w for w in self.WORDS if w in text)
            rows.append(nn.functional.one_hot(torch.tensor(self.WORDS.index(word)), 3).float())
        return torch.stack(rows)

    def preprocess(self, image):
        return torch.tensor(image.convert("RGB").getpixel((0, 0)), dtype=torch.float32)

    def encode_image(self, pixels):
        features = nn.functional.one_hot(pixels.argmax(dim=1), 3).float()
        if self.confuse_blue:  # blue images look mostly green, a little blue: top-1 wrong, top-2 right
            blue = pixels.argmax(dim=1) == 2
            features[blue] = torch.tensor([0.0, 1.0, 0.5])
        return features


@pytest.fixture
def image_folder(tmp_path):
    for folder, color in COLORS.items():
        (tmp_path / folder).mkdir()
        for index in range(3):
            Image.new("RGB", (20, 20), color).save(tmp_path / folder / f"{index}.png")
    (tmp_path / "empty_class").mkdir()
    (tmp_path / "blue car" / "notes.txt").write_text("not an image")
    (tmp_path / "blue car" / "broken.jpg").write_bytes(b"\xff\xd8 nope")
    return tmp_path


def test_load_reads_class_names_from_folders(image_folder):
    data = zeroshot.load(str(image_folder))
    assert data.classes == ["blue car", "green leaf", "red apple"]  # sorted folders; "_" read as a space
    assert len(data.samples) == 10  # 3 + 3 + 3 images plus the broken JPEG (skipped at evaluation)


def test_known_answers(image_folder):
    data = zeroshot.load(str(image_folder))
    perfect = zeroshot.evaluate(FakeColorClip(), data, batch_size=4)
    assert perfect["acc1"] == 1.0 and perfect["acc5"] == 1.0 and perfect["n_scored"] == 9
    assert perfect["skipped_by_reason"] == {"image:undecodable": 1} and perfect["n_classes"] == 3
    confused = zeroshot.evaluate(FakeColorClip(confuse_blue=True), data, batch_size=4)
    assert confused["acc1"] == pytest.approx(6 / 9)
    assert confused["acc5"] == 1.0  # three classes: top-5 covers them all
    assert confused["mean_per_class_recall"] == pytest.approx((0 + 1 + 1) / 3)


def test_prompt_ensemble_uses_every_template(image_folder):
    model = FakeColorClip()
    zeroshot.class_embeddings(model, ["red apple"], zeroshot.TEMPLATES, "cpu")
    assert model.texts == [t.format("red apple") for t in zeroshot.TEMPLATES]


def test_bad_folders(tmp_path):
    with pytest.raises(FileNotFoundError):
        zeroshot.load(str(tmp_path / "missing"))
    (tmp_path / "only").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "only" / "a.png")
    with pytest.raises(ValueError, match="need at least 2"):
        zeroshot.load(str(tmp_path))
