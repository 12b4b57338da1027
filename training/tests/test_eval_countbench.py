"""CountBench evaluation: the protocol on a model whose answers we know, every source, the CLI end to end."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from countclip.counting.core import find_count, number_word
from countclip.evaluation import countbench
from countclip.evaluation.download import DownloadConfig
from fake_models import TextRecordingModel

torch.set_num_threads(1)

# (true count, count the fake model "sees"): right on 2..10, then off by +2, -1, +1.
CASES = [(n, n) for n in range(2, 11)] + [(4, 6), (9, 8), (2, 3)]


class FakeCounter(TextRecordingModel):
    """A "CLIP" that embeds a caption as one-hot(count in the caption) and an image as one-hot(the
    count painted into its top-left red value): its CountBench answers are known in advance."""

    name = "fake-counter"

    def encode_text(self, input_ids, attention_mask):
        counts = [find_count(text).count for text in self.recorded(input_ids)]
        return nn.functional.one_hot(torch.tensor(counts), 16).float()

    def preprocess(self, image):
        return torch.tensor([float(image.convert("RGB").getpixel((0, 0))[0])])

    def encode_image(self, pixels):
        return nn.functional.one_hot(pixels[:, 0].long(), 16).float()


def _png(seen: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), (seen, 90, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


def _caption(n: int) -> str:
    return f"A photo of {number_word(n)} red dots on a table"


@pytest.fixture
def folder(tmp_path) -> Path:
    """A local CountBench folder: CASES plus one caption without a count, one missing and one corrupt image."""
    (tmp_path / "images").mkdir()
    rows = []
    for index, (true, seen) in enumerate(CASES):
        (tmp_path / "images" / f"{index}.png").write_bytes(_png(seen))
        rows.append({"image": f"images/{index}.png", "text": _caption(true), "number": true})
    (tmp_path / "images" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    rows += [{"image": "images/0.png", "text": "some red dots", "number": 3},
             {"image": "images/absent.png", "text": _caption(5), "number": 5},
             {"image": "images/corrupt.png", "text": _caption(6), "number": 6},
             {"image": "images/0.png", "text": "eleven red dots", "number": 11}]
    (tmp_path / "countbench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def _check_known_answers(metrics: dict, extra_skips: dict) -> None:
    for task_metrics in (metrics, metrics["digits"]):
        assert task_metrics["n_scored"] == 12
        assert task_metrics["accuracy"] == pytest.approx(9 / 12)
        assert task_metrics["mean_abs_deviation"] == pytest.approx((2 + 1 + 1) / 12)
        per = task_metrics["per_count_accuracy"]
        assert per["2"] == per["4"] == per["9"] == 0.5 and per["3"] == per["10"] == 1.0
        assert task_metrics["confusion_matrix"][2][4] == 1  # true 4 predicted 6
    assert metrics["skipped_by_reason"] == extra_skips
    assert metrics["n_skipped"] == sum(extra_skips.values())


def test_protocol_on_a_model_with_known_answers(folder):
    data = countbench.load(str(folder))
    metrics = countbench.evaluate(FakeCounter(), data, batch_size=5)  # batches straddle the cases
    _check_known_answers(metrics, {"bad_record": 1, "no_count_in_caption": 1, "image:missing": 1,
                                   "image:undecodable": 1})


def test_parquet_in_nielsr_countbench_columns_goes_through_datasets(tmp_path):
    import datasets

    features = datasets.Features({"image_url": datasets.Value("string"), "text": datasets.Value("string"),
                                  "number": datasets.Value("int64"), "image": datasets.Image()})
    rows = {"image_url": [f"http://example.invalid/{i}.jpg" for i in range(len(CASES))],
            "text": [_caption(true) for true, _ in CASES], "number": [true for true, _ in CASES],
            "image": [{"bytes": _png(seen), "path": None} for _, seen in CASES]}
    # A row whose image is missing falls back to its URL: here a closed port, skipped as a dead link.
    rows["image_url"].append("http://127.0.0.1:1/dead.jpg")
    rows["text"].append(_caption(7))
    rows["number"].append(7)
    rows["image"].append(None)
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(tmp_path / "countbench.parquet"))
    options = countbench.LoadOptions(cache_dir=tmp_path / "cache", download=DownloadConfig(retries=0, timeout=1),
                                     log=lambda *_: None)
    data = countbench.load(str(tmp_path / "countbench.parquet"), options)
    assert len(data.samples) == len(CASES)
    assert [s["reason"] for s in data.skipped] == ["download:connection_error"]
    metrics = countbench.evaluate(FakeCounter(), data, batch_size=4)
    _check_known_answers(metrics, {"download:connection_error": 1})
    # The directory form (a downloaded HF dataset: data/*.parquet) loads the same rows.
    (tmp_path / "hf" / "data").mkdir(parents=True)
    (tmp_path / "countbench.parquet").rename(tmp_path / "hf" / "data" / "train-00000.parquet")
    assert len(countbench.load(str(tmp_path / "hf"), options).samples) == len(CASES)


def test_caption_forms():
    assert countbench.as_digits("Three cats and three hats", 3) == "3 cats and 3 hats"
    assert countbench.as_digits("twenty-three cats, threes", 3) == "twenty-three cats, threes"
    assert countbench.as_words("3 cats, 3.5 kg, 30 km, 3rd", 3) == "three cats, 3.5 kg, 30 km, 3rd"
    forms = countbench.caption_variants("background photo of three light bulbs", 3)
    assert forms["words"][0] == "background photo of two light bulbs"
    assert forms["digits"][8] == "background photo of 10 light bulbs"
    assert countbench.caption_variants("some light bulbs", 3) == {"words": None, "digits": None}


def test_bad_sources_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        countbench.load(str(tmp_path / "nope.jsonl"))
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ValueError, match="unsupported file type"):
        countbench.load(str(tmp_path / "x.txt"))
    (tmp_path / "bad.jsonl").write_text('{"image": "a.png"\n')
    with pytest.raises(ValueError, match="bad.jsonl:1: invalid JSON"):
        countbench.load(str(tmp_path / "bad.jsonl"))
    (tmp_path / "urls.json").write_text(json.dumps([{"image_url": "http://x/y.png", "text": "two", "number": 2}]))
    with pytest.raises(ValueError, match="need a download cache"):
        countbench.load(str(tmp_path / "urls.json"))


def test_shared_countbench_json_rewrites_every_caption():
    """The real benchmark's 540 captions all give nine variants in both forms (no images needed)."""
    path = Path(__file__).resolve().parents[2].parent / "shared" / "countbench" / "CountBench.json"
    if not path.is_file():
        pytest.skip(f"{path} not present (shared data lives beside the repository)")
    entries = json.loads(path.read_text())
    failures = [e["text"] for e in entries
                if any(v is None or len(v) != 9 for v in countbench.caption_variants(e["text"], e["number"]).values())]
    assert len(entries) == 540 and failures == []
