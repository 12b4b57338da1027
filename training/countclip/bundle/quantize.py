"""Int8 dynamic quantisation of a bundle's towers, kept only when it searches like fp32.

`countclip export --quantize text` (or `all`, text and vision) writes `text.int8.onnx`
(`vision.int8.onnx`) beside the fp32 files with onnxruntime's dynamic quantisation (int8
weights, activations quantised per batch at run time: no calibration data needed), then checks
it against fp32 on a fixed parity set:

- cosine of every prompt's (image's) int8 embedding to its fp32 one >= `MIN_COSINE`;
- recall@10 of searching a gallery of generated pictures with the int8 pipeline against the
  fp32 one >= `MIN_RECALL` (ranking is what the service sells: a small cosine error can still
  swap near-tied neighbours, so both are checked).

A tower that passes both becomes the bundle's default precision (`manifest.precision`). One whose
cosines pass but whose ranking does not is kept, not chosen: a random-init model ranks its own
gallery by differences of 1e-4 (near-ties any rounding reorders), while a trained one does not, and
an operator may still choose it (`TEXT_PRECISION=int8`) knowing the recorded figures. One whose
cosines fail is numerically broken and dropped. The fp32 files always stay: the service picks per
manifest, or per `TEXT_PRECISION` / `VISION_PRECISION`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, TypedDict

import numpy as np

from countclip.bundle import manifest as B

MIN_COSINE = 0.99
MIN_RECALL = 0.98
RECALL_K = 10
GALLERY_SIZE = 256
INT8_FILES = {"text": "text.int8.onnx", "vision": "vision.int8.onnx"}
FP32_FILES = {"text": B.TEXT_ONNX, "vision": B.VISION_ONNX}
CHOICES = {"none": (), "text": ("text",), "all": ("text", "vision")}

# (singular, plural): the count prompts the service embeds for count-aware search.
PARITY_NOUNS = (("cat", "cats"), ("dog", "dogs"), ("apple", "apples"), ("balloon", "balloons"), ("car", "cars"),
                ("bird", "birds"), ("person", "people"), ("child", "children"), ("sheep", "sheep"),
                ("bottle", "bottles"), ("chair", "chairs"), ("flower", "flowers"), ("book", "books"),
                ("cup", "cups"), ("horse", "horses"), ("star", "stars"), ("coin", "coins"), ("egg", "eggs"),
                ("leaf", "leaves"), ("box", "boxes"))
NUMBER_WORDS = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
PARITY_QUERIES = ("cats", "a photo of balloons", "dogs on a sofa", "red apples", "cars on a street",
                  "birds on a wire", "a bowl of fruit", "children playing in a park", "an empty room",
                  "a close-up of a flower")


class TowerParity(TypedDict):
    """One tower's int8 parity figures, as recorded in the manifest."""

    file: str
    #: both checks passed: this tower's default precision is int8
    passed: bool
    #: the int8 file is in the bundle (its cosines passed)
    shipped: bool
    min_cosine: float
    mean_cosine: float
    recall_at_10: float


def parity_prompts() -> list[str]:
    """The fixed prompt set: every count prompt of PARITY_NOUNS plus plain queries."""
    counted = [f"a photo of {word} {singular if n == 0 else plural}"
               for singular, plural in PARITY_NOUNS for n, word in enumerate(NUMBER_WORDS)]
    return counted + list(PARITY_QUERIES)


def parity_images(count: int = GALLERY_SIZE, seed: int = 0) -> list[Any]:
    """A gallery of generated pictures: 1-10 shapes of several colours on varied backgrounds."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    images = []
    for index in range(count):
        width, height = int(rng.integers(96, 320)), int(rng.integers(96, 320))
        background = tuple(int(c) for c in rng.integers(0, 256, size=3))
        image = Image.new("RGB", (width, height), background)
        draw = ImageDraw.Draw(image)
        for _ in range(index % 10 + 1):
            x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
            r = int(rng.integers(4, max(5, min(width, height) // 5)))
            fill = tuple(int(c) for c in rng.integers(0, 256, size=3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x - r, y - r, x + r, y + r), fill=fill)
        images.append(image)
    return images


def quantize_file(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation (QInt8 weights: VNNI-friendly on x86, and what ORT recommends for CPUs)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)


def cosines(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    actual = actual / np.linalg.norm(actual, axis=-1, keepdims=True)
    expected = expected / np.linalg.norm(expected, axis=-1, keepdims=True)
    return (actual * expected).sum(-1)


def recall_at_k(queries: np.ndarray, gallery: np.ndarray, reference_queries: np.ndarray,
                reference_gallery: np.ndarray, k: int = RECALL_K) -> float:
    """Mean overlap of each query's top-k (cosine) with its reference top-k, over queries."""
    def top(q: np.ndarray, g: np.ndarray) -> np.ndarray:
        return np.argsort(-(q @ g.T), axis=1, kind="stable")[:, :k]

    got, want = top(queries, gallery), top(reference_queries, reference_gallery)
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(got, want)]))


