#!/usr/bin/env python
"""Training throughput: countclip's training step against a naive transformers CLIPModel loop, same run.

    # the issue's H100 suite (ViT-B/32 @ 1024 with/without L_count, ViT-L/14 @ 512, naive baselines)
    training/.venv/bin/python scripts/benchmarks/bench_train_gpu.py --suite h100 --out bench_train.jsonl
    # one configuration
    training/.venv/bin/python scripts/benchmarks/bench_train_gpu.py --arch vit-b-32 --batch-size 1024 --compile
    # CPU smoke check of the script itself
    training/.venv/bin/python scripts/benchmarks/bench_train_gpu.py --arch tiny --batch-size 8 --steps 3

What is timed: optimizer steps on device-resident synthetic batches (random init, uint8 images,
`--text-len`-token captions; `--counting-ratio` of the images get a counterfactual caption), so
the figures are the model's, not the data pipeline's. Warm-up steps (and compilation) are excluded.

  ours   countclip.train.step.train_step with the trainer's real context (build_context): one
         text forward for true + counterfactual captions, on-device pixel normalisation, bf16
         autocast, SDPA attention, fused AdamW, optional torch.compile / gradient checkpointing.
  naive  transformers' CLIPModel the plain way: model(..., return_loss=True) under bf16 autocast,
         a second get_text_features() call for the counterfactuals, torch.optim.AdamW defaults.

Reported per configuration: images/s, step time, model FLOPs utilisation (FLOPs counted by
torch.utils.flop_counter on the real step shapes, against --peak-tflops), peak memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))

from countclip.distributed import DistEnv  # noqa: E402
from countclip.model.factory import create_model  # noqa: E402
from countclip.model.hf_clip import ARCHITECTURES  # noqa: E402
from countclip.train.config import TrainConfig  # noqa: E402
from countclip.train.main import build_context  # noqa: E402
from countclip.train.step import ContrastiveModel, compute_losses, to_device, train_step  # noqa: E402

PEAK_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0, "L40S": 362.0}  # dense bf16 tensor-core peaks


@dataclass
class Case:
    name: str
    loop: str  # "ours" | "naive"
    arch: str
    batch_size: int
    count_loss: bool
    compile: bool = False
    grad_checkpointing: bool = False


SUITES = {
    "h100": [
        Case("naive B/32 +L_count", "naive", "vit-b-32", 1024, True),
        Case("naive B/32", "naive", "vit-b-32", 1024, False),
        Case("ours B/32 +L_count", "ours", "vit-b-32", 1024, True, compile=True),
        Case("ours B/32", "ours", "vit-b-32", 1024, False, compile=True),
        Case("naive L/14 +L_count", "naive", "vit-l-14", 128, True),
        Case("ours L/14 +L_count", "ours", "vit-l-14", 512, True, compile=True),
        Case("ours L/14 +L_count ckpt", "ours", "vit-l-14", 512, True, compile=True, grad_checkpointing=True),
    ],
}


def synthetic_batch(arch: str, batch: int, text_len: int, counting_ratio: float, count_loss: bool,
                    device: torch.device, seed: int = 0) -> dict[str, Any]:
    """What the loader yields: uint8 crops, B + C captions padded to one length, count_index."""
    shape = ARCHITECTURES[arch]
    generator = torch.Generator().manual_seed(seed)
    n_count = round(batch * counting_ratio) if count_loss else 0
    n_texts = batch + n_count
    ids = torch.randint(1, 49405, (n_texts, text_len), generator=generator)
    ids[:, 0] = 49406
    ids[:, -1] = 49407  # end of text: CLIP pools here
    pixels = torch.randint(0, 256, (batch, shape.image_size, shape.image_size, 3), dtype=torch.uint8,
                           generator=generator)
    return {"pixels": pixels.to(device), "input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device),
            "num_captions": batch, "count_index": torch.arange(n_count, device=device)}


def ours(case: Case, device: torch.device, precision: str) -> tuple[torch.nn.Module, Any, Any]:
    adapter = create_model(case.arch).to(device)
    if case.grad_checkpointing:
        adapter.set_gradient_checkpointing(True)
    config = TrainConfig(model=f"random:{case.arch}", train_data="synthetic", counting_data="synthetic",
                         count_loss_weight=1.0 if case.count_loss else 0.0, compile=case.compile,
                         precision=precision, lr=1e-5, warmup=10)
    ctx = build_context(adapter, config, DistEnv(0, 1, 0, device), total_steps=10_000)
    adapter.train()

    def step(batch):
        return train_step(ctx, to_device(batch, adapter, device))

    plain = dataclasses.replace(ctx, model=ContrastiveModel(adapter))  # FLOP counting: no compiled regions

    def losses(batch):
        return compute_losses(plain, to_device(batch, adapter, device))

    return adapter, step, losses


def naive(case: Case, device: torch.device, precision: str) -> tuple[torch.nn.Module, Any, Any]:
    adapter = create_model(case.arch).to(device)
    model = adapter.model
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2)
    dtype = torch.bfloat16 if precision == "bf16" else None
    mean = torch.tensor(adapter.preprocess_config.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(adapter.preprocess_config.std, device=device).view(1, 3, 1, 1)

    def losses(batch):
        pixel_values = (batch["pixels"].permute(0, 3, 1, 2).float() / 255.0 - mean) / std
        n = batch["num_captions"]
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            out = model(input_ids=batch["input_ids"][:n], attention_mask=batch["attention_mask"][:n],
                        pixel_values=pixel_values, return_loss=True)
            loss = out.loss
            if batch["count_index"].numel():
                cf = model.get_text_features(input_ids=batch["input_ids"][n:],
                                             attention_mask=batch["attention_mask"][n:])
                cf = cf if torch.is_tensor(cf) else cf.pooler_output
                image = out.image_embeds[batch["count_index"]]
                true = out.text_embeds[batch["count_index"]]
                cf = F.normalize(cf.float(), dim=-1)
                scale = model.logit_scale.exp()
                logits = torch.stack([scale * (image * true).sum(-1), scale * (image * cf).sum(-1)], 1)
                loss = loss + F.cross_entropy(logits.float(), torch.zeros_like(batch["count_index"]))
        return {"loss": loss}

    def step(batch):
        optimizer.zero_grad()
        loss = losses(batch)["loss"]
        loss.backward()
        optimizer.step()
        return {"loss": loss.detach()}

    return adapter, step, losses


def count_flops(losses_fn, batch: dict[str, Any], sample_batch: int, full_batch: int) -> float:
    """Forward + backward FLOPs of one step, counted on a small batch of the same shapes and scaled."""
    from torch.utils.flop_counter import FlopCounterMode

    small = {**batch, "pixels": batch["pixels"][:sample_batch], "num_captions": sample_batch}
    n_count = batch["count_index"].numel() * sample_batch // full_batch
    texts = batch["input_ids"]
    n = batch["num_captions"]
    small["input_ids"] = torch.cat([texts[:sample_batch], texts[n:n + n_count]])
    small["attention_mask"] = torch.ones_like(small["input_ids"])
    small["count_index"] = torch.arange(n_count, device=texts.device)
    counter = FlopCounterMode(display=False)
    with counter:
        result = losses_fn(small)
        sum(v for k, v in result.items() if k.endswith("loss")).backward()
    return counter.get_total_flops() * full_batch / sample_batch


def peak_tflops(device: torch.device, override: float | None) -> float | None:
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((value for key, value in PEAK_TFLOPS.items() if key in name), None)


def run_case(case: Case, args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    precision = "bf16" if device.type == "cuda" else "fp32"
    batch = synthetic_batch(case.arch, case.batch_size, args.text_len, args.counting_ratio, case.count_loss, device)
    build = ours if case.loop == "ours" else naive
    record: dict[str, Any] = {"name": case.name, "loop": case.loop, "arch": case.arch, "batch_size": case.batch_size,
                              "count_loss": case.count_loss, "compile": case.compile,
                              "grad_checkpointing": case.grad_checkpointing, "precision": precision,
                              "text_len": args.text_len, "device": describe(device)}
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    try:
        adapter, step, losses = build(case, device, precision)
        flops = count_flops(losses, batch, min(8, case.batch_size), case.batch_size)
        for _ in range(args.warmup_steps):
            step(batch)
        sync(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            metrics = step(batch)
        sync(device)
        seconds = (time.perf_counter() - start) / args.steps
    except torch.OutOfMemoryError:
        return {**record, "error": "out of memory"}
    peak = peak_tflops(device, args.peak_tflops)
    record.update(step_ms=seconds * 1e3, images_per_s=case.batch_size / seconds, tflop_per_step=flops / 1e12,
                  achieved_tflops=flops / seconds / 1e12, loss=float(metrics["loss"]),
                  mfu=(flops / seconds / 1e12 / peak) if peak else None,
                  peak_memory_gib=(torch.cuda.max_memory_allocated(device) / 2**30) if device.type == "cuda" else None)
    del adapter, step, losses
    return record


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def describe(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=sorted(SUITES), help="run a predefined list of configurations")
    parser.add_argument("--arch", default="vit-b-32", choices=sorted(ARCHITECTURES))
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--loops", default="naive,ours", help="comma-separated: naive, ours")
    parser.add_argument("--no-count-loss", action="store_true", help="measure without L_count (no counterfactuals)")
    parser.add_argument("--compile", action="store_true", help="torch.compile our step's model")
    parser.add_argument("--grad-checkpointing", action="store_true")
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup-steps", type=int, default=5, help="untimed steps first (compilation, autotuning)")
    parser.add_argument("--text-len", type=int, default=32)
    parser.add_argument("--counting-ratio", type=float, default=0.5, help="share of images with a counterfactual")
    parser.add_argument("--peak-tflops", type=float, default=None, help="device bf16 peak for MFU (default: by GPU name)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", help="append one JSON line per configuration here")
    args = parser.parse_args(argv)

    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    cases = SUITES[args.suite] if args.suite else [
        Case(f"{loop} {args.arch}", loop, args.arch, args.batch_size, not args.no_count_loss,
             compile=args.compile and loop == "ours", grad_checkpointing=args.grad_checkpointing)
        for loop in args.loops.split(",")]
    if device.type != "cuda":
        print("note: no GPU here; these are CPU smoke figures, not the H100 measurements", file=sys.stderr)
    results = []
    for case in cases:
        record = run_case(case, args, device)
        results.append(record)
        print(json.dumps(record), flush=True)
        if args.out:
            with open(args.out, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")
    print_table(results)
    return 0


def print_table(results: list[dict[str, Any]]) -> None:
    print(f"\n{'configuration':<28} {'batch':>6} {'images/s':>10} {'step ms':>9} {'MFU':>6} {'peak GiB':>9}")
    for r in results:
        if "error" in r:
            print(f"{r['name']:<28} {r['batch_size']:>6} {r['error']}")
            continue
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "-"
        mem = f"{r['peak_memory_gib']:.1f}" if r["peak_memory_gib"] is not None else "-"
        print(f"{r['name']:<28} {r['batch_size']:>6} {r['images_per_s']:>10,.1f} {r['step_ms']:>9.1f} {mfu:>6} {mem:>9}")


if __name__ == "__main__":
    sys.exit(main())
