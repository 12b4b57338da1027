#!/usr/bin/env python
"""Fine-tuning sweep for the default-model recipe, many runs side by side on one GPU.

    BASELINE=runs/default-model/baseline/final COUNTCLIP_EMOJI_FONT=/path/NotoColorEmoji.ttf \
    OUT=sweep PAR=12 DEADLINE=460 HARD=535 python3 scripts/recipes/sweep_default_model_gpu.py

Made for a lent GPU machine with a fixed time budget (no npm, no network, the repo's tree only):
it synthesises the recipe's data there (seed 0, the recipe's sizes, plus a counting set with more
distractors), then fine-tunes the recipe's pre-trained baseline once per job in JOBS (recipe
settings with one knob changed; `seed` is the fine-tuning seed) and scores each on the synthetic
CountBench, its held-out-kinds half and object-kind zero-shot. PAR jobs run at once; no job
starts after DEADLINE seconds, or when the slowest finished job says it could not end before HARD,
when everything still running is stopped. A line per finished job goes to $OUT/results.jsonl at
once. ONLY=name,name runs a subset. fp32 (TF32 matmuls) on the GPU: the numbers differ from the
CPU recipe's run for run, so compare jobs with each other, over seeds.
The sweep of 2026-11-27 (H200) is in training/reports/default-model/gpu-sweep.jsonl; NOTES.md
reads it.
"""
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

T0 = time.time()
DEADLINE = float(os.environ.get("DEADLINE", "480"))   # stop starting jobs after this (s from start)
HARD = float(os.environ.get("HARD", "530"))           # kill everything at this
PAR = int(os.environ.get("PAR", "12"))
STEPS_SCALE = float(os.environ.get("STEPS_SCALE", "1"))  # for a local dry run
DEVICE = os.environ.get("DEV", "cuda")
OUT = Path(os.environ.get("OUT", "/tmp/out"))
W = Path(os.environ.get("W", "/tmp/sw"))
PY = [sys.executable, "-m", "countclip.cli"]
OUT.mkdir(parents=True, exist_ok=True)
W.mkdir(parents=True, exist_ok=True)
LOG = open(OUT / "sweep.log", "a")


def log(msg):
    line = f"[{time.time() - T0:6.1f}s] {msg}"
    print(line, flush=True)
    LOG.write(line + "\n"); LOG.flush()


def sh(cmd, logfile, timeout):
    with open(logfile, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n"); f.flush()
        return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=max(1, timeout)).returncode


def synth(ns):
    jobs = [
        ["synth", "shards", "--stream", "general", "--samples", str(ns["gen"]), "--size", "48", "--seed", "0", "--workers", "4", "--out", str(W / "train")],
        ["synth", "shards", "--stream", "counting", "--samples", str(ns["cnt"]), "--size", "48", "--seed", "0", "--workers", "5", "--out", str(W / "train")],
        ["synth", "shards", "--stream", "counting", "--samples", str(ns["cnt"]), "--size", "48", "--seed", "0", "--workers", "3", "--distractor-prob", "0.5", "--out", str(W / "train_d5")],
        ["synth", "countbench", "--seed", "0", "--size", "128", "--workers", "2", "--out", str(W / "countbench")],
        ["synth", "zeroshot", "--seed", "0", "--size", "128", "--per-class", "10", "--workers", "2", "--out", str(W / "zeroshot")],
    ]
    procs = [subprocess.Popen(PY + j, stdout=open(OUT / f"synth{i}.log", "w"), stderr=subprocess.STDOUT) for i, j in enumerate(jobs)]
    codes = [p.wait() for p in procs]
    log(f"synth done codes={codes}")
    assert not any(codes), codes


def pattern(d, prefix):
    return json.load(open(W / d / f"{prefix}-summary.json"))["pattern"]


# The recipe as it stood when the sweep ran (3,300 fine-tuning steps; now 4,400).
BASE = dict(steps=3300, lr=8e-3, lam=4, ratio=0.75, batch=64, wd=0.2, warmup=None, seed=0, data="train", beta2=0.98,
            minlr=0.0)


def J(name, **kw):
    c = dict(BASE); c.update(kw); c["name"] = name
    return c


JOBS = [
    J("ref-s0"), J("ref-s1", seed=1), J("lam8-s0", lam=8), J("lr12-s0", lr=1.2e-2), J("ratio9-s0", ratio=0.9),
    J("d5-s0", data="train_d5"), J("steps5000-s0", steps=5000), J("lam8-s1", lam=8, seed=1), J("lr12-s1", lr=1.2e-2, seed=1),
    J("ratio9-s1", ratio=0.9, seed=1), J("d5-s1", data="train_d5", seed=1), J("ref-s2", seed=2),
    J("steps4000-s0", steps=4000), J("lam8lr12-s0", lam=8, lr=1.2e-2), J("d5lam8-s0", data="train_d5", lam=8),
    J("wd05-s0", wd=0.05), J("warm100-s0", warmup=100), J("lam8-s2", lam=8, seed=2), J("d5-s2", data="train_d5", seed=2),
    J("lr12-s2", lr=1.2e-2, seed=2), J("ratio9-s2", ratio=0.9, seed=2), J("b2-999-s0", beta2=0.999),
    J("minlr1-s0", minlr=0.1), J("ratio1-s0", ratio=1.0),
]


