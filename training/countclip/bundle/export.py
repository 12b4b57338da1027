"""`countclip export`: turn a model into the bundle the service loads (see `countclip.bundle.manifest`).

    countclip export --model SPEC --out DIR [--metrics FILE ...] [--training-summary FILE] [--name NAME]

Steps: trace both towers to ONNX (L2-normalised outputs, dynamic batch and sequence axes),
copy the tokenizer (its truncation/padding set to reproduce `adapter.tokenize`), write
preprocess.json, check onnxruntime against PyTorch on random and real-looking inputs (cosine
>= 0.9999, padded batches against unpadded single captions) and the bundle tokenizer against
the model's, hash everything into manifest.json, and only then move the bundle into place. With `--quantize text`
(or `all`) the bundle also gets int8 towers that pass parity checks against fp32 (`countclip.bundle.quantize`),
recorded with their figures in the manifest (`precision`, `quantization`).
Everything is written into a temporary directory beside DIR and renamed at the end, so a failed
export never leaves a half-written bundle and never destroys the previous one.

The default exporter is the TorchScript one (`--exporter torchscript`): with torch 2.13 and
transformers 5.24 it gives symbolic batch/seq axes and exports the tiny model in ~1.5 s (ViT-B/32
in ~1.5 min on a loaded 2-core CPU); the dynamo exporter (`--exporter dynamo`) also works, about
ten times slower. Either way the numerical checks decide whether the bundle is written, so an
exporter that misbehaves on another torch/transformers pair fails loudly instead of shipping.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from countclip.bundle import manifest as B
from countclip.bundle import quantize as Q

MIN_COSINE = 0.9999
OPSET = 17
EXPORTERS = ("torchscript", "dynamo")


class ExportError(Exception):
    """The export could not produce a bundle that behaves like the PyTorch model."""


class TextTower(nn.Module):
    """input_ids, attention_mask -> L2-normalised text embeddings (what text.onnx computes)."""

    def __init__(self, adapter: nn.Module) -> None:
        super().__init__()
        self.adapter = adapter

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.adapter.encode_text(input_ids, attention_mask), dim=-1)


class VisionTower(nn.Module):
    """pixel_values -> L2-normalised image embeddings (what vision.onnx computes)."""

    def __init__(self, adapter: nn.Module) -> None:
        super().__init__()
        self.adapter = adapter

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.adapter.encode_image(pixel_values), dim=-1)


# --- Verification inputs: real-looking and random --------------------------------------------

REAL_CAPTIONS = (
    "two",
    "a photo of three cats",
    "Four red apples on a wooden table",
    "background photo of three light bulbs",
    "We review the ten best gaming headsets in the market",
    "five kids sitting on a bench in the park, smiling at the camera",
    "A set of 6 vintage glass bottles — blue, green & amber (c. 1920)",
    "seven seven seven seven seven seven seven seven seven seven seven seven seven seven seven seven seven "
    "seven seven seven seven seven seven seven seven seven seven seven seven seven seven seven seven seven "
    "seven seven seven seven seven seven seven seven seven seven seven seven seven seven seven seven seven",
    "Café menu: 2 croissants + 1 espresso",
    "eight",
)


def real_captions() -> list[str]:
    """Captions like the service sees: one word to longer than the context (truncated)."""
    return list(REAL_CAPTIONS)


def random_captions(count: int, seed: int) -> list[str]:
    """Random strings of random lengths (some beyond the context length). Plain ASCII on purpose:
    open_clip's tokenizer also runs ftfy and html.unescape ("&lt" -> "<"), which tokenizer.json
    cannot express, and random text would trip on that without telling us anything about the export."""
    rng = np.random.default_rng(seed)
    alphabet = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789     ,.!?'-")
    return ["".join(rng.choice(alphabet, size=int(rng.integers(1, 200)))) for _ in range(count)]


def real_images() -> list[Any]:
    """Generated pictures: shapes on plain and gradient backgrounds, odd sizes and aspect ratios."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    images = []
    for index, (width, height) in enumerate(((320, 240), (240, 320), (97, 131), (640, 200), (48, 48), (512, 512))):
        gradient = np.linspace(0, 255, width, dtype=np.float32)[None, :, None] * np.ones((height, 1, 3), np.float32)
        base = Image.fromarray((gradient * rng.uniform(0.3, 1.0, size=3)).astype(np.uint8))
        draw = ImageDraw.Draw(base)
        for _ in range(index + 2):
            x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
            r = int(rng.integers(3, max(4, min(width, height) // 4)))
            draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(int(c) for c in rng.integers(0, 256, size=3)))
        images.append(base)
    images.append(Image.new("RGBA", (200, 150), (255, 0, 0, 128)))  # alpha composited on white
    images.append(Image.new("L", (150, 200), 40))  # grey scale
    return images


def random_pixels(count: int, size: int, seed: int) -> torch.Tensor:
    return torch.randn(count, 3, size, size, generator=torch.Generator().manual_seed(seed))


# --- ONNX export -------------------------------------------------------------------------------

def _export_onnx(module: nn.Module, args: tuple[torch.Tensor, ...], path: Path, input_names: list[str],
                 output_name: str, axes: dict[str, dict[int, str]], exporter: str, max_seq: int) -> None:
    if exporter == "torchscript":
        dynamic_axes = {**axes, output_name: {0: "batch"}}
        with warnings.catch_warnings():
            # The tracer warns about Python-level shape checks (e.g. seq <= max positions) it freezes;
            # the numerical check after export is what proves the graph generalises.
            warnings.simplefilter("ignore")
            torch.onnx.export(module, args, str(path), input_names=input_names, output_names=[output_name],
                              dynamic_axes=dynamic_axes, opset_version=OPSET, dynamo=False, do_constant_folding=True)
        return
    dims = {"batch": torch.export.Dim("batch", min=1)}
    if max_seq:
        dims["seq"] = torch.export.Dim("seq", min=2, max=max_seq)
    shapes = {name: {axis: dims[label] for axis, label in spec.items()} for name, spec in axes.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, args, input_names=input_names, output_names=[output_name],
                                    dynamic_shapes=shapes, dynamo=True, verbose=False)
    program.save(str(path), external_data=False)


def _ensure_inputs(path: Path, expected: list[str], dtype: int, dims: list[str]) -> None:
    """Keep the agreed input signature even when a model ignores an input.

    open_clip's text tower ignores attention_mask (it pools at the EOS position), so the exporter
    drops that input; the service always feeds it, so we declare it back as an unused input.
    """
    import onnx

    model = onnx.load(str(path))
    present = {inp.name for inp in model.graph.input}
    missing = [name for name in expected if name not in present]
    if not missing:
        return
    for name in missing:
        model.graph.input.append(onnx.helper.make_tensor_value_info(name, dtype, dims))
    onnx.save(model, str(path))


def _check_signature(path: Path, inputs: list[str], output: str) -> None:
    """Names as agreed, and every batch/sequence axis symbolic (not frozen to the trace's size)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    onnx.checker.check_model(model)
    names = [inp.name for inp in model.graph.input]
    if names != inputs or [out.name for out in model.graph.output] != [output]:
        raise ExportError(f"{path.name}: inputs {names} / outputs {[o.name for o in model.graph.output]}, "
                          f"expected {inputs} / [{output!r}]")
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        symbolic = [0] + ([1] if value.name in B.TEXT_INPUTS else [])
        frozen = [axis for axis in symbolic if not dims[axis].dim_param]
        if frozen:
            raise ExportError(f"{path.name}: {value.name} axes {frozen} are fixed, expected dynamic")


def export_text(adapter: nn.Module, path: Path, exporter: str) -> None:
    # Trace on a padded batch of two so the attention-mask path is the one recorded.
    sample = adapter.tokenize(["a photo of three cats on a sofa", "two dogs"])
    args = (sample["input_ids"].long(), sample["attention_mask"].long())
    axes = {name: {0: "batch", 1: "seq"} for name in B.TEXT_INPUTS}
    _export_onnx(TextTower(adapter), args, path, list(B.TEXT_INPUTS), B.TEXT_OUTPUT, axes, exporter,
                 int(adapter.context_length))
    import onnx

    _ensure_inputs(path, list(B.TEXT_INPUTS), onnx.TensorProto.INT64, ["batch", "seq"])
    _check_signature(path, list(B.TEXT_INPUTS), B.TEXT_OUTPUT)


def export_vision(adapter: nn.Module, path: Path, exporter: str) -> None:
    size = int(adapter.preprocess_config.crop_size)
    args = (torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0)),)
    axes = {B.VISION_INPUT: {0: "batch"}}
    _export_onnx(VisionTower(adapter), args, path, [B.VISION_INPUT], B.VISION_OUTPUT, axes, exporter, 0)
    _check_signature(path, [B.VISION_INPUT], B.VISION_OUTPUT)


# --- Tokenizer and preprocessing files ---------------------------------------------------------

def _pad_token(config: dict[str, Any]) -> str:
    token = config.get("pad_token") or config.get("eos_token") or "<|endoftext|>"
    return token["content"] if isinstance(token, dict) else str(token)


def _tokenizer_json_from_bpe(files: dict[str, Path], workdir: Path) -> dict[str, Path]:
    """Adapters that ship only vocab.json + merges.txt: build the HF tokenizers file from them."""
    from transformers import CLIPTokenizer

    if "vocab.json" not in files or "merges.txt" not in files:
        raise ExportError(f"the model's tokenizer provides neither tokenizer.json nor vocab.json + merges.txt "
                          f"(it gave: {', '.join(files) or 'nothing'})")
    source = workdir / "bpe"
    source.mkdir()
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(files[name], source / name)
    # from_pretrained on a directory: the constructor's vocab_file/merges_file are ignored by transformers 5.
    tokenizer = CLIPTokenizer.from_pretrained(source)
    tokenizer.save_pretrained(workdir)
    if not (workdir / B.TOKENIZER).exists():
        raise ExportError("transformers could not produce tokenizer.json from vocab.json + merges.txt")
    return {B.TOKENIZER: workdir / B.TOKENIZER, B.TOKENIZER_CONFIG: workdir / B.TOKENIZER_CONFIG}


def write_tokenizer(adapter: Any, out: Path) -> None:
    """tokenizer.json with truncation to context_length and longest-padding with the pad token, so
    `tokenizers.Tokenizer.from_file(...).encode_batch` reproduces `adapter.tokenize` exactly."""
    files = adapter.tokenizer_files()
    with tempfile.TemporaryDirectory(prefix="countclip-tok-") as workdir:
        if B.TOKENIZER not in files:
            files = _tokenizer_json_from_bpe(files, Path(workdir))
        config_path = files.get(B.TOKENIZER_CONFIG)
        config = json.loads(config_path.read_text(encoding="utf-8")) if config_path else {}
        tokenizer = json.loads(files[B.TOKENIZER].read_text(encoding="utf-8"))
    pad = _pad_token(config)
    pad_id = next((t["id"] for t in tokenizer.get("added_tokens", []) if t["content"] == pad), None)
    if pad_id is None:
        pad_id = tokenizer["model"]["vocab"].get(pad)
    if pad_id is None:
        raise ExportError(f"pad token {pad!r} is not in the tokenizer's vocabulary")
    context = int(adapter.context_length)
    tokenizer["truncation"] = {"direction": "Right", "max_length": context, "strategy": "LongestFirst", "stride": 0}
    tokenizer["padding"] = {"strategy": "BatchLongest", "direction": "Right", "pad_to_multiple_of": None,
                            "pad_id": int(pad_id), "pad_type_id": 0, "pad_token": pad}
    config = {k: v for k, v in config.items() if k not in ("is_local", "local_files_only", "name_or_path")}
    config.update(model_max_length=context, pad_token=pad)
    (out / B.TOKENIZER).write_text(json.dumps(tokenizer, ensure_ascii=False), encoding="utf-8")
    (out / B.TOKENIZER_CONFIG).write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")


def write_preprocess(adapter: Any, out: Path) -> None:
    (out / B.PREPROCESS).write_text(json.dumps(adapter.preprocess_config.to_json(), indent=2), encoding="utf-8")


# --- Verification: onnxruntime against PyTorch -------------------------------------------------

def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _worst_cosine(actual: np.ndarray, expected: np.ndarray) -> float:
    actual = actual / np.linalg.norm(actual, axis=-1, keepdims=True)
    expected = expected / np.linalg.norm(expected, axis=-1, keepdims=True)
    return float((actual * expected).sum(-1).min())


def _require(cosine: float, what: str) -> None:
    if not np.isfinite(cosine) or cosine < MIN_COSINE:
        raise ExportError(f"{what}: worst cosine {cosine:.6f} < {MIN_COSINE} between onnxruntime and PyTorch")


@torch.no_grad()
def verify_text(adapter: Any, bundle_dir: Path) -> float:
    """text.onnx fed exactly as the service feeds it (the bundle's tokenizer.json, padded to the
    batch's longest and to the full context), and PyTorch on the model's own padded batch, each
    against PyTorch on every caption alone (unpadded): catches a wrong export, a tokenizer that
    disagrees with the model's, and any dependence of an embedding on its batch's padding."""
    from tokenizers import Tokenizer

    session, tower = _session(bundle_dir / B.TEXT_ONNX), TextTower(adapter)
    bundle_tokenizer = Tokenizer.from_file(str(bundle_dir / B.TOKENIZER))
    worst = 1.0
    for what, captions in (("real captions", real_captions()), ("random text", random_captions(12, seed=0))):
        batch = adapter.tokenize(captions)
        ids, mask = batch["input_ids"].long(), batch["attention_mask"].long()
        _check_tokenizer(bundle_tokenizer, captions, ids, mask)
        alone = np.concatenate([tower(**{k: v.long() for k, v in adapter.tokenize([c]).items()}).numpy()
                                for c in captions])
        checks = [(f"PyTorch text tower, {what}, padded vs unpadded", tower(ids, mask).numpy(), alone)]
        for padding, feed in (("padded to longest", _service_feed(bundle_tokenizer, captions, None)),
                              ("padded to context", _service_feed(bundle_tokenizer, captions, adapter.context_length)),
                              ("batch of one", _service_feed(bundle_tokenizer, captions[-1:], None))):
            want = alone[-1:] if padding == "batch of one" else alone
            checks.append((f"text.onnx, {what}, {padding}", session.run([B.TEXT_OUTPUT], feed)[0], want))
        for label, got, want in checks:
            cosine = _worst_cosine(got, want)
            _require(cosine, label)
            worst = min(worst, cosine)
    return worst


def _service_feed(tokenizer: Any, captions: list[str], pad_to: int | None) -> dict[str, np.ndarray]:
    """int64 input_ids/attention_mask from the bundle tokenizer, optionally padded to `pad_to`."""
    encodings = tokenizer.encode_batch(captions)
    ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
    mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
    if pad_to is not None and pad_to > ids.shape[1]:
        pad_id = tokenizer.padding["pad_id"]
        extra = pad_to - ids.shape[1]
        ids = np.pad(ids, ((0, 0), (0, extra)), constant_values=pad_id)
        mask = np.pad(mask, ((0, 0), (0, extra)), constant_values=0)
    return {"input_ids": ids, "attention_mask": mask}


def _check_tokenizer(tokenizer: Any, captions: list[str], ids: torch.Tensor, mask: torch.Tensor) -> None:
    """The bundle's tokenizer.json must give the model's token ids, or the service embeds other text."""
    for row, (caption, encoding) in enumerate(zip(captions, tokenizer.encode_batch(captions))):
        expected = ids[row][mask[row].bool()].tolist()
        if encoding.ids[: len(expected)] != expected or sum(encoding.attention_mask) != len(expected):
            raise ExportError(f"tokenizer.json disagrees with the model's tokenizer on {caption!r}: "
                              f"{encoding.ids} vs {expected}")


@torch.no_grad()
def verify_vision(adapter: Any, bundle_dir: Path) -> float:
    session, tower = _session(bundle_dir / B.VISION_ONNX), VisionTower(adapter)
    size = int(adapter.preprocess_config.crop_size)
    real = torch.stack([adapter.preprocess(image) for image in real_images()])
    worst = 1.0
    for what, pixels in (("generated images", real), ("random pixels", random_pixels(5, size, seed=0))):
        expected = tower(pixels).numpy()
        for label, batch, want in ((f"vision.onnx, {what}", pixels, expected),
                                   (f"vision.onnx, {what}, batch of one", pixels[:1], expected[:1])):
            got = session.run([B.VISION_OUTPUT], {B.VISION_INPUT: batch.numpy()})[0]
            cosine = _worst_cosine(got, want)
            _require(cosine, label)
            worst = min(worst, cosine)
    return worst


# --- The bundle --------------------------------------------------------------------------------

def _metrics_from_files(paths: list[Path]) -> dict[str, Any]:
    """Evaluation results (`countclip eval` JSON: keyed by dataset) or plain metric dicts (merged)."""
    metrics: dict[str, Any] = {}
    for path in paths:
        data = _read_json_object(path, "--metrics")
        if {"dataset", "task", "metrics"} <= set(data):
            # The per-image skip list belongs in the result file, not in every deployed manifest.
            summary = {k: v for k, v in data["metrics"].items() if k != "skipped"}
            metrics[str(data["dataset"])] = {"task": data["task"], **summary}
        else:
            metrics.update(data)
    return metrics


def _read_json_object(path: Path, flag: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ExportError(f"{flag} {path}: {error}") from error
    if not isinstance(data, dict):
        raise ExportError(f"{flag} {path}: expected a JSON object")
    return data


def _check_target(out: Path) -> None:
    """Replace a previous bundle or an empty directory; never anything else."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ExportError(f"--out {out} exists and is not a directory")
    if any(out.iterdir()) and not (out / B.MANIFEST).is_file():
        raise ExportError(f"--out {out} is a non-empty directory that is not a countclip bundle; refusing to replace it")


def _install(tmp: Path, out: Path) -> None:
    """Swap the finished bundle into place with renames (same filesystem: tmp is beside out)."""
    if not out.exists():
        tmp.rename(out)
        return
    _check_target(out)
    old = out.with_name(f".{out.name}.old-{int(time.time() * 1000)}")
    out.rename(old)
    try:
        tmp.rename(out)
    except BaseException:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def export_bundle(adapter: Any, out: str | Path, *, name: str | None = None, metrics: dict[str, Any] | None = None,
                  training: dict[str, Any] | None = None, command: str = "", exporter: str = "torchscript",
                  quantize: str = "none", search: dict[str, Any] | None = None, log: Any = print) -> dict[str, Any]:
    """Export `adapter` to a verified bundle at `out`; returns the manifest.

    `search` is recorded as the manifest's `search` section: how the service ranks with this
    model (e.g. {"hubness": {"bank": "coco-80", "beta": 0.4, "top_k": 10}}, server/services/hubness.ts).
    """
    if exporter not in EXPORTERS:
        raise ExportError(f"unknown exporter {exporter!r}; choose from {', '.join(EXPORTERS)}")
    if quantize not in Q.CHOICES:
        raise ExportError(f"unknown --quantize {quantize!r}; choose from {', '.join(Q.CHOICES)}")
    out = Path(out).absolute()
    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    adapter = adapter.float().cpu().eval()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        tmp.chmod(0o777 & ~B._umask())  # mkdtemp's 0700 would hide the bundle from a service user
        manifest = _build(adapter, tmp, name=name, metrics=metrics or {}, training=training or {},
                          command=command, exporter=exporter, quantize=quantize, search=search or {}, log=log)
        _install(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _build(adapter: Any, tmp: Path, *, name: str | None, metrics: dict[str, Any], training: dict[str, Any],
           command: str, exporter: str, quantize: str, search: dict[str, Any], log: Any) -> dict[str, Any]:
    started = time.time()
    export_text(adapter, tmp / B.TEXT_ONNX, exporter)
    export_vision(adapter, tmp / B.VISION_ONNX, exporter)
    write_tokenizer(adapter, tmp)
    write_preprocess(adapter, tmp)
    log(f"exported ONNX ({exporter}) in {time.time() - started:.1f}s; checking onnxruntime against PyTorch")
    text_cos, vision_cos = verify_text(adapter, tmp), verify_vision(adapter, tmp)
    log(f"worst cosine: text {text_cos:.6f}, vision {vision_cos:.6f} (required >= {MIN_COSINE})")
    precision: dict[str, Any] = {"precision": {"text": "fp32", "vision": "fp32"}}
    if Q.CHOICES[quantize]:
        precision = Q.quantize_bundle(tmp, Q.CHOICES[quantize], _parity_text(tmp), _parity_images(adapter), log=log)
    manifest = {
        "model_name": name or adapter.name,
        "base_model": adapter.base_model,
        "embed_dim": int(adapter.embed_dim),
        "logit_scale": float(adapter.logit_scale.detach().float().exp()),
        "context_length": int(adapter.context_length),
        "image_size": int(adapter.preprocess_config.crop_size),
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "training": training,
        "metrics": metrics,
        "command": command,
        "export": {"exporter": exporter, "opset": OPSET if exporter == "torchscript" else None,
                   "torch": torch.__version__, "min_cosine": {"text": text_cos, "vision": vision_cos}},
        **precision,
        **({"search": search} if search else {}),
    }
    B.write_manifest(tmp, manifest)
    return B.verify_bundle(tmp)


def _parity_text(bundle_dir: Path) -> Any:
    """Embeds the parity prompts with one text ONNX file, fed by the bundle tokenizer as the service feeds it."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(bundle_dir / B.TOKENIZER))

    def embed(onnx_path: Path, prompts: list[str]) -> np.ndarray:
        session = _session(onnx_path)
        return np.concatenate([session.run([B.TEXT_OUTPUT], _service_feed(tokenizer, prompts[i:i + 64], None))[0]
                               for i in range(0, len(prompts), 64)])

    return embed


def _parity_images(adapter: Any) -> Any:
    """Embeds the parity gallery with one vision ONNX file (preprocessed once, as the model does)."""
    pixels = torch.stack([adapter.preprocess(image) for image in Q.parity_images()]).numpy()

    def embed(onnx_path: Path) -> np.ndarray:
        session = _session(onnx_path)
        return np.concatenate([session.run([B.VISION_OUTPUT], {B.VISION_INPUT: pixels[i:i + 32]})[0]
                               for i in range(0, len(pixels), 32)])

    return embed


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="countclip export", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="model spec: local dir, hub id, random:ARCH, open_clip:ARCH/TAG")
    parser.add_argument("--out", required=True, type=Path, help="bundle directory (replaced atomically)")
    parser.add_argument("--metrics", type=Path, action="append", default=[],
                        help="evaluation result JSON (from `countclip eval`) or a JSON object of metrics; repeatable")
    parser.add_argument("--training-summary", type=Path, help="JSON object describing the training run")
    parser.add_argument("--name", help="model name recorded in the manifest (default: the model's own)")
    parser.add_argument("--exporter", choices=EXPORTERS, default="torchscript",
                        help="ONNX exporter (default: torchscript, fast and dynamic-axes-safe on transformers 5)")
    parser.add_argument("--quantize", choices=tuple(Q.CHOICES), default="none",
                        help="also write int8 towers (text, or all: text and vision), kept and made the default only "
                             "when they pass the parity checks (countclip/bundle/quantize.py); fp32 stays in the bundle")
    parser.add_argument("--hubness-beta", type=_hubness_beta, default=None,
                        help="record a hubness correction of count-aware ranking in the manifest (search.hubness): "
                             "the service ranks by cos - BETA * h(v), h(v) the image's mean top-k cosine to the "
                             "80 COCO object prompts; tune it with scripts/benchmarks/sweep_hub_correction.ts")
    parser.add_argument("--hubness-top-k", type=int, choices=range(1, 81), default=10, metavar="1..80",
                        help="cosines h(v) averages (default 10)")
    return parser


def _hubness_beta(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 10:
        raise argparse.ArgumentTypeError(f"{text} is not in [0, 10]")
    return value


def _search_settings(args: argparse.Namespace) -> dict[str, Any]:
    if args.hubness_beta is None:
        return {}
    return {"hubness": {"bank": "coco-80", "beta": args.hubness_beta, "top_k": args.hubness_top_k}}


def _load(spec: str) -> Any:
    from countclip.model.factory import load_model

    try:
        return load_model(spec)
    except (OSError, ValueError, ImportError) as error:  # missing dir, offline hub, unknown arch, no open_clip
        raise ExportError(f"cannot load model {spec!r}: {type(error).__name__}: {error}") from error


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        metrics = _metrics_from_files(args.metrics)
        training = _read_json_object(args.training_summary, "--training-summary") if args.training_summary else {}
        _check_target(args.out.absolute())  # fail before spending time loading the model
        adapter = _load(args.model)
        manifest = export_bundle(adapter, args.out, name=args.name, metrics=metrics, training=training,
                                 command=shlex.join(["countclip", "export", *argv]), exporter=args.exporter,
                                 quantize=args.quantize, search=_search_settings(args))
    except (ExportError, B.BundleError) as error:
        print(f"countclip export: error: {error}", file=sys.stderr)
        return 1
    total = sum(entry["bytes"] for entry in manifest["files"].values())
    print(f"wrote {args.out} ({manifest['model_name']}, embed_dim {manifest['embed_dim']}, {total / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
