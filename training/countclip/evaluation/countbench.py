"""CountBench (Paiss et al., ICCV 2023): pick the right count among nine captions.

Protocol: for each image, `count_variants(caption, number)` gives the caption with its count
set to two .. ten; the prediction is the variant whose text embedding is most similar to the
image's. Two tasks share the images: number words ("three cats", the paper's) and digits
("3 cats"). Sources (see `load`):

  nielsr/countbench                 Hugging Face dataset (images embedded), via `datasets`
  path/to/file.parquet | dir/*.parquet   the same columns (image_url, text, number, image) on disk
  path/to/CountBench.json           the original list of {image_url, text, number}: images fetched
                                    in parallel into a cache (see `download.py`), dead links skipped
  path/to/file.jsonl | dir/         local {image, text, number} (image relative to the file), e.g.
                                    the synthetic CountBench (`countbench.jsonl`, `metadata.jsonl`)
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from countclip.counting.core import count_variants, number_word
from countclip.evaluation import metrics as M
from countclip.evaluation.download import DownloadConfig, FetchResult, fetch_all, write_download_report
from countclip.evaluation.images import DEFAULT_MAX_PIXELS, ImageRejected, decode_image, open_image_file

HF_DATASET = "nielsr/countbench"
FOLDER_INDEXES = ("countbench.jsonl", "metadata.jsonl", "CountBench.json")


@dataclass
class CountSample:
    key: str
    text: str
    number: int
    image: Callable[[], Image.Image]  # lazy: raises ImageRejected


@dataclass
class CountBenchData:
    source: str
    samples: list[CountSample]
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {"key", "reason", "detail"}
    downloads: list[FetchResult] | None = None


@dataclass(frozen=True)
class LoadOptions:
    cache_dir: Path | None = None          # where CountBench.json's images are downloaded
    download: DownloadConfig = DownloadConfig()
    split: str = "train"
    limit: int | None = None               # first N records only (smoke runs)
    max_pixels: int = DEFAULT_MAX_PIXELS
    report_dir: Path | None = None         # where the dead-link report goes
    log: Callable[[str], None] = print


# --- Loading ---------------------------------------------------------------------------------------

def load(source: str, options: LoadOptions = LoadOptions()) -> CountBenchData:
    """Any supported source (module docstring) -> samples whose images decode lazily."""
    path = Path(source)
    if path.is_dir():
        path = _folder_index(path)
    if path.is_dir():  # a directory of parquet files (a downloaded HF dataset)
        return _from_hf(sorted(str(p) for p in path.rglob("*.parquet")), source, options)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".parquet":
            return _from_hf([str(path)], source, options)
        if suffix == ".jsonl":
            return _from_records(_read_jsonl(path), path.parent, source, options)
        if suffix == ".json":
            return _from_records(_read_json_list(path), path.parent, source, options)
        raise ValueError(f"{source}: unsupported file type {suffix!r} (use .json, .jsonl or .parquet)")
    if re.fullmatch(r"[\w.-]+/[\w.-]+", source):
        return _from_hf(None, source, options)
    raise FileNotFoundError(f"{source}: no such file or directory, and not a Hugging Face dataset id")


def _folder_index(directory: Path) -> Path:
    for name in FOLDER_INDEXES:
        if (directory / name).is_file():
            return directory / name
    if any(directory.rglob("*.parquet")):
        return directory
    raise FileNotFoundError(f"{directory}: no {', '.join(FOLDER_INDEXES)} and no parquet files")


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number}: invalid JSON ({error})") from error
    return rows


def _read_json_list(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of {{image_url|image, text, number}} records")
    return data


def _from_hf(files: list[str] | None, source: str, options: LoadOptions) -> CountBenchData:
    import datasets

    if files is None:
        try:
            dataset = datasets.load_dataset(source, split=options.split)
        except Exception as error:  # offline, gated, renamed, wrong split: all end the same way for the user
            raise ValueError(f"could not load the Hugging Face dataset {source!r} (split {options.split!r}): "
                             f"{type(error).__name__}: {error}. Offline? Point --data at a local parquet file, "
                             f"CountBench.json or JSONL/folder instead.") from error
    elif not files:
        raise FileNotFoundError(f"{source}: no parquet files")
    else:
        dataset = datasets.load_dataset("parquet", data_files=files, split="train")
    if "image" in dataset.column_names:
        # Raw bytes: we decode them ourselves, with the bomb checks, one batch at a time.
        dataset = dataset.cast_column("image", datasets.Image(decode=False))
    if options.limit is not None:
        dataset = dataset.select(range(min(options.limit, len(dataset))))
    return _from_records(list(dataset), None, source, options)


def _from_records(records: list[dict[str, Any]], base: Path | None, source: str,
                  options: LoadOptions) -> CountBenchData:
    if options.limit is not None:
        records = records[: options.limit]
    data = CountBenchData(source, [])
    pending: list[tuple[str, str, int]] = []  # (image_url, text, number) still to fetch
    for index, record in enumerate(records):
        problem = _record_problem(record)
        key = _record_key(record, index)
        if problem:
            data.skipped.append({"key": key, "reason": "bad_record", "detail": problem})
            continue
        loader = _local_loader(record.get("image"), base, options.max_pixels)
        if loader is not None:
            data.samples.append(CountSample(key, record["text"], int(record["number"]), loader))
        elif isinstance(record.get("image_url"), str) and record["image_url"]:
            pending.append((record["image_url"], record["text"], int(record["number"])))
        else:
            data.skipped.append({"key": key, "reason": "no_image", "detail": "neither image nor image_url"})
    if pending:
        _download(pending, data, options)
    return data


def _record_key(record: Any, index: int) -> str:
    """How a record is named in skip lists: its URL, else its image path, else its position."""
    if isinstance(record, dict):
        for name in ("image_url", "image"):
            if isinstance(record.get(name), str) and record[name]:
                return record[name]
    return f"#{index}"


def _record_problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return "not a JSON object"
    if not isinstance(record.get("text"), str) or not record["text"].strip():
        return "text is missing or empty"
    number = record.get("number")
    integral = isinstance(number, int) or (isinstance(number, float) and number.is_integer())
    if isinstance(number, bool) or not integral or int(number) not in M.COUNTS:
        return f"number {number!r} is not an integer in 2..10"
    return None


def _local_loader(image: Any, base: Path | None, max_pixels: int) -> Callable[[], Image.Image] | None:
    """Embedded bytes (`{"bytes": ...}`, as `datasets` stores images) or a path relative to the index
    file; None when the record has neither (its image_url is used instead)."""
    if isinstance(image, dict):
        if image.get("bytes"):
            data = image["bytes"]
            return lambda: decode_image(data, max_pixels)
        image = image.get("path")
    if not isinstance(image, str) or not image:
        return None
    path = Path(image)
    if not path.is_absolute():
        if base is None:
            return None
        path = base / path
    return lambda: open_image_file(path, max_pixels)


def _download(pending: list[tuple[str, str, int]], data: CountBenchData, options: LoadOptions) -> None:
    if options.cache_dir is None:
        raise ValueError(f"{data.source}: records with image_url need a download cache (--cache DIR)")
    options.log(f"fetching {len(pending)} images into {options.cache_dir} ({options.download.workers} threads)")
    results = fetch_all([url for url, _, _ in pending], options.cache_dir, options.download,
                        progress=_progress_logger(options.log))
    for (url, text, number), result in zip(pending, results):
        if result.ok:
            path = Path(result.path)
            data.samples.append(CountSample(url, text, number,
                                            lambda p=path: open_image_file(p, options.max_pixels)))
        else:
            data.skipped.append({"key": url, "reason": f"download:{result.status}", "detail": result.detail})
    data.downloads = results
    if options.report_dir is not None:
        report = write_download_report(results, Path(options.report_dir) / "dead_links.json")
        options.log(f"downloads: {report['ok']}/{report['total']} ok, by outcome {report['by_status']}; "
                    f"dead-link report in {Path(options.report_dir) / 'dead_links.json'}")


def _progress_logger(log: Callable[[str], None]) -> Callable[[int, int, FetchResult], None]:
    def progress(done: int, total: int, result: FetchResult) -> None:
        if done == total or done % 50 == 0:
            log(f"  fetched {done}/{total}")
    return progress


# --- Caption forms -------------------------------------------------------------------------------

def as_words(text: str, number: int) -> str:
    """"3 cats" -> "three cats" (standalone digits only: not 3.5, 30, 3rd, 2x3)."""
    return re.sub(rf"(?<![\w.,]){number}(?![\w]|[.,]\d)", number_word(number), text)


def as_digits(text: str, number: int) -> str:
    """"three cats" -> "3 cats" (whole words only: not "twenty-three", "threes")."""
    return re.sub(rf"(?<![\w-]){number_word(number)}(?![\w-])", str(number), text, flags=re.IGNORECASE)


def caption_variants(text: str, number: int) -> dict[str, list[str] | None]:
    """The nine captions (two .. ten) in each form; None when the count cannot be rewritten."""
    forms = {}
    for task, form in (("words", as_words), ("digits", as_digits)):
        try:
            forms[task] = count_variants(form(text, number), number)
        except ValueError:
            forms[task] = None
    return forms


# --- Evaluation ------------------------------------------------------------------------------------

@torch.no_grad()
def _embed_texts(model: Any, captions: list[str], device: str) -> torch.Tensor:
    batch = model.tokenize(captions)
    features = model.encode_text(batch["input_ids"].to(device), batch["attention_mask"].to(device))
    return torch.nn.functional.normalize(features.float(), dim=-1)


@torch.no_grad()
def _embed_images(model: Any, images: list[Image.Image], device: str) -> torch.Tensor:
    pixels = torch.stack([model.preprocess(image) for image in images]).to(device)
    return torch.nn.functional.normalize(model.encode_image(pixels).float(), dim=-1)


def _variant_similarities(model: Any, image_embeds: torch.Tensor, variants: list[list[str]], device: str) -> np.ndarray:
    """[B, 9]: each image against its own nine captions."""
    text = _embed_texts(model, [c for captions in variants for c in captions], device)
    text = text.view(len(variants), len(M.COUNTS), -1)
    return torch.einsum("bd,bkd->bk", image_embeds, text).cpu().numpy()


def evaluate(model: Any, data: CountBenchData, batch_size: int = 32, device: str = "cpu") -> dict[str, Any]:
    """CountBench metrics for `model` (a `ClipAdapter`) on `data`; see `metrics.counting_metrics`."""
    model = model.to(device).eval()
    skipped = list(data.skipped)
    rows: dict[str, list[np.ndarray]] = {"words": [], "digits": []}
    truth: dict[str, list[int]] = {"words": [], "digits": []}
    for start in range(0, len(data.samples), batch_size):
        batch, images, forms = [], [], []
        for sample in data.samples[start:start + batch_size]:
            variants = caption_variants(sample.text, sample.number)
            if variants["words"] is None:
                skipped.append({"key": sample.key, "reason": "no_count_in_caption",
                                "detail": f"{sample.number} not found in {sample.text!r}"})
                continue
            try:
                images.append(sample.image())
            except ImageRejected as rejected:
                skipped.append({"key": sample.key, "reason": f"image:{rejected.reason}", "detail": rejected.detail})
                continue
            batch.append(sample)
            forms.append(variants)
        if not batch:
            continue
        image_embeds = _embed_images(model, images, device)
        for task in rows:
            keep = [i for i, f in enumerate(forms) if f[task] is not None]
            if keep:
                rows[task].append(_variant_similarities(model, image_embeds[keep], [forms[i][task] for i in keep], device))
                truth[task] += [batch[i].number for i in keep]
    return _summary(rows, truth, skipped)


def _summary(rows: dict[str, list[np.ndarray]], truth: dict[str, list[int]], skipped: list[dict]) -> dict[str, Any]:
    results = {}
    for task in rows:
        similarities = np.concatenate(rows[task]) if rows[task] else np.zeros((0, len(M.COUNTS)))
        results[task] = M.counting_metrics(similarities, truth[task])
    metrics = {**results["words"], "chance_accuracy": 1 / len(M.COUNTS), "digits": results["digits"],
               "n_skipped": len(skipped), "skipped_by_reason": dict(Counter(s["reason"] for s in skipped)),
               "skipped": skipped}
    return metrics
