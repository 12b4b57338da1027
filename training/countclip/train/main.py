"""`countclip train`: fine-tune CLIP with L = L_clip + lambda * L_count.

Usage (every flag: `countclip train --help`):

    # pre-train a small CLIP from scratch on general pairs (L_clip only)
    countclip train --model random:small --train-data 'world/general-{00000..00009}.tar' \\
        --steps 2000 --batch-size 64 --lr 5e-4 --output-dir runs/pretrain

    # fine-tune it with the counting loss (lambda = 1), half of each batch counting samples
    countclip train --model runs/pretrain/final --train-data 'world/general-{00000..00009}.tar' \\
        --counting-data 'world/counting-{00000..00003}.tar' --counting-ratio 0.5 \\
        --count-loss-weight 1.0 --steps 500 --output-dir runs/count

    # same without L_count (the control); or the NegCLIP-style ablation
    ... --count-loss-weight 0            ... --counterfactual-mode clip-negatives

    # watch counting on held-out data: true vs counterfactual caption accuracy every 100 steps
    ... --eval-data 'world/heldout-00000.tar' --eval-every 100

    # several GPUs; resume a run that was interrupted
    torchrun --nproc-per-node 8 -m countclip.cli train ... --resume latest

The run directory gets config.json, train.log, metrics.jsonl, tensorboard/, checkpoints/ and,
at the end, final/ (a model directory `countclip.model.factory.load_model` reads, with training.json).
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from countclip import distributed
from countclip.data import (DataSpecError, LoaderSpec, MixedLoader, count_samples, describe_skips, open_source,
                            split_batch)
from countclip.data.decode import USED_ANYWAY
from countclip.data.stream import EmptyStreamError
from countclip.distributed import DistEnv
from countclip.model.base import ClipAdapter
from countclip.model.factory import load_model
from countclip.train import checkpoint as ckpt
from countclip.train.config import TrainConfig, dump, parse_config
from countclip.train.ema import WeightAverage
from countclip.train.evaluate import count_choice_accuracy, load_eval_samples
from countclip.train.monitor import Monitor
from countclip.train.optim import build_optimizer, build_scheduler
from countclip.train.step import (ContrastiveModel, Objective, StepContext, autocast_context, resolve_precision,
                                  to_device, train_step)


def main(argv: list[str] | None = None) -> int:
    config = parse_config(list(argv or []))
    env = distributed.init_distributed(config.device)
    try:
        train(config, env)
    except (DataSpecError, FileNotFoundError, EmptyStreamError) as error:  # bad input: say so, no traceback
        print(f"countclip train: error: {error}", file=sys.stderr)
        return 2
    finally:
        distributed.shutdown()
    return 0


def train(config: TrainConfig, env: DistEnv) -> Path:
    """Run the whole training job; returns the final model directory."""
    configure_torch(config, env)
    output = Path(config.output_dir)
    resume_from = ckpt.find_checkpoint(output, config.resume) if config.resume else None

    general = open_source(config.train_data, config.image_root or None) if config.train_data else None
    counting = open_source(config.counting_data, config.image_root or None) if config.counting_data else None
    adapter = load_model(config.model).to(env.device)
    if config.grad_checkpointing:
        adapter.set_gradient_checkpointing(True)
    total_steps = config.steps or steps_for_epochs(config, general, counting, env.world_size)

    ctx = build_context(adapter, config, env, total_steps)
    ema = WeightAverage(adapter, config.ema_decay) if config.ema_decay else None
    step, samples_seen, data_state = 0, 0, None
    if resume_from is not None:
        step, samples_seen, data_state = restore(resume_from, ctx, env, config, ema)

    monitor = Monitor(output, total_steps, step, enabled=env.is_main, progress=config.progress)
    if env.is_main:
        output.mkdir(parents=True, exist_ok=True)
        (output / "config.json").write_text(dump(config))
        monitor.info(describe_start(config, env, adapter, total_steps, general, counting, resume_from, step))
    loader = build_loader(config, env, adapter, general, counting, step, data_state)
    global_batch = config.batch_size * env.world_size
    evaluate = Evaluator(config, adapter, env, ctx.precision)

    window = MetricWindow()
    monitor.start(samples_seen)
    adapter.train()
    batches = iter(loader)
    try:
        while step < total_steps:
            batch = next(batches)
            metrics = train_step(ctx, to_device(batch, adapter, env.device))
            if ema is not None:
                ema.update()
            step += 1
            samples_seen += global_batch
            data_state = batch["data_state"]
            window.add(metrics)
            monitor.advance()
            if step % config.log_every == 0 or step == total_steps:
                values = distributed.all_reduce_mean(window.mean(), env.device)
                values["lr"] = ctx.scheduler.get_last_lr()[0]
                values["skipped"] = float(sum(merged_skips(data_state, dropped_only=True).values()))
                monitor.log_step(step, samples_seen, values)
            if config.eval_every and step % config.eval_every == 0 and step != total_steps:
                monitor.log_eval(step, evaluate())
            if (config.save_every and step % config.save_every == 0) or step == total_steps:
                save(output, config, ctx, step, samples_seen, data_state, env, ema)
    finally:
        loader.close()

    # From here on the run's result is the averaged weights, when there is an average.
    with ema.swapped_in() if ema is not None else nullcontext():
        monitor.log_eval(step, evaluate())
        return finish(output, config, adapter, env, loader, monitor, evaluate, step, samples_seen, data_state)


def finish(output: Path, config: TrainConfig, adapter: ClipAdapter, env: DistEnv, loader: MixedLoader,
           monitor: Monitor, evaluate: "Evaluator", step: int, samples_seen: int,
           data_state: dict[str, Any] | None) -> Path:
    """Write final/ (the weights now in `adapter`) with its training summary, and close the run's logs."""
    skipped = merged_skips(data_state)
    final = output / "final"
    if env.is_main:
        summary = {"steps": step, "samples_seen": samples_seen, "skipped": skipped, "metrics": evaluate.last,
                   "weights": "ema" if config.ema_decay else "last", "config": config.to_json()}
        save_final_model(adapter, final, summary)
        monitor.info(f"done: {step} steps, {samples_seen} samples; {describe_skips(skipped)}")
        for problem in loader.problems():
            monitor.info(f"data problem: {problem}")
        monitor.info(f"final model: {final}")
        monitor.close(summary)
    distributed.barrier()
    return final


