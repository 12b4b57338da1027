"""The trainer's one configuration: a dataclass whose fields are the CLI flags.

Every field carries its help text; `build_parser` turns fields into `--flag-name` options,
so `countclip train --help` documents every setting and nothing is read from anywhere else.
The resolved config is saved to `<output-dir>/config.json` and into every checkpoint.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

COUNTERFACTUAL_MODES = ("count-loss", "clip-negatives")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def option(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class TrainConfig:
    # --- model and data
    model: str = option("openai/clip-vit-base-patch32",
                        "model to start from: hub id, local directory (e.g. a previous run's final/), "
                        "random:ARCH (tiny, small, vit-b-32, vit-l-14; convolutional: tiny-conv, small-conv) or open_clip:ARCH/PRETRAINED")
    train_data: str = option("", "general image-text data (L_clip only): shards like "
                             "'dir/shard-{00000..00099}.tar', a directory of .tar, 'a.tar::b.tar', or a .csv/.parquet table")
    counting_data: str = option("", "counting data (captions with a count 2..10), same forms as --train-data")
    image_root: str = option("", "directory that table image paths/keys are relative to (default: the table's directory)")
    counting_ratio: float = option(0.5, "fraction of every batch drawn from --counting-data")
    eval_data: str = option("", "held-out counting data (same forms as --train-data): logs count_eval_acc, "
                            "how often the true caption beats a counterfactual (chance 0.5)")
    eval_every: int = option(0, "evaluate on --eval-data every N steps; 0 = only at the end")
    eval_samples: int = option(512, "use the first N usable samples of --eval-data")
    # --- objective
    count_loss_weight: float = option(1.0, "lambda, the weight of L_count; 0 disables L_count")
    counterfactual_mode: str = option("count-loss", "count-loss: L_count on (true, counterfactual) pairs; "
                                      "clip-negatives: counterfactuals become extra L_clip negatives instead "
                                      "(NegCLIP-style ablation)", COUNTERFACTUAL_MODES)
    gather_with_grad: bool = option(True, "under DDP, let gradients flow through the gathered features (open_clip's default)")
    # --- schedule
    steps: int = option(0, "optimizer steps to run; 0 derives them from --epochs")
    epochs: float = option(1.0, "passes over --train-data (or --counting-data when it is the only data); used when --steps is 0")
    batch_size: int = option(32, "samples per device per step (global batch = this x world size)")
    lr: float = option(1e-5, "peak learning rate")
    warmup: int = option(100, "linear warm-up steps before the cosine decay")
    min_lr_ratio: float = option(0.0, "the cosine decays to lr x this")
    weight_decay: float = option(0.2, "AdamW weight decay (never on gains, biases, logit_scale or embedding tables)")
    beta1: float = option(0.9, "AdamW beta1")
    beta2: float = option(0.98, "AdamW beta2")
    eps: float = option(1e-6, "AdamW epsilon")
    grad_clip: float = option(1.0, "clip the global gradient norm to this; 0 disables")
    ema_decay: float = option(0.0, "keep an exponential moving average of the weights with this decay (e.g. 0.999) "
                              "and save it as final/ (the end-of-run evaluation scores it too); 0 = off")
    # --- performance
    device: str = option("auto", "auto (this rank's GPU if any, else CPU), cpu, cuda, cuda:N")
    precision: str = option("auto", "auto = bf16 autocast on GPU, fp32 on CPU", PRECISIONS)
    grad_checkpointing: bool = option(False, "recompute activations in backward (much less memory, ~25%% slower)")
    compile: bool = option(False, "torch.compile the model (worth it on GPU for long runs)")
    workers: int = option(-1, "image-decoding processes per rank; -1 = auto (0 on CPU, up to 8 on GPU)")
    decode_cache_mb: int = option(0, "keep decoded samples in memory up to this many MB per rank, so later epochs "
                                  "skip decoding (worth it for small datasets seen many times); 0 = off")
    text_pad_multiple: int = option(8, "pad token sequences up to a multiple of this (after padding to the batch's longest)")
    threads: int = option(0, "torch CPU threads; 0 keeps torch's default")
    deterministic: bool = option(False, "deterministic algorithms (bit-exact resume on CPU; slower on GPU)")
    # --- output
    output_dir: str = option("runs/countclip", "run directory: config.json, checkpoints/, tensorboard/, train.log, final/")
    resume: str = option("", "'latest' (newest checkpoint in --output-dir) or a checkpoint directory")
    save_every: int = option(500, "save a checkpoint every N steps (and always at the end); 0 = only at the end")
    keep_checkpoints: int = option(2, "keep the newest N checkpoints")
    log_every: int = option(10, "log a console line and TensorBoard scalars every N steps")
    progress: bool = option(True, "show a progress bar on rank 0")
    seed: int = option(0, "seed for data order, counterfactuals and initialisation")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def validate(self) -> None:
        problems = []
        if not self.train_data and not self.counting_data:
            problems.append("give --train-data and/or --counting-data")
        if not 0.0 <= self.counting_ratio <= 1.0:
            problems.append("--counting-ratio must be in [0, 1]")
        if self.decode_cache_mb < 0:
            problems.append("--decode-cache-mb must be >= 0")
        if self.batch_size < 1:
            problems.append("--batch-size must be >= 1")
        if self.steps < 0 or (self.steps == 0 and self.epochs <= 0):
            problems.append("give --steps > 0 or --epochs > 0")
        if not 0.0 <= self.ema_decay < 1.0:
            problems.append("--ema-decay must be in [0, 1)")
        if self.count_loss_weight < 0:
            problems.append("--count-loss-weight must be >= 0")
        if problems:
            raise SystemExit("countclip train: " + "; ".join(problems))

    @property
    def uses_counterfactuals(self) -> bool:
        if not self.counting_data:
            return False
        return self.counterfactual_mode == "clip-negatives" or self.count_loss_weight > 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="countclip train",
        description="Fine-tune CLIP with L = L_clip + lambda * L_count (Paiss et al., ICCV 2023). "
                    "Multi-GPU: torchrun --nproc-per-node N -m countclip.cli train ...",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    for spec in fields(TrainConfig):
        flag = "--" + spec.name.replace("_", "-")
        default = spec.default if spec.default is not MISSING else None
        kwargs: dict[str, Any] = {"default": default, "help": spec.metadata["help"], "dest": spec.name}
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = type(default)
            if spec.metadata.get("choices"):
                kwargs["choices"] = spec.metadata["choices"]
        parser.add_argument(flag, **kwargs)
    return parser


def parse_config(argv: list[str]) -> TrainConfig:
    config = TrainConfig(**vars(build_parser().parse_args(argv)))
    config.validate()
    return config


def dump(config: TrainConfig) -> str:
    return json.dumps(config.to_json(), indent=2, sort_keys=True)
