"""Every evaluation dataset, registered in one place (CLIP_benchmark's `build_dataset` idea).

A `DatasetSpec` says which task a dataset measures, where it comes from by default, how to
load it (`load(source, options) -> data`) and how to score a model on it
(`evaluate(model, data, **kwargs) -> metrics dict`). Adding a dataset means adding an entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from countclip.evaluation import countbench, zeroshot


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    task: str                                # "counting" | "zeroshot_classification"
    description: str
    default_source: str | None
    load: Callable[[str, dict[str, Any]], Any]
    evaluate: Callable[..., dict[str, Any]]


def _load_countbench(source: str, options: dict[str, Any]) -> countbench.CountBenchData:
    return countbench.load(source, countbench.LoadOptions(**options))


def _load_imagefolder(source: str, options: dict[str, Any]) -> zeroshot.ImageFolderData:
    return zeroshot.load(source, limit_per_class=options.get("limit"))


DATASETS: dict[str, DatasetSpec] = {
    "countbench": DatasetSpec(
        "countbench", "counting",
        "CountBench (Paiss et al. 2023): 540 images, counts 2..10; HF dataset, CountBench.json with URLs, "
        "parquet, or a local {image,text,number} JSONL/folder such as the synthetic CountBench",
        countbench.HF_DATASET, _load_countbench, countbench.evaluate),
    "imagefolder": DatasetSpec(
        "imagefolder", "zeroshot_classification",
        "any <root>/<class name>/<images> folder (e.g. `countclip synth zeroshot`), CLIP prompt ensemble",
        None, _load_imagefolder, zeroshot.evaluate),
}

# `countclip eval TASK` -> the dataset it runs by default.
TASK_DEFAULTS = {"countbench": "countbench", "zeroshot": "imagefolder"}


def get(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; registered: {', '.join(DATASETS)}")
    return DATASETS[name]
