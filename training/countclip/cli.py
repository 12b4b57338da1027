"""`countclip` command line: one dispatcher, each subcommand owned by its module.

Every module named here exposes `main(argv: list[str]) -> int` and builds its own
argparse parser, so adding a command never touches another command's code and
`countclip --help` stays cheap (modules are imported only when their command runs).
"""

from __future__ import annotations

import importlib
import sys

# command -> (module, one-line summary)
COMMANDS: dict[str, tuple[str, str]] = {
    "counts": ("countclip.counting.cli", "find, parse and rewrite counts in captions (parse, variants, explain, eval-captions)"),
    "train": ("countclip.train.main", "fine-tune CLIP with L = L_clip + lambda * L_count"),
    "eval": ("countclip.evaluation.cli", "evaluate a model (countbench, zeroshot)"),
    "export": ("countclip.bundle.export", "export a model bundle (ONNX + manifest) for the service"),
    "embed": ("countclip.bundle.embed", "embed a folder, shards or parquet of images with a bundle, for POST /v1/index/import"),
    "synth": ("countclip.synth.cli", "generate the synthetic counting world (shards, synthetic CountBench, gallery)"),
    "mine": ("countclip.mining.mine", "select balanced counting captions from web-scale metadata"),
    "verify": ("countclip.mining.verify", "verify counts in image shards with an object detector"),
}


def _usage() -> str:
    lines = ["usage: countclip <command> [options]", "", "commands:"]
    lines += [f"  {name:<8} {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "Run `countclip <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"countclip: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
