"""The trainer behind `countclip train` (usage: `countclip.train.main`'s docstring).

    config.py      TrainConfig: every CLI flag, with its help, in one dataclass
    main.py        main(argv) and the training loop, top to bottom
    step.py        the model wrapper (one image + one text forward), objective, train_step
    optim.py       AdamW parameter groups, warm-up + cosine schedule
    checkpoint.py  atomic safetensors checkpoints, `--resume latest`
    evaluate.py    held-out count-choice accuracy (true vs counterfactual caption)
    monitor.py     rank-0 console lines, progress bar, metrics.jsonl, TensorBoard
"""
