"""2-process gloo DDP, in one spawn (process start-up is the expensive part on a small CPU):

1. ClipLoss / CountLoss / the NegCLIP variant per rank against hand computations (test_losses.py's);
2. a training step: same losses and same weights after it as 1 process on the global batch;
3. the whole trainer under 2 ranks (rank-0 logging and saving, barriers, per-rank resume state).
"""

from __future__ import annotations

import json
import os
import random
import socket

import pytest

import numpy as np
import torch
import torch.multiprocessing as mp

from countclip import distributed
from countclip.data.toy import toy_sample, write_toy_shards
from countclip.distributed import DistEnv
from countclip.model.factory import create_model, load_model
from countclip.train.config import TrainConfig
from countclip.train.main import build_context, train
from countclip.losses import ClipLoss, CountLoss
from countclip.train.step import to_device, train_step
from test_losses import COUNTERFACTUALS, IMAGES, NEGATIVES, SCALE, TEXTS, hand_clip, hand_count

torch.set_num_threads(1)
GLOBAL_BATCH = 8
# Which samples are counting samples: 3 on rank 0's half, 1 on rank 1's (uneven on purpose).
COUNTING = {0: "nine", 2: "two", 3: "seven", 6: "four"}


def global_samples():
    rng = random.Random(3)
    samples = [toy_sample(rng.choice((2, 3, 5, 8)), rng, size=32) for _ in range(GLOBAL_BATCH)]
    return [np.asarray(image) for image, _, _ in samples], [caption for _, caption, _ in samples]


def make_batch(adapter, indices):
    """The named batch the loader would build for these samples, with fixed counterfactuals."""
    pixels, captions = global_samples()
    counting = [i for i in indices if i in COUNTING]
    counterfactuals = [f"a photo of {COUNTING[i]} things" for i in counting]
    tokens = adapter.tokenize([captions[i] for i in indices] + counterfactuals)
    return {"pixels": torch.from_numpy(np.stack([pixels[i] for i in indices])), **tokens,
            "num_captions": len(indices), "count_index": torch.tensor([indices.index(i) for i in counting])}


def config(model_dir, **overrides):
    base = dict(model=model_dir, train_data="unused.tar", counting_data="unused.tar", steps=10, batch_size=4,
                lr=1e-4, warmup=1, progress=False, threads=1)
    return TrainConfig(**{**base, **overrides})


def one_step(model_dir, env, indices):
    adapter = load_model(model_dir)
    ctx = build_context(adapter, config(model_dir), env, total_steps=10)
    metrics = train_step(ctx, to_device(make_batch(adapter, indices), adapter, env.device))
    values = distributed.all_reduce_mean({k: float(v) for k, v in metrics.items()}, env.device)
    return values, {k: v.clone() for k, v in adapter.state_dict().items()}


def losses_on_rank(rank):
    """Rank r holds pairs 2r, 2r+1; counting images 0 (rank 0) and 2 (rank 1); uneven NegCLIP negatives."""
    rows = slice(2 * rank, 2 * rank + 2)
    images, texts = IMAGES[rows].clone().requires_grad_(), TEXTS[rows].clone().requires_grad_()
    clip = ClipLoss()(images, texts, torch.tensor(SCALE))["clip_loss"]
    clip.backward()
    count = CountLoss()(IMAGES[rows], TEXTS[rows], torch.tensor(SCALE), COUNTERFACTUALS[rank:rank + 1],
                        torch.tensor([0]))
    negatives = NEGATIVES[:2] if rank == 0 else NEGATIVES[2:]
    negclip = ClipLoss(gather_with_grad=False)(IMAGES[rows], TEXTS[rows], torch.tensor(SCALE),
                                               extra_negatives=negatives)["clip_loss"]
    return {"clip": clip.item(), "count": count["count_loss"].item(), "negclip": negclip.item(),
            "acc": count["count_acc"].item(), "image_grad": images.grad.tolist()}


