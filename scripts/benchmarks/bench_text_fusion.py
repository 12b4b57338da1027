"""ONNX Runtime's transformer fusions on the text tower, fp32 and int8, against the exported graph.

    PYTHONPATH=training training/.venv/bin/python scripts/benchmarks/bench_text_fusion.py \
        --model random:vit-b-32 --bundle BUNDLE_DIR [--first-int8-layer 4]

Exports the text tower with eager attention (the SDPA graph torch.onnx records matches none of
`onnxruntime.transformers`' attention patterns), fuses it with `optimize_model(model_type="clip")`
(Attention with the 4-D causal+padding mask as attention_bias, SkipLayerNormalization,
QuickGelu; the CLIP fusion's causal-mask check is relaxed for that), int8-quantises the fused
graph's MLP MatMuls as `countclip export --quantize text` does, and prints each graph's worst
cosine to the bundle's fp32 text.onnx on the parity prompts and its median latency at batch 1
and 8, 1 and 2 threads (onnxruntime, CPU, graph optimisation level all, as the service runs).
The model spec must be the bundle's (random:ARCH is seeded: the same weights).
"""

from __future__ import annotations

import argparse
import inspect
import tempfile
import time
from pathlib import Path

import numpy as np


def fuse(source: Path, target: Path, heads: int, hidden: int) -> dict[str, int]:
    import fusion_attention_clip as fac  # onnxruntime.transformers puts its own directory on sys.path
    import onnx_model_clip
    from onnxruntime.transformers.optimizer import optimize_model

    code = inspect.getsource(fac)
    strict = ('                    if causal_mask_nodes_1 is None and causal_mask_nodes_2 is None:\n'
              '                        logger.debug("fuse_attention: failed to match causal mask subgraph")\n'
              '                        return')
    if strict not in code:
        raise SystemExit("this onnxruntime's fusion_attention_clip.py differs from the one this script patches")
    code = code.replace(strict, '                    if causal_mask_nodes_1 is None and causal_mask_nodes_2 is None:\n'
                                '                        add_qk = add_mask.input[1]  # the 4-D mask, as attention_bias')
    exec(compile(code, fac.__file__, "exec"), fac.__dict__)
    onnx_model_clip.FusionAttentionClip = fac.FusionAttentionClip
    model = optimize_model(str(source), model_type="clip", num_heads=heads, hidden_size=hidden, opt_level=0, use_gpu=False)
    model.save_model_to_file(str(target))
    return model.get_fused_operator_statistics()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--bundle", required=True, type=Path)
    parser.add_argument("--first-int8-layer", type=int, default=4)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="text-fusion-") as tmp:
        run(args, Path(tmp))


def run(args: argparse.Namespace, work: Path) -> None:
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from tokenizers import Tokenizer

    from countclip.bundle import quantize as Q
    from countclip.bundle.export import _load, export_text

    adapter = _load(args.model)
    config = adapter.model.text_model.config
    adapter.model.config._attn_implementation = config._attn_implementation = "eager"
    export_text(adapter, work / "eager.onnx", "torchscript")
    print("fused:", fuse(work / "eager.onnx", work / "fused.onnx", config.num_attention_heads, config.hidden_size))
    mlp = Q.mlp_matmuls(work / "fused.onnx")
    quantize_dynamic(str(work / "fused.onnx"), str(work / "fused.int8.onnx"), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"], extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
                     nodes_to_quantize=[n for layer in mlp if layer >= args.first_int8_layer for n in mlp[layer]])

    tokenizer = Tokenizer.from_file(str(args.bundle / "tokenizer.json"))

    def feed(prompts: list[str]) -> dict[str, np.ndarray]:
        enc = tokenizer.encode_batch(prompts)
        width = max(len(e.ids) for e in enc)
        return {"input_ids": np.array([e.ids + [0] * (width - len(e.ids)) for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask + [0] * (width - len(e.ids)) for e in enc], dtype=np.int64)}

    prompts = Q.parity_prompts()
    reference = None
    files = [args.bundle / "text.onnx", work / "fused.onnx", args.bundle / "text.int8.onnx", work / "fused.int8.onnx"]
    print("| graph | threads | worst cosine | batch 1 ms | batch 8 ms |\n|---|---|---|---|---|")
    for path in files:
        if not path.exists():
            continue
        for threads in (1, 2):
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            out = np.concatenate([session.run(None, feed(prompts[i:i + 64]))[0] for i in range(0, len(prompts), 64)])
            reference = out if reference is None else reference
            times = []
            for batch, runs in ((1, 40), (8, 15)):
                sample = feed(["a photo of three cats on a sofa"] * batch)
                for _ in range(5):
                    session.run(None, sample)
                took = []
                for _ in range(runs):
                    started = time.perf_counter()
                    session.run(None, sample)
                    took.append(time.perf_counter() - started)
                times.append(float(np.median(took)) * 1e3)
            print(f"| {path.name} | {threads} | {Q.cosines(out, reference).min():.6f} | {times[0]:.2f} | {times[1]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
