"""Checkpoints are atomic and weights-only; kill -9 + `--resume latest` ends where an uninterrupted run ends."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from countclip.data.toy import write_toy_shards
from countclip.distributed import DistEnv
from countclip.model.factory import create_model
from countclip.train import checkpoint as ckpt
from countclip.train.config import TrainConfig
from countclip.train.main import train

torch.set_num_threads(1)
CPU = DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
STEPS = 12


def test_save_is_atomic_prunes_old_and_loads_weights_only(tmp_path):
    model = create_model("tiny")
    directory = tmp_path / "checkpoints"
    trainer = {"optimizer": {"state": {}, "param_groups": []}, "rng_torch": [torch.get_rng_state()]}
    for step in (1, 2, 3):
        ckpt.save_checkpoint(directory, model, trainer, {"step": step, "config": {"lr": 1.0}}, keep=2)
    (directory / ".step-00000004.tmp-999").mkdir()  # a save that was killed half-way
    assert sorted(p.name for p in directory.iterdir() if not p.name.startswith(".")) == \
        ["latest", "step-00000002", "step-00000003"]
    found = ckpt.find_checkpoint(tmp_path, "latest")
    assert found == directory / "step-00000003"
    weights, trainer_back, state = ckpt.load_checkpoint(found)
    assert state["step"] == 3 and state["config"] == {"lr": 1.0}
    assert torch.equal(trainer_back["rng_torch"][0], trainer["rng_torch"][0])
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    # the pointer is missing or stale: the newest complete checkpoint still wins
    (directory / "latest").write_text("step-00000099")
    assert ckpt.find_checkpoint(tmp_path, "latest") == directory / "step-00000003"
    ckpt.save_checkpoint(directory, model, trainer, {"step": 5}, keep=2)
    assert not list(directory.glob(".*tmp*"))


def test_pickled_objects_in_trainer_state_are_refused(tmp_path):
    directory = tmp_path / "step-00000001"
    directory.mkdir()
    (directory / "state.json").write_text("{}")
    torch.save({"evil": Path("/")}, directory / "trainer.pt")  # an arbitrary class: needs full unpickling
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(directory / "model.safetensors"))
    with pytest.raises(Exception, match="[Ww]eights only"):
        ckpt.load_checkpoint(directory)


def test_rng_state_round_trips():
    state = ckpt.rng_state()
    expected = (random.random(), torch.rand(1).item())
    ckpt.set_rng_state(state)
    assert (random.random(), torch.rand(1).item()) == expected


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    create_model("tiny").save(root / "tiny")
    return {"model": str(root / "tiny"),
            "general": write_toy_shards(root, "general", shards=2, per_shard=10, counts=(2, 3, 9), seed=4),
            "counting": write_toy_shards(root, "counting", shards=2, per_shard=7, counts=(2, 4, 6), seed=5)}


def flags(data, output: Path) -> list[str]:
    return ["--model", data["model"], "--train-data", data["general"], "--counting-data", data["counting"],
            "--counting-ratio", "0.5", "--steps", str(STEPS), "--batch-size", "6", "--lr", "1e-3", "--warmup", "3",
            "--output-dir", str(output), "--save-every", "1", "--keep-checkpoints", "2", "--log-every", "3",
            "--threads", "1", "--deterministic", "--no-progress", "--seed", "7"]


def config_for(data, output: Path, resume: str = "") -> TrainConfig:
    from countclip.train.config import parse_config

    return parse_config(flags(data, output) + (["--resume", resume] if resume else []))


def test_kill_9_then_resume_latest_matches_an_uninterrupted_run(data, tmp_path):
    kill_after = random.randint(2, 7)
    interrupted = tmp_path / "interrupted"
    command = [sys.executable, "-m", "countclip.cli", "train", *flags(data, interrupted)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    latest = interrupted / "checkpoints" / "latest"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if latest.is_file() and int(latest.read_text().split("-")[1]) >= kill_after:
            break
        time.sleep(0.02)
    assert process.poll() is None, f"the run ended before step {kill_after}: {process.stderr.read().decode()}"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stderr.close()
    killed_at = ckpt.find_checkpoint(interrupted, "latest")
    assert killed_at is not None and not (interrupted / "final").exists()

    train(config_for(data, interrupted, resume="latest"), CPU)
    train(config_for(data, tmp_path / "straight"), CPU)
    resumed = load_file(str(interrupted / "final" / "model.safetensors"))
    straight = load_file(str(tmp_path / "straight" / "final" / "model.safetensors"))
    assert resumed.keys() == straight.keys()
    different = [k for k in straight if not torch.equal(resumed[k], straight[k])]
    assert not different, f"killed after {killed_at.name}: {len(different)} tensors differ, e.g. {different[:3]}"
    log = (interrupted / "train.log").read_text()
    assert f"resuming from {killed_at}" in log


def test_weight_average_is_saved_as_final_and_resumes_exactly(data, tmp_path):
    import shutil

    from countclip.model.factory import load_model
    from countclip.train.config import parse_config

    def ema_config(output: Path, *extra: str) -> TrainConfig:
        return parse_config(flags(data, output) + ["--ema-decay", "0.9", "--save-every", str(STEPS // 2), *extra])

    straight = tmp_path / "straight"
    train(ema_config(straight), CPU)
    averaged = load_model(str(straight / "final")).state_dict()
    last = load_file(str(straight / "checkpoints" / f"step-{STEPS:08d}" / "model.safetensors"))  # live weights
    assert averaged.keys() == last.keys()
    assert any(not torch.equal(averaged[k], last[k]) for k in last), "final/ should hold the average"
    assert '"weights": "ema"' in (straight / "final" / "training.json").read_text()

    # Cut the run back to its half-way checkpoint and resume: the average continues exactly.
    cut = tmp_path / "cut"
    shutil.copytree(straight, cut)
    shutil.rmtree(cut / "final")
    shutil.rmtree(cut / "checkpoints" / f"step-{STEPS:08d}")
    (cut / "checkpoints" / "latest").write_text(f"step-{STEPS // 2:08d}")
    train(ema_config(cut, "--resume", "latest"), CPU)
    resumed = load_model(str(cut / "final")).state_dict()
    assert all(torch.equal(resumed[k], averaged[k]) for k in averaged)