def tower_parity(file: str, got: np.ndarray, want: np.ndarray, recall: float) -> TowerParity:
    cos = cosines(got, want)
    worst = float(cos.min())
    shipped = bool(np.isfinite(worst) and worst >= MIN_COSINE)
    return TowerParity(file=file, passed=shipped and recall >= MIN_RECALL, shipped=shipped, min_cosine=round(worst, 6),
                       mean_cosine=round(float(cos.mean()), 6), recall_at_10=round(recall, 4))


class Embeddings(TypedDict):
    """fp32 and int8 embeddings of the parity set (int8 equals fp32 for a tower left fp32)."""

    text_fp32: np.ndarray
    text_int8: np.ndarray
    image_fp32: np.ndarray
    image_int8: np.ndarray


def quantize_bundle(bundle_dir: Path, towers: tuple[str, ...], embed_text: Callable[[Path, list[str]], np.ndarray],
                    embed_images: Callable[[Path], np.ndarray], log: Any = print) -> dict[str, Any]:
    """Quantise `towers` in `bundle_dir`, check parity, drop what fails.

    `embed_text(onnx_path, prompts)` and `embed_images(onnx_path)` run one ONNX file over the
    parity prompts and gallery (fed as the service feeds them). Returns the manifest's
    `precision` and `quantization` entries. The recall of a tower is measured with the other
    towers at their chosen precision (text first, then vision with text as chosen).
    """
    import onnxruntime

    prompts = parity_prompts()
    text = embed_text(bundle_dir / B.TEXT_ONNX, prompts)
    images = embed_images(bundle_dir / B.VISION_ONNX)
    emb = Embeddings(text_fp32=text, text_int8=text, image_fp32=images, image_int8=images)
    precision = {"text": "fp32", "vision": "fp32"}
    report: dict[str, Any] = {
        "method": "onnxruntime.quantization.quantize_dynamic (int8 weights, per-tensor; activations quantised at run time)",
        "onnxruntime": onnxruntime.__version__,
        "thresholds": {"min_cosine": MIN_COSINE, "min_recall_at_10": MIN_RECALL},
        "parity_set": {"prompts": len(prompts), "gallery_images": int(images.shape[0])},
    }
    for tower in towers:  # text first: vision's recall is measured with text's chosen precision
        target = bundle_dir / INT8_FILES[tower]
        quantize_file(bundle_dir / FP32_FILES[tower], target)
        quantized = embed_text(target, prompts) if tower == "text" else embed_images(target)
        reference = emb["text_fp32"] if tower == "text" else emb["image_fp32"]
        # The whole int8 pipeline so far, with this tower's new embeddings, against all-fp32.
        queries = quantized if tower == "text" else emb["text_int8"]
        gallery = quantized if tower == "vision" else emb["image_int8"]
        recall = recall_at_k(queries, gallery, emb["text_fp32"], emb["image_fp32"])
        result = tower_parity(target.name, quantized, reference, recall)
        report[tower] = result
        verdict = "int8" if result["passed"] else "fp32 (int8 kept, not chosen)" if result["shipped"] else "fp32 (int8 dropped)"
        log(f"int8 {tower}: worst cosine {result['min_cosine']:.4f}, mean {result['mean_cosine']:.4f}, "
            f"recall@{RECALL_K} {result['recall_at_10']:.3f} -> {verdict}")
        if result["passed"]:
            precision[tower] = "int8"
            if tower == "text":
                emb["text_int8"] = quantized
            else:
                emb["image_int8"] = quantized
        elif not result["shipped"]:
            target.unlink()
    return {"precision": precision, "quantization": report}
