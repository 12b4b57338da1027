"""What ships, read back: a verified model bundle (ONNX + tokenizer.json) behind the adapter interface.

`countclip eval ... --model path/to/bundle` scores the exported artifact itself, through
onnxruntime, the bundle's tokenizer and preprocess.json, so a CountBench number in a manifest can
be reproduced from the bundle alone, and a PyTorch checkpoint and its export can be compared
(`load_any`: a bundle or any model spec). `countclip embed` embeds galleries with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from countclip.bundle import manifest as B
from countclip.model.preprocess import PreprocessConfig, preprocess_image


def is_bundle(spec: str) -> bool:
    return (Path(spec) / B.MANIFEST).is_file()


class BundleModel(nn.Module):
    """Just enough of `ClipAdapter` for the evaluators: tokenize, encode_text, encode_image, preprocess."""

    def __init__(self, directory: str | Path) -> None:
        super().__init__()
        import onnxruntime as ort
        from tokenizers import Tokenizer

        directory = Path(directory)
        manifest = B.verify_bundle(directory)  # never score a tampered bundle
        self.name = manifest["model_name"]
        self.base_model = manifest["base_model"]
        self.embed_dim = int(manifest["embed_dim"])
        self.context_length = int(manifest["context_length"])
        self.preprocess_config = PreprocessConfig.from_json(
            json.loads((directory / B.PREPROCESS).read_text(encoding="utf-8")))
        self.tokenizer = Tokenizer.from_file(str(directory / B.TOKENIZER))
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        self.text = ort.InferenceSession(str(directory / B.TEXT_ONNX), providers=providers)
        self.vision = ort.InferenceSession(str(directory / B.VISION_ONNX), providers=providers)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        encodings = self.tokenizer.encode_batch(list(texts))
        return {"input_ids": torch.tensor([e.ids for e in encodings], dtype=torch.int64),
                "attention_mask": torch.tensor([e.attention_mask for e in encodings], dtype=torch.int64)}

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        feed = {"input_ids": _numpy(input_ids, np.int64), "attention_mask": _numpy(attention_mask, np.int64)}
        return torch.from_numpy(self.text.run([B.TEXT_OUTPUT], feed)[0]).to(input_ids.device)

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        feed = {B.VISION_INPUT: _numpy(pixel_values, np.float32)}
        return torch.from_numpy(self.vision.run([B.VISION_OUTPUT], feed)[0]).to(pixel_values.device)

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return preprocess_image(image, self.preprocess_config)


def _numpy(tensor: torch.Tensor, dtype: Any) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().cpu().numpy().astype(dtype, copy=False))


def load_any(spec: str) -> Any:
    """A bundle directory -> BundleModel; anything else -> `countclip.model.factory.load_model`."""
    if is_bundle(spec):
        return BundleModel(spec)
    from countclip.model.factory import load_model

    return load_model(spec)
