"""End-to-end: `countclip train` on a tiny CLIP and drawn shapes with known counts."""

from __future__ import annotations

import json
import random

import pytest
import torch

from countclip.data.toy import toy_sample, write_toy_shards
from countclip.distributed import DistEnv
from countclip.model.factory import create_model, load_model
from countclip.train.config import TrainConfig, build_parser, parse_config
from countclip.train.evaluate import count_choice_accuracy
from countclip.train.main import main, train

torch.set_num_threads(1)
CPU = DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
COUNTS = (2, 3, 4, 5, 6)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    create_model("tiny").save(root / "tiny")
    return {"root": root, "model": str(root / "tiny"),
            "counting": write_toy_shards(root / "data", "counting", shards=2, per_shard=96, counts=COUNTS, seed=1),
            "general": write_toy_shards(root / "data", "general", shards=1, per_shard=32, counts=(2, 7), seed=2)}


def held_out(n=200):
    rng = random.Random(12345)
    samples = [toy_sample(rng.choice(COUNTS), rng) for _ in range(n)]
    return [image for image, _, _ in samples], [caption for _, caption, _ in samples]


def test_count_loss_falls_and_held_out_counting_beats_chance(world, tmp_path):
    images, captions = held_out()
    before = count_choice_accuracy(load_model(world["model"]), images, captions)["count_eval_acc"]
    eval_spec = write_toy_shards(tmp_path / "eval", "eval", shards=1, per_shard=150, counts=COUNTS, seed=99)
    config = TrainConfig(model=world["model"], train_data=world["general"], counting_data=world["counting"],
                         counting_ratio=0.75, count_loss_weight=1.0, steps=60, batch_size=16, lr=2e-3, warmup=5,
                         output_dir=str(tmp_path / "run"), log_every=10, save_every=0, progress=False, threads=1,
                         eval_data=eval_spec, eval_every=30)
    final = train(config, CPU)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["count_loss"] for r in records if "count_loss" in r]  # means over 10 steps each
    assert losses[-1] < 0.6 * losses[0], losses
    after = count_choice_accuracy(load_model(str(final)), images, captions)["count_eval_acc"]
    assert before < 0.65 and after > 0.8, (before, after)
    evals = [r for r in records if "count_eval_acc" in r]
    assert [r["step"] for r in evals] == [30, 60] and evals[-1]["count_eval_samples"] == 150
    training = json.loads((final / "training.json").read_text())
    assert training["steps"] == 60 and training["config"]["count_loss_weight"] == 1.0
    assert training["metrics"]["count_eval_acc"] == evals[-1]["count_eval_acc"] > 0.8
    assert (tmp_path / "run" / "config.json").is_file() and any((tmp_path / "run" / "tensorboard").iterdir())


def test_cli_pretrains_without_count_loss_and_writes_a_loadable_model(world, tmp_path, capsys):
    code = main(["--model", world["model"], "--train-data", world["general"], "--steps", "3", "--batch-size", "8",
                 "--lr", "1e-3", "--warmup", "1", "--output-dir", str(tmp_path / "run"), "--log-every", "1",
                 "--no-progress", "--threads", "1", "--seed", "3"])
    assert code == 0
    log = (tmp_path / "run" / "train.log").read_text()
    assert "L_count weight 0" in log and "count_loss" not in log and "samples/s" in log
    model = load_model(str(tmp_path / "run" / "final"))
    assert model.embed_dim == 32
    original = load_model(world["model"])
    changed = any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), original.state_dict().values()))
    assert changed


def test_every_flag_has_help_and_bad_flags_are_rejected():
    parser = build_parser()
    for action in parser._actions:
        if action.dest != "help":
            assert action.help and len(action.help) > 10, action.dest
    with pytest.raises(SystemExit):
        parse_config(["--steps", "5"])  # no data
    with pytest.raises(SystemExit):
        parse_config(["--train-data", "x.tar", "--counting-ratio", "1.5"])


def test_clip_negatives_ablation_trains_without_count_loss(world, tmp_path):
    config = TrainConfig(model=world["model"], train_data=world["general"], counting_data=world["counting"],
                         counterfactual_mode="clip-negatives", steps=2, batch_size=8, lr=1e-3, warmup=1,
                         output_dir=str(tmp_path / "run"), log_every=1, save_every=0, progress=False, threads=1)
    train(config, CPU)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all("count_loss" not in r and r["loss"] == r["clip_loss"] for r in records)
    assert records[-1]["skipped"] == 0


def test_missing_shards_fail_fast_with_a_clear_message(tmp_path, capsys):
    code = main(["--model", "random:tiny", "--train-data", str(tmp_path / "shard-{0..3}.tar"), "--steps", "1"])
    assert code == 2
    assert "4 shard(s)" in capsys.readouterr().err
