"""Int8 dynamic quantisation of a bundle's towers, kept only when it searches like fp32.

`countclip export --quantize text` (or `all`, text and vision) writes `text.int8.onnx`
(`vision.int8.onnx`) beside the fp32 files with onnxruntime's dynamic quantisation (int8
weights, activations quantised per batch at run time: no calibration data needed), then checks
it against fp32 on a fixed parity set:

- cosine of every prompt's (image's) int8 embedding to its fp32 one >= `MIN_COSINE`;
- recall@10 of searching a gallery of generated pictures with the int8 pipeline against the
  fp32 one >= `MIN_RECALL` (ranking is what the service sells: a small cosine error can still
  swap near-tied neighbours, so both are checked);
- text only: the same recall on a dense index (`DENSE_SIZE` clustered unit vectors, the
  distribution of scripts/bench-index.ts; mean over `DENSE_SEEDS` of them), whose neighbours are
  near-tied as in a large real index: with isotropic error it needs a query cosine of about
  0.99995 (0.9999 gives 0.97).

The recipe (measured on ViT-B/32-size and trained bundles, docs in `quantize_file`): int8 only
the MLP MatMuls (fc1/fc2) of the transformer layers, weights per output channel. They hold 2/3
of the MatMul weights (batch-1 latency is their bytes), while the attention MatMuls, the final
projection and the token-embedding table (a 10-row lookup: no speed to gain) cost far more
accuracy than their share. Error made early is carried through every later layer, so when the
whole MLP set fails the checks, the first layers are left fp32 (`first_layer`, binary search up
to half the layers; fewer than that in int8 is not worth a second file).

A tower that passes every check becomes the bundle's default precision (`manifest.precision`).
One whose cosines pass but whose ranking does not is kept (its fastest attempt), not chosen:
a random-init model ranks by differences of 1e-4 (near-ties any rounding reorders), while a
trained one ranks by more, and an operator may still choose it (`TEXT_PRECISION=int8`) knowing
the recorded figures. One whose cosines fail is numerically broken and dropped. The fp32 files
always stay: the service picks per manifest, or per `TEXT_PRECISION` / `VISION_PRECISION`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, TypedDict

import numpy as np

from countclip.bundle import manifest as B

MIN_COSINE = 0.99
MIN_RECALL = 0.98
RECALL_K = 10
GALLERY_SIZE = 256
# The dense index: as scripts/bench-index.ts's default (100k items around 1000 concepts, spread 0.6).
DENSE_SIZE = 100_000
DENSE_CLUSTERS = 1000
DENSE_SPREAD = 0.6
# Indexes averaged: one realisation's recall varies by +-0.01 (random-init prompts all hit the same few concepts).
DENSE_SEEDS = 4
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


class Attempt(TypedDict):
    """The parity figures of one int8 file (one recipe) of a tower."""

    #: transformer layers whose MLP MatMuls are int8 ("3-11"), or "all" for ORT's default over a conv tower
    int8_layers: str
    #: every check passed: this tower's default precision is int8
    passed: bool
    min_cosine: float
    mean_cosine: float
    recall_at_10: float
    #: text: recall@10 on the dense index; None for vision (its vectors are the index)
    dense_recall_at_10: float | None


class TowerParity(Attempt):
    """One tower's int8 parity figures, as recorded in the manifest: those of the file kept."""

    file: str
    #: the int8 file is in the bundle (its cosines passed): the passing attempt, else the fastest
    shipped: bool
    #: every recipe tried, in order
    attempts: list[Attempt]


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


# An MLP MatMul of a transformer layer, as torch.onnx names it in HF CLIP: ".../layers.3/mlp/fc1/MatMul".
MLP_MATMUL = re.compile(r"layers\.(\d+)/mlp/[^/]+/MatMul$")


