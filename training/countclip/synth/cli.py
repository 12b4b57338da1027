"""`countclip synth`: generate the synthetic counting world.

    countclip synth shards --stream general --samples 20000 --out data/synth/train
    countclip synth shards --stream counting --samples 20000 --out data/synth/train
    countclip synth countbench --out data/synth/countbench
    countclip synth zeroshot --out data/synth/zeroshot
    countclip synth gallery --out server/assets/gallery

Everything is deterministic from --seed (default 0) and independent of --workers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from functools import partial
from pathlib import Path

from countclip.synth import streams, writers
from countclip.synth.sprites import FontNotFoundError, find_emoji_font


def _common(parser: argparse.ArgumentParser, size: int) -> None:
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0, help="everything generated follows from this seed")
    parser.add_argument("--size", type=int, default=size, help=f"image side in pixels (default {size})")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="rendering processes (output does not depend on it)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="countclip synth", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    shards = commands.add_parser("shards", help="WebDataset training shards (img2dataset layout)")
    _common(shards, 64)
    shards.add_argument("--stream", choices=("general", "counting"), required=True,
                        help="general: web-like captions that mostly omit the count; counting: captions state it")
    shards.add_argument("--samples", type=int, required=True, help="number of image-text pairs")
    shards.add_argument("--per-shard", type=int, default=1000, help="samples per tar shard")
    shards.add_argument("--format", choices=("jpg", "png", "webp"), default="jpg")
    shards.add_argument("--quality", type=int, default=90, help="JPEG/WebP quality")
    shards.add_argument("--distractor-prob", type=float, default=0.3,
                        help="probability that a scene also holds 1-2 objects of another kind")
    shards.add_argument("--count-prob", type=float, default=0.1,
                        help="general stream: probability that a caption states the count")

    bench = commands.add_parser("countbench", help="synthetic CountBench: 540 images, 60 per count 2..10")
    _common(bench, 128)
    bench.add_argument("--format", choices=("jpg", "png"), default="png")
    bench.add_argument("--distractor-prob", type=float, default=0.3)

    zero = commands.add_parser("zeroshot", help="object-kind image folder for zero-shot retention")
    _common(zero, 128)
    zero.add_argument("--per-class", type=int, default=10, help="images per object kind")
    zero.add_argument("--format", choices=("jpg", "png"), default="png")

    gallery = commands.add_parser("gallery", help="the service's default gallery (JPEGs + gallery.jsonl)")
    _common(gallery, 160)
    gallery.add_argument("--count", type=int, default=1800,
                         help="number of images; a multiple of 600 holds every kind at every count 1..10 equally often")
    gallery.add_argument("--quality", type=int, default=82, help="JPEG quality")
    return parser


def _check(args: argparse.Namespace) -> None:
    if args.size < 16:
        raise ValueError(f"--size must be at least 16, got {args.size}")
    if args.workers < 1:
        raise ValueError("--workers must be >= 1")
    for name in ("distractor_prob", "count_prob"):
        value = getattr(args, name, None)  # only some subcommands have these
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError(f"--{name.replace('_', '-')} must be in [0, 1], got {value}")


def run(args: argparse.Namespace) -> dict:
    if args.command == "shards":
        if args.stream == "general":
            make = partial(streams.general, args.seed, distractor_prob=args.distractor_prob,
                           count_prob=args.count_prob)
        else:
            make = partial(streams.counting, args.seed, distractor_prob=args.distractor_prob)
        return writers.write_shards(args.out, make, args.samples, prefix=args.stream, per_shard=args.per_shard,
                                    size=args.size, fmt=args.format, quality=args.quality, workers=args.workers)
    if args.command == "countbench":
        return writers.write_countbench(args.out, args.seed, size=args.size, fmt=args.format, workers=args.workers,
                                        distractor_prob=args.distractor_prob)
    if args.command == "zeroshot":
        return writers.write_zeroshot(args.out, args.seed, per_class=args.per_class, size=args.size,
                                      fmt=args.format, workers=args.workers)
    return writers.write_gallery(args.out, args.seed, count=args.count, size=args.size, quality=args.quality,
                                 workers=args.workers)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check(args)
        find_emoji_font()
        summary = run(args)
    except (FontNotFoundError, ValueError, OSError) as error:
        print(f"countclip synth: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
