"""open_clip models behind the `ClipAdapter` interface (`open_clip:ARCH/PRETRAINED`, `hf-hub:ORG/REPO`).

open_clip is optional (it needs torchvision): without it these specs fail with an ImportError
that says what to install, and everything else in countclip works.

Specs:
    open_clip:ViT-B-32/laion2b_s34b_b79k    architecture + pretrained tag (open_clip.list_pretrained())
    open_clip:ViT-B-32                      architecture, random init
    hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K
    a directory written by OpenClipAdapter.save (holds open_clip_config.json; `factory.load_model` routes it here)

Only CLIP-BPE text towers are supported (OpenAI/LAION CLIP, not SigLIP's tokenizers): they share
CLIP's vocabulary, so `tokenize` and the exported tokenizer.json are exactly the service's.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from countclip.model.base import ClipAdapter, clip_bpe_dir, clip_tokenizer, read_model_meta
from countclip.model.preprocess import PreprocessConfig

CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"
INSTALL_HINT = ("open_clip model specs need the optional package open_clip_torch (and torchvision): "
                "pip install open_clip_torch")


def _import_open_clip() -> Any:
    try:
        import open_clip
    except ImportError as error:  # also raised when torchvision is missing or mismatched
        raise ImportError(f"{INSTALL_HINT} ({error})") from error
    return open_clip


def parse_spec(spec: str) -> tuple[str, str | None]:
    """-> (open_clip model name, pretrained tag or None)."""
    if spec.startswith("hf-hub:"):
        return spec, None
    if spec.startswith("open_clip:"):
        body = spec.removeprefix("open_clip:")
        arch, _, pretrained = body.partition("/")
        if not arch:
            raise ValueError(f"bad open_clip spec {spec!r}: expected open_clip:ARCH[/PRETRAINED]")
        return arch, pretrained or None
    raise ValueError(f"not an open_clip spec: {spec!r}")


class OpenClipAdapter(ClipAdapter):
    def __init__(self, model: nn.Module, tokenizer: Any, name: str, base_model: str, model_config: dict) -> None:
        super().__init__(model, tokenizer, _preprocess_config(model), name=name, base_model=base_model,
                         embed_dim=int(model_config.get("embed_dim", 0)) or int(model.text_projection.shape[-1]),
                         context_length=int(getattr(tokenizer, "context_length", 77)))
        self.model_config = model_config

    def encode_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixel_values)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # open_clip pools at the end-of-text token (the highest id) under a causal mask: padding is
        # invisible to it, so attention_mask is accepted for the interface and not needed.
        return self.model.encode_text(input_ids)

    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        ids = self.tokenizer(list(texts))  # [B, context_length], zero padded
        lengths = (ids != 0).sum(dim=1)
        ids = ids[:, : int(lengths.max())]  # pad to the batch's longest caption, not 77
        return {"input_ids": ids.long(), "attention_mask": (ids != 0).long()}

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        self.model.set_grad_checkpointing(enabled)

    def save(self, directory: str | Path) -> Path:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous().clone() for k, v in self.model.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE))
        config = {"model_cfg": self.model_config,
                  "preprocess_cfg": {"mean": list(self.preprocess_config.mean), "std": list(self.preprocess_config.std),
                                     "interpolation": "bicubic", "resize_mode": "shortest"}}
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        self.write_model_meta(directory, family="open_clip")
        return directory

    def tokenizer_files(self) -> dict[str, Path]:
        """CLIP's BPE in Hugging Face tokenizers format (what the service loads)."""
        out = Path(tempfile.mkdtemp(prefix="countclip-openclip-tok-"))
        clip_tokenizer(clip_bpe_dir(), self.context_length).save_pretrained(out)
        return {p.name: p for p in out.iterdir() if p.suffix in (".json", ".txt")}


def _preprocess_config(model: nn.Module) -> PreprocessConfig:
    visual = model.visual
    size = visual.image_size
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    cfg = getattr(visual, "preprocess_cfg", {}) or {}
    kwargs: dict[str, Any] = {"size": size, "crop_size": size}
    if cfg.get("mean"):
        kwargs["mean"] = tuple(cfg["mean"])
    if cfg.get("std"):
        kwargs["std"] = tuple(cfg["std"])
    return PreprocessConfig(**kwargs)


def _model_config(open_clip: Any, name: str) -> dict:
    """The architecture config open_clip built `name` from (kept so `save` can rebuild it)."""
    if name.startswith("hf-hub:"):
        from huggingface_hub import hf_hub_download

        path = hf_hub_download(name.removeprefix("hf-hub:"), filename=CONFIG_FILE)
        return json.loads(Path(path).read_text())["model_cfg"]
    config = open_clip.get_model_config(name)
    if config is None:
        raise ValueError(f"open_clip knows no architecture {name!r}; see open_clip.list_models()")
    return config


def _load_saved(open_clip: Any, directory: Path) -> tuple[nn.Module, Any, dict]:
    """Rebuild a model written by `OpenClipAdapter.save` (no network, weights from safetensors)."""
    from safetensors.torch import load_file

    model_config = json.loads((directory / CONFIG_FILE).read_text())["model_cfg"]
    kwargs = dict(model_config)
    custom_text = kwargs.pop("custom_text", False) or "hf_model_name" in kwargs.get("text_cfg", {})
    model_class = open_clip.CustomTextCLIP if custom_text else open_clip.CLIP
    model = model_class(**kwargs)
    model.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))
    context_length = int(model_config.get("text_cfg", {}).get("context_length", 77))
    return model, open_clip.tokenizer.SimpleTokenizer(context_length=context_length), model_config


def load_open_clip(spec: str) -> OpenClipAdapter:
    open_clip = _import_open_clip()
    if (Path(spec) / CONFIG_FILE).is_file():
        model, tokenizer, model_config = _load_saved(open_clip, Path(spec))
    else:
        name, pretrained = parse_spec(spec)
        model = open_clip.create_model(name, pretrained=pretrained)
        tokenizer = open_clip.get_tokenizer(name)
        model_config = _model_config(open_clip, name)
    if not isinstance(tokenizer, open_clip.tokenizer.SimpleTokenizer):
        raise ValueError(f"{spec}: only CLIP-BPE text towers are supported (got {type(tokenizer).__name__})")
    meta = read_model_meta(spec)
    return OpenClipAdapter(model, tokenizer, name=meta.get("name", spec), base_model=meta.get("base_model", spec),
                           model_config=model_config)