def run_job(c):
    name, d = c["name"], W / c["name"]
    logf = OUT / "logs" / f"{name}.log"
    steps = max(4, int(c["steps"] * STEPS_SCALE))
    warm = c["warmup"] if c["warmup"] is not None else steps // 10
    model = str(Path(os.environ["BASELINE"]).resolve())
    t = time.time()
    left = lambda: HARD - (time.time() - T0)
    rc = sh(PY + ["train", "--device", DEVICE, "--precision", "fp32", "--threads", "1", "--seed", str(c["seed"]),
                  "--batch-size", str(c["batch"]), "--workers", "0", "--no-progress", "--log-every", "500",
                  "--save-every", "0", "--keep-checkpoints", "1", "--output-dir", str(d), "--model", model,
                  "--train-data", pattern("train", "general"), "--counting-data", pattern(c["data"], "counting"),
                  "--counting-ratio", str(c["ratio"]), "--count-loss-weight", str(c["lam"]), "--steps", str(steps),
                  "--lr", str(c["lr"]), "--warmup", str(warm), "--weight-decay", str(c["wd"]), "--beta2", str(c["beta2"]),
                  "--min-lr-ratio", str(c["minlr"])], logf, left())
    t_train = time.time() - t
    res = dict(c, rc=rc, train_s=round(t_train, 1))
    if rc == 0:
        ev = W / "eval" / name
        sh(PY + ["eval", "countbench", "--model", str(d / "final"), "--data", str(W / "countbench/countbench.jsonl"),
                 "--name", "cb", "--device", DEVICE, "--batch-size", "256", "--out", str(ev)], logf, left())
        sh(PY + ["eval", "countbench", "--model", str(d / "final"), "--data", str(W / "countbench/countbench-held-out-kinds.jsonl"),
                 "--name", "ho", "--device", DEVICE, "--batch-size", "256", "--out", str(ev)], logf, left())
        sh(PY + ["eval", "zeroshot", "--model", str(d / "final"), "--data", str(W / "zeroshot"), "--name", "zs",
                 "--device", DEVICE, "--batch-size", "256", "--out", str(ev)], logf, left())
        for f in ev.glob("*.json"):
            m = json.load(open(f))
            res[f.name.split("__")[0]] = {k: v for k, v in m.get("metrics", m).items() if isinstance(v, (int, float))}
    res["total_s"] = round(time.time() - t, 1)
    if rc == 0:
        DONE.append(res["total_s"] * 3300 / c["steps"])
    with open(OUT / "results.jsonl", "a") as f:
        f.write(json.dumps(res) + "\n")
    log(f"{name}: {json.dumps({k: res.get(k) for k in ('rc', 'train_s', 'total_s')})} "
        f"{json.dumps({k: v for k, v in res.items() if k in ('cb', 'ho', 'zs')})[:300]}")


DONE = []


def worker(q):
    while True:
        try:
            c = q.get_nowait()
        except queue.Empty:
            return
        elapsed = time.time() - T0
        est = max(DONE, default=0) * c["steps"] / 3300 * 1.1  # a job's length, from the slowest finished so far
        if elapsed > DEADLINE or elapsed + est > HARD:
            log(f"skip {c['name']} (deadline; est {est:.0f}s)")
            continue
        try:
            run_job(c)
        except Exception as e:  # a timeout or a broken job must not stop the others
            log(f"{c['name']} failed: {e!r}")


def main():
    (OUT / "logs").mkdir(exist_ok=True)
    os.environ["PYTHONPATH"] = str(Path("training").resolve())
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    ns = dict(gen=int(os.environ.get("NGEN", 12000)), cnt=int(os.environ.get("NCNT", 20000)))
    synth(ns)
    q = queue.Queue()
    only = os.environ.get("ONLY")
    for c in JOBS:
        if not only or c["name"] in only.split(","):
            q.put(c)
    threads = [threading.Thread(target=worker, args=(q,), daemon=True) for _ in range(PAR)]
    for t in threads: t.start()
    for t in threads: t.join(timeout=max(1, HARD - (time.time() - T0)))
    log("sweep over")
    shutil.make_archive(str(OUT / "logs"), "gztar", OUT / "logs")
    shutil.rmtree(OUT / "logs")


if __name__ == "__main__":
    main()