class Evaluator:
    """Count-choice accuracy on held-out data, on rank 0 while the other ranks wait."""

    def __init__(self, config: TrainConfig, adapter: ClipAdapter, env: DistEnv, precision: str) -> None:
        self.adapter, self.env, self.precision = adapter, env, precision
        self.samples = None
        self.last: dict[str, float] = {}
        if config.eval_data and env.is_main:
            self.samples = load_eval_samples(config.eval_data, adapter, config.eval_samples, config.image_root or None)

    def __call__(self) -> dict[str, float]:
        if self.samples is not None:
            with autocast_context(self.env.device, self.precision):
                self.last = count_choice_accuracy(self.adapter, *self.samples)
        distributed.barrier()
        return self.last


class MetricWindow:
    """Means of the step metrics since the last log line, summed on the device (no per-step sync)."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, metrics: dict[str, torch.Tensor]) -> None:
        for key, value in metrics.items():
            self.sums[key] = self.sums[key] + value if key in self.sums else value.clone()
        self.count += 1

    def mean(self) -> dict[str, float]:
        means = {key: float(value) / self.count for key, value in self.sums.items()}
        self.sums, self.count = {}, 0
        return means


def configure_torch(config: TrainConfig, env: DistEnv) -> None:
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    if config.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    if env.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(config.seed + env.rank)


def steps_for_epochs(config: TrainConfig, general, counting, world_size: int) -> int:
    """One epoch = one pass over --train-data (or over --counting-data when it is the only data)."""
    n_general, n_counting = split_batch(config.batch_size, config.counting_ratio, general is not None,
                                        counting is not None)
    source, per_rank = (general, n_general) if general is not None and n_general > 0 else (counting, n_counting)
    size = count_samples(source)
    return max(1, math.ceil(config.epochs * size / (per_rank * world_size)))


def build_context(adapter: ClipAdapter, config: TrainConfig, env: DistEnv, total_steps: int) -> StepContext:
    """Objective, optimizer, schedule, grad scaler and the (DDP/compiled) model around `adapter`."""
    count_weight = config.count_loss_weight if config.uses_counterfactuals else 0.0
    objective = Objective(count_weight, config.counterfactual_mode, config.gather_with_grad)
    optimizer = build_optimizer(adapter, config.lr, config.weight_decay, (config.beta1, config.beta2),
                                config.eps, env.device)
    scheduler = build_scheduler(optimizer, config.warmup, total_steps, config.min_lr_ratio)
    precision = resolve_precision(env.device, config.precision)
    scaler = torch.amp.GradScaler(env.device.type, enabled=precision == "fp16")
    model = wrap_model(adapter, config, env)
    return StepContext(model, adapter, objective, optimizer, scheduler, scaler, env.device, precision,
                       config.grad_clip)


def wrap_model(adapter: ClipAdapter, config: TrainConfig, env: DistEnv) -> torch.nn.Module:
    model: torch.nn.Module = ContrastiveModel(adapter)
    if env.is_distributed:
        device_ids = [env.device.index] if env.device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)
    if config.compile:
        model = torch.compile(model)
    return model


def build_loader(config: TrainConfig, env: DistEnv, adapter: ClipAdapter, general, counting, step: int,
                 data_state: dict[str, Any] | None) -> MixedLoader:
    workers = config.workers
    if workers < 0:
        per_rank_cpus = (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        workers = 0 if env.device.type == "cpu" else max(1, min(8, per_rank_cpus - 1))
    spec = LoaderSpec(batch_size=config.batch_size, counting_ratio=config.counting_ratio, seed=config.seed,
                      with_counterfactuals=config.uses_counterfactuals, pad_multiple=config.text_pad_multiple,
                      context_length=adapter.context_length, workers=workers, decode_cache_mb=config.decode_cache_mb,
                      pin_memory=env.device.type == "cuda")
    return MixedLoader(spec, adapter.preprocess_config, adapter.tokenize, general, counting,
                       env.rank, env.world_size, start_step=step, state=data_state)


def save(output: Path, config: TrainConfig, ctx: StepContext, step: int, samples_seen: int,
         data_state: dict[str, Any], env: DistEnv, ema: WeightAverage | None) -> None:
    """Every rank contributes its data position and RNG state; rank 0 writes; all wait for it."""
    rng = ckpt.rng_state()
    ranks = distributed.all_gather_object({"data": data_state, "python": rng["python"], "numpy": rng["numpy"],
                                           "torch": rng["torch"], "cuda": rng["cuda"]})
    if env.is_main:
        trainer = {"optimizer": ctx.optimizer.state_dict(), "scheduler": ctx.scheduler.state_dict(),
                   "scaler": ctx.scaler.state_dict(), "rng_torch": [r["torch"] for r in ranks],
                   "rng_cuda": [r["cuda"] for r in ranks]}
        if ema is not None:
            trainer["ema"] = ema.state_dict()
        state = {"step": step, "samples_seen": samples_seen, "world_size": env.world_size,
                 "data": [r["data"] for r in ranks],
                 "rng": [{"python": r["python"], "numpy": r["numpy"]} for r in ranks],
                 "config": config.to_json(), "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        ckpt.save_checkpoint(output / "checkpoints", ctx.adapter, trainer, state, config.keep_checkpoints)
    distributed.barrier()


def restore(path: Path, ctx: StepContext, env: DistEnv, config: TrainConfig,
            ema: WeightAverage | None) -> tuple[int, int, dict[str, Any]]:
    """Load weights, optimizer, schedule, scaler and RNG; return (step, samples seen, this rank's data state)."""
    weights, trainer, state = ckpt.load_checkpoint(path)
    warn_config_drift(TrainConfig.from_json(state["config"]), config, path)
    if state["world_size"] != env.world_size:
        raise SystemExit(f"checkpoint {path} was written by {state['world_size']} ranks, this run has "
                         f"{env.world_size}: data positions cannot be mapped; resume with the same world size")
    ctx.adapter.load_state_dict(weights)
    ctx.optimizer.load_state_dict(trainer["optimizer"])
    ctx.scheduler.load_state_dict(trainer["scheduler"])
    ctx.scaler.load_state_dict(trainer["scaler"])
    if ema is not None:
        if "ema" not in trainer:
            raise SystemExit(f"checkpoint {path} holds no weight average; resume without --ema-decay or start afresh")
        ema.load_state_dict(trainer["ema"])
    rng = dict(state["rng"][env.rank], torch=trainer["rng_torch"][env.rank], cuda=trainer["rng_cuda"][env.rank])
    ckpt.set_rng_state(rng)
    return int(state["step"]), int(state["samples_seen"]), state["data"][env.rank]


DATA_ORDER_FIELDS = ("train_data", "counting_data", "counting_ratio", "batch_size", "seed")


def warn_config_drift(saved: TrainConfig, current: TrainConfig, path: Path) -> None:
    """Resuming with different data settings is allowed, but then it is not the same run any more."""
    changed = [name for name in DATA_ORDER_FIELDS if getattr(saved, name) != getattr(current, name)]
    if changed and distributed.world()[0] == 0:
        warnings.warn(f"resuming {path} with changed {', '.join(changed)}: the data order will not match an "
                      f"uninterrupted run", stacklevel=2)


def save_final_model(adapter: ClipAdapter, final: Path, summary: dict[str, Any]) -> None:
    """`adapter.save` into a temporary directory, then swap it in: `final/` is always whole."""
    import json

    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    adapter.save(tmp)
    (tmp / "training.json").write_text(json.dumps(summary, indent=1))
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


def merged_skips(data_state: dict[str, Any] | None, dropped_only: bool = False) -> dict[str, int]:
    """Skip counts summed over ranks (optionally without the problems whose samples were still used)."""
    per_rank = distributed.all_gather_object((data_state or {}).get("skipped", {}))
    total: dict[str, int] = {}
    for counts in per_rank:
        for reason, count in counts.items():
            if not (dropped_only and reason in USED_ANYWAY):
                total[reason] = total.get(reason, 0) + count
    return total


def describe_start(config: TrainConfig, env: DistEnv, adapter: ClipAdapter, total_steps: int, general, counting,
                   resume_from: Path | None, step: int) -> str:
    n_general, n_counting = split_batch(config.batch_size, config.counting_ratio, general is not None,
                                        counting is not None)
    params = sum(p.numel() for p in adapter.parameters()) / 1e6
    where = f"resuming from {resume_from} at step {step}" if resume_from else "starting fresh"
    return (f"countclip train: {adapter.name} ({params:.1f}M params) on {env.world_size} x {env.device}, "
            f"{resolve_precision(env.device, config.precision)}; {total_steps} steps of "
            f"{config.batch_size * env.world_size} ({n_general} general + {n_counting} counting per rank); "
            f"L_count weight {config.count_loss_weight if config.uses_counterfactuals else 0} "
            f"({config.counterfactual_mode}); {where}")