def mlp_matmuls(model_path: Path) -> dict[int, list[str]]:
    """The MLP MatMul nodes with a constant weight, per transformer layer (empty for a conv tower)."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    weights = {init.name for init in model.graph.initializer}
    layers: dict[int, list[str]] = {}
    for node in model.graph.node:
        match = MLP_MATMUL.search(node.name)
        if node.op_type == "MatMul" and match and any(name in weights for name in node.input):
            layers.setdefault(int(match.group(1)), []).append(node.name)
    return layers


def quantize_file(source: Path, target: Path, nodes: list[str] | None = None) -> None:
    """Dynamic int8 quantisation: QInt8 weights (VNNI-friendly on x86, what ORT recommends for CPUs).

    With `nodes` (MLP MatMuls): only those, weights per output channel (DynamicQuantizeMatMul).
    On a random-init ViT-B/32 text tower, mean cosine error to fp32 (1 - cos) was 6.8e-4 for
    ORT's default (every MatMul and the embedding Gather, per-tensor), 2.4e-4 for the MLP only,
    1.4e-4 per channel, 6e-5 leaving layers 0-2 fp32; on the trained default bundle the Gather
    alone set the worst prompt's cosine to 0.991 (0.998 without it). Static QDQ with calibrated
    activations (1.4e-4 MLP-only) and MatMulNBits 8-bit (finer, but slower than fp32 at batch 16)
    lost. Without `nodes` (a conv tower): ORT's default over every supported op.

    ONNX Runtime's offline transformer fusions (`onnxruntime.transformers.optimizer`, model_type
    clip) were measured on this tower and are not applied: the service's sessions already run
    ORT's graph optimisations (level all: SkipLayerNormalization, QuickGelu, ...), the SDPA graph
    torch.onnx records matches no attention pattern, and an eager-attention export fused into 12
    Attention nodes (mask as attention_bias; cosine 1.000000 to fp32) was no faster at batch 1
    (fp32 8.2 ms, int8 5.0 vs 5.2 ms at 2 threads) and 7-30% slower at batch 8, where the
    batcher runs under load (scripts/benchmarks/bench_text_fusion.py, figures in README.md).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if nodes is None:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    else:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], nodes_to_quantize=nodes)


def dense_index(dim: int, size: int = DENSE_SIZE, clusters: int = DENSE_CLUSTERS, seed: int = 0) -> np.ndarray:
    """`size` unit vectors, item i near centre i % clusters (bench-index's clustered distribution)."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.standard_normal((clusters, dim), dtype=np.float32))
    out = np.empty((size, dim), dtype=np.float32)
    for start in range(0, size, 10_000):  # in chunks: the noise of a 100k x 768 index at once is 300 MB
        rows = np.arange(start, min(size, start + 10_000))
        noise = _unit(rng.standard_normal((len(rows), dim), dtype=np.float32))
        out[rows] = _unit(centres[rows % clusters] + DENSE_SPREAD * noise)
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def cosines(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    actual = actual / np.linalg.norm(actual, axis=-1, keepdims=True)
    expected = expected / np.linalg.norm(expected, axis=-1, keepdims=True)
    return (actual * expected).sum(-1)


def recall_at_k(queries: np.ndarray, gallery: np.ndarray, reference_queries: np.ndarray,
                reference_gallery: np.ndarray, k: int = RECALL_K) -> float:
    """Mean overlap of each query's top-k (cosine) with its reference top-k, over queries."""
    def top(q: np.ndarray, g: np.ndarray) -> np.ndarray:  # as a set: order within the top-k does not count
        scores = q @ g.T
        return np.argpartition(-scores, k - 1, axis=1)[:, :k] if scores.shape[1] > k else np.argsort(-scores, axis=1)

    got, want = top(queries, gallery), top(reference_queries, reference_gallery)
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(got, want)]))


def dense_recall_at_k(queries: np.ndarray, reference_queries: np.ndarray, k: int = RECALL_K) -> float:
    """recall_at_k on the dense index, averaged over DENSE_SEEDS realisations (built one at a time)."""
    dim = queries.shape[1]
    return float(np.mean([recall_at_k(queries, index, reference_queries, index, k)
                          for index in (dense_index(dim, seed=seed) for seed in range(DENSE_SEEDS))]))


def _layer_span(layers: list[int]) -> str:
    return f"{layers[0]}-{layers[-1]}" if layers else "all"


def _recipe(span: str) -> str:
    return "every supported op" if span == "all" else f"MLP of layers {span}"


def _passes(attempt: Attempt) -> bool:
    dense = attempt["dense_recall_at_10"]
    return (np.isfinite(attempt["min_cosine"]) and attempt["min_cosine"] >= MIN_COSINE and attempt["recall_at_10"] >= MIN_RECALL
            and (dense is None or dense >= MIN_RECALL))


def attempt_parity(int8_layers: str, got: np.ndarray, want: np.ndarray, recall: float, dense_recall: float | None) -> Attempt:
    cos = cosines(got, want)
    attempt = Attempt(int8_layers=int8_layers, passed=False, min_cosine=round(float(cos.min()), 6),
                      mean_cosine=round(float(cos.mean()), 6), recall_at_10=round(recall, 4),
                      dense_recall_at_10=None if dense_recall is None else round(dense_recall, 4))
    attempt["passed"] = bool(_passes(attempt))
    return attempt


