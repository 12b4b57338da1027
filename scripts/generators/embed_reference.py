#!/usr/bin/env python3
"""Python's ONNX path for a bundle, as the reference the TypeScript service is checked against.

Images go through `countclip.model.preprocess.preprocess_image` (PIL) and the bundle's vision.onnx; texts
through the bundle's tokenizer (transformers CLIPTokenizer, as `countclip.model` tokenizes) and
text.onnx. Used by test/model-embed.test.ts and test/model-preprocess.test.ts.

stdin (JSON): {"jobs": [JOB, ...]}, each JOB
    {"bundle": DIR | null,           # embeddings need a bundle; pixels alone do not
     "preprocess": {...} | null,     # PreprocessConfig fields; default: the bundle's preprocess.json
     "images": [PATH, ...], "texts": [STR, ...]}
stdout (JSON): {"results": [RESULT, ...]}, each RESULT
    {"pixels": [B64, ...], "image_embeds": [[...], ...], "text_embeds": [[...], ...]}
where each pixels entry is base64 of little-endian float32 [3, crop, crop]. Several jobs share
one process because importing torch and transformers dominates the run time.

    echo '{"jobs": [{"bundle": "/tmp/b", "images": ["cat.jpg"], "texts": ["two cats"]}]}' | \
        training/.venv/bin/python scripts/generators/embed_reference.py  # with {"jobs": [...]} as above
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from countclip.model.base import PREPROCESS_FILE
from countclip.model.preprocess import PreprocessConfig, preprocess_image


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def preprocess(paths: list[str], config: PreprocessConfig) -> np.ndarray:
    arrays = []
    for path in paths:
        with Image.open(path) as image:
            arrays.append(preprocess_image(image, config).numpy().astype("<f4"))
    return np.stack(arrays) if arrays else np.zeros((0, 3, config.crop_size, config.crop_size), "<f4")


def embed_texts(bundle: Path, texts: list[str]) -> np.ndarray:
    from transformers import CLIPTokenizer

    manifest = json.loads((bundle / "manifest.json").read_text())
    tokenizer = CLIPTokenizer.from_pretrained(bundle)
    encoded = tokenizer(texts, padding="longest", truncation=True, max_length=int(manifest["context_length"]), return_tensors="np")
    feeds = {"input_ids": encoded["input_ids"].astype(np.int64), "attention_mask": encoded["attention_mask"].astype(np.int64)}
    return _session(bundle / "text.onnx").run(["text_embeds"], feeds)[0]


def run_job(request: dict) -> dict:
    bundle = Path(request["bundle"]) if request.get("bundle") else None
    raw_config = request.get("preprocess")
    if raw_config is None:
        if bundle is None:
            raise SystemExit("need a bundle or a preprocess config")
        raw_config = json.loads((bundle / PREPROCESS_FILE).read_text())
    config = PreprocessConfig.from_json(raw_config)
    pixels = preprocess(list(request.get("images", [])), config)
    result: dict[str, object] = {"pixels": [base64.b64encode(p.tobytes()).decode("ascii") for p in pixels]}
    if bundle is not None and len(pixels):
        result["image_embeds"] = _session(bundle / "vision.onnx").run(["image_embeds"], {"pixel_values": pixels})[0].tolist()
    texts = list(request.get("texts", []))
    if bundle is not None and texts:
        result["text_embeds"] = embed_texts(bundle, texts).tolist()
    return result


def main() -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    jobs = json.load(sys.stdin)["jobs"]
    json.dump({"results": [run_job(job) for job in jobs]}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