def _worker(rank, port, model_dir, shards, out_dir):
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    env = distributed.init_distributed("cpu")
    try:
        with open(os.path.join(out_dir, f"losses_rank{rank}.json"), "w") as handle:
            json.dump(losses_on_rank(rank), handle)
        half = list(range(rank * 4, rank * 4 + 4))
        values, weights = one_step(model_dir, env, half)
        if rank == 0:
            torch.save(weights, os.path.join(out_dir, "ddp_weights.pt"))
            with open(os.path.join(out_dir, "ddp_metrics.json"), "w") as handle:
                json.dump(values, handle)
        run = config(model_dir, train_data=shards["general"], counting_data=shards["counting"], steps=3,
                     save_every=2, output_dir=os.path.join(out_dir, "run"), log_every=1)
        train(run, env)
    finally:
        distributed.shutdown()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """Spawn the 2 ranks once; the tests below read what they wrote."""
    root = tmp_path_factory.mktemp("ddp")
    model_dir = str(root / "tiny")
    create_model("tiny").save(model_dir)
    shards = {"general": write_toy_shards(root, "g", shards=3, per_shard=6, counts=(2, 3), size=32),
              "counting": write_toy_shards(root, "c", shards=1, per_shard=9, counts=(4, 5), size=32)}
    mp.spawn(_worker, args=(free_port(), model_dir, shards, str(root)), nprocs=2, join=True)
    return root, model_dir


def test_losses_under_ddp_match_hand_computations(ddp_run):
    root, _ = ddp_run
    results = [json.loads((root / f"losses_rank{rank}.json").read_text()) for rank in (0, 1)]
    images, texts = IMAGES.tolist(), TEXTS.tolist()
    for rank in (0, 1):
        rows = [2 * rank, 2 * rank + 1]
        # local loss: this rank's rows against the whole gathered batch, labels offset by 2 * rank
        assert results[rank]["clip"] == pytest.approx(hand_clip(images, texts, rows=rows), rel=1e-6)
        assert results[rank]["negclip"] == pytest.approx(hand_clip(images, texts, rows=rows,
                                                                   negatives=NEGATIVES.tolist()), rel=1e-6)
    # DDP averages ranks: the mean of the local losses is the global-batch loss ...
    assert (results[0]["clip"] + results[1]["clip"]) / 2 == pytest.approx(hand_clip(images, texts), rel=1e-6)
    # ... and with gather-with-grad each rank's feature gradient is world x the global loss's.
    full = IMAGES.clone().requires_grad_()
    ClipLoss()(full, TEXTS, torch.tensor(SCALE))["clip_loss"].backward()
    gathered = torch.tensor(results[0]["image_grad"] + results[1]["image_grad"]) / 2
    torch.testing.assert_close(gathered, full.grad, rtol=1e-5, atol=1e-7)
    # CountLoss: each rank's share x world averages to the mean over all counting samples
    expected = hand_count(images, texts, COUNTERFACTUALS.tolist(), [0, 2])
    assert (results[0]["count"] + results[1]["count"]) / 2 == pytest.approx(expected, rel=1e-6)
    assert results[0]["acc"] == results[1]["acc"] == 1.0


def test_two_process_ddp_step_matches_one_process_on_the_global_batch(ddp_run):
    tmp_path, model_dir = ddp_run
    single_values, single_weights = one_step(model_dir, DistEnv(0, 1, 0, torch.device("cpu")),
                                             list(range(GLOBAL_BATCH)))
    ddp_values = json.loads((tmp_path / "ddp_metrics.json").read_text())
    for key in ("clip_loss", "count_loss", "count_acc", "loss", "grad_norm"):
        assert abs(ddp_values[key] - single_values[key]) < 1e-5 * max(1.0, abs(single_values[key])), key
    assert ddp_values["count_samples"] == single_values["count_samples"] == 4
    ddp_weights = torch.load(tmp_path / "ddp_weights.pt", weights_only=True)
    initial = load_model(model_dir).state_dict()
    for name, tensor in single_weights.items():
        torch.testing.assert_close(ddp_weights[name], tensor, rtol=0, atol=1e-6, msg=name)
    assert any(not torch.equal(single_weights[k], initial[k]) for k in initial)  # the step did move weights


def test_trainer_runs_under_two_ranks_with_rank_zero_saving(ddp_run):
    tmp_path, _ = ddp_run
    run = tmp_path / "run"
    state = json.loads((run / "checkpoints" / "step-00000003" / "state.json").read_text())
    assert state["world_size"] == 2 and len(state["data"]) == 2 and state["samples_seen"] == 3 * 8
    assert (run / "final" / "model.safetensors").is_file()
    assert (run / "train.log").read_text().count("countclip train:") == 1  # rank 0 logs alone
