"""Rank-0 reporting: progress bar, console lines, train.log, metrics.jsonl and TensorBoard."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


class Monitor:
    def __init__(self, output_dir: Path, total_steps: int, start_step: int, enabled: bool, progress: bool) -> None:
        self.enabled = enabled
        self.total = total_steps
        self.bar = None
        self.writer = None
        self._last_time = time.perf_counter()
        self._last_samples = 0
        if not enabled:
            return
        output_dir.mkdir(parents=True, exist_ok=True)
        self.log_file = open(output_dir / "train.log", "a", encoding="utf-8")
        self.metrics_file = open(output_dir / "metrics.jsonl", "a", encoding="utf-8")
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(output_dir / "tensorboard"), purge_step=start_step + 1)
        except ImportError:  # tensorboard is a declared dependency; a stripped install still trains
            self.info("tensorboard is not installed: no TensorBoard logs")
        if progress and sys.stderr.isatty():  # a bar in a log file is just noise
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, desc="train", unit="step",
                            dynamic_ncols=True, file=sys.stderr)

    def start(self, samples_seen: int) -> None:
        self._last_time, self._last_samples = time.perf_counter(), samples_seen

    def info(self, message: str) -> None:
        if not self.enabled:
            return
        stamped = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        if self.bar is not None:
            self.bar.write(stamped, file=sys.stdout)
        else:
            print(stamped, flush=True)
        self.log_file.write(stamped + "\n")
        self.log_file.flush()

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def log_step(self, step: int, samples_seen: int, metrics: dict[str, float]) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        rate = (samples_seen - self._last_samples) / max(now - self._last_time, 1e-9)
        self._last_time, self._last_samples = now, samples_seen
        record = {"step": step, "samples_seen": samples_seen, "samples_per_s": rate, **metrics}
        self.metrics_file.write(json.dumps(record) + "\n")
        self.metrics_file.flush()
        shown = " | ".join(f"{key} {_fmt(value)}" for key, value in metrics.items())
        self.info(f"step {step}/{self.total} | {rate:,.1f} samples/s | {shown}")
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{metrics.get('loss', float('nan')):.4f}", refresh=False)
        if self.writer is not None:
            for key, value in record.items():
                if key != "step":
                    self.writer.add_scalar(f"train/{key}", value, step)

    def log_eval(self, step: int, metrics: dict[str, float]) -> None:
        if not self.enabled or not metrics:
            return
        self.metrics_file.write(json.dumps({"step": step, **metrics}) + "\n")
        self.metrics_file.flush()
        self.info(f"eval step {step} | " + " | ".join(f"{k} {_fmt(float(v))}" for k, v in metrics.items()))
        if self.writer is not None:
            for key, value in metrics.items():
                self.writer.add_scalar(f"eval/{key}", value, step)

    def close(self, summary: dict[str, Any] | None = None) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            if summary:
                self.writer.add_text("summary", json.dumps(summary, indent=1))
            self.writer.close()
        self.log_file.close()
        self.metrics_file.close()


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.4f}"