def search_first_layer(layers: list[int], passes: Callable[[int], bool]) -> int | None:
    """The lowest first int8 layer that `passes`, trying all layers first, then a binary search.

    Only the later half may be left: fewer layers than that in int8 is not worth a second file.
    Assumes fewer int8 layers never rank worse (each layer's error reaches the output).
    """
    if passes(layers[0]):
        return layers[0]
    found, lo, hi = None, 1, len(layers) // 2
    while lo <= hi:
        mid = (lo + hi) // 2
        if passes(layers[mid]):
            found, hi = layers[mid], mid - 1
        else:
            lo = mid + 1
    return found


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
        "method": "onnxruntime.quantization.quantize_dynamic: int8 MLP MatMuls (fc1, fc2) of the transformer layers "
                  "int8_layers, weights per output channel, activations quantised at run time; attention, projection "
                  "and embeddings fp32 (a tower without them: every supported op, per-tensor)",
        "onnxruntime": onnxruntime.__version__,
        "thresholds": {"min_cosine": MIN_COSINE, "min_recall_at_10": MIN_RECALL},
        "parity_set": {"prompts": len(prompts), "gallery_images": int(images.shape[0]),
                       "dense_index": {"vectors": DENSE_SIZE, "clusters": DENSE_CLUSTERS, "spread": DENSE_SPREAD,
                                       "indexes": DENSE_SEEDS}},
    }
    for tower in towers:  # text first: vision's recall is measured with text's chosen precision
        source, target = bundle_dir / FP32_FILES[tower], bundle_dir / INT8_FILES[tower]
        mlp = mlp_matmuls(source)
        tried: dict[int | None, tuple[Attempt, np.ndarray, Path]] = {}

        def attempt(first: int | None) -> bool:
            int8 = sorted(layer for layer in mlp if first is not None and layer >= first)
            path = bundle_dir / f".{tower}.int8-from-{first}.onnx"
            quantize_file(source, path, None if first is None else [n for layer in int8 for n in mlp[layer]])
            quantized = embed_text(path, prompts) if tower == "text" else embed_images(path)
            # The whole int8 pipeline so far, with this tower's new embeddings, against all-fp32.
            queries = quantized if tower == "text" else emb["text_int8"]
            gallery = quantized if tower == "vision" else emb["image_int8"]
            recall = recall_at_k(queries, gallery, emb["text_fp32"], emb["image_fp32"])
            dense_recall = dense_recall_at_k(quantized, emb["text_fp32"]) if tower == "text" else None
            result = attempt_parity(_layer_span(int8), quantized, emb["text_fp32" if tower == "text" else "image_fp32"],
                                    recall, dense_recall)
            tried[first] = (result, quantized, path)
            log(f"int8 {tower} ({_recipe(result['int8_layers'])}): worst cosine {result['min_cosine']:.4f}, "
                f"mean {result['mean_cosine']:.5f}, recall@{RECALL_K} {result['recall_at_10']:.3f}"
                + ("" if dense_recall is None else f", dense index {dense_recall:.3f}") + (" (passes)" if result["passed"] else ""))
            return result["passed"]

        if mlp:
            chosen = search_first_layer(sorted(mlp), attempt)
        else:  # a conv tower: one recipe
            attempt(None)
            chosen = None
        passed = chosen in tried and tried[chosen][0]["passed"]
        kept_key = chosen if passed else next(iter(tried))  # else the fastest: an operator forcing int8 wants speed
        kept, quantized, path = tried[kept_key]
        shipped = bool(kept["min_cosine"] >= MIN_COSINE)
        for _, _, candidate in tried.values():
            if candidate != path or not shipped:
                candidate.unlink()
        if shipped:
            path.rename(target)
        result = TowerParity(**kept, file=target.name, shipped=shipped, attempts=[a for a, _, _ in tried.values()])
        report[tower] = result
        verdict = "int8" if passed else "fp32 (int8 kept, not chosen)" if shipped else "fp32 (int8 dropped)"
        log(f"int8 {tower}: {_recipe(result['int8_layers'])} -> {verdict}")
        if passed:
            precision[tower] = "int8"
            emb["text_int8" if tower == "text" else "image_int8"] = quantized
    return {"precision": precision, "quantization": report}
