"""`countclip verify`: keep only shard samples whose detected count equals the caption's.

    countclip verify shards/{00000..00099}.tar --out verified/            # one process
    torchrun --nproc-per-node 8 -m countclip.cli verify shards/ --out verified/   # 8 GPUs

Input: WebDataset shards from img2dataset (`{key}.jpg`, `{key}.txt`, `{key}.json` carrying
`count` and `noun` from `countclip mine`). Each sample's image is searched for its noun by a
zero-shot detector (OWLv2 by default); the sample is kept when the number of boxes above
`--threshold`, after non-maximum suppression, equals the caption's count.

Output, in `--out`: one verified shard per input shard (same name, kept samples only, their
json gaining a "verified" record) with img2dataset's `<shard>_stats.json` beside it,
`reports/<shard>.json` per shard, and `report.json` (kept and dropped per count and reason,
detected-vs-caption counts) once every shard is done.

Shards are dealt to ranks round-robin (RANK / WORLD_SIZE from torchrun; no process group is
needed). A shard's output appears atomically and its report is written after it, so a
restart skips finished shards and redoes only the unfinished ones.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from countclip.mining.detectors import DEFAULT_DETECTOR, DEFAULT_QUERY, Detector, load_detector
from countclip.mining.outputs import write_json
from countclip.mining.shards import Sample, ShardError, ShardWriter, iter_samples, resolve_paths
from countclip.model.preprocess import to_rgb

MIN_COUNT, MAX_COUNT = 2, 10
REPORTS_DIR, REPORT_NAME = "reports", "report.json"
KEPT = "kept"
# Drop reasons
NO_IMAGE, BAD_IMAGE, NO_COUNT, NO_NOUN = "no_image", "undecodable_image", "no_count", "no_noun"
FEWER, MORE = "detected_fewer", "detected_more"


@dataclass
class ShardReport:
    shard: str
    samples: int = 0
    kept: int = 0
    per_count: dict = field(default_factory=lambda: defaultdict(Counter))  # count -> {kept | reason: n}
    dropped: Counter = field(default_factory=Counter)  # reason -> n
    detected: dict = field(default_factory=lambda: defaultdict(Counter))  # caption count -> {detected: n}
    problems: Counter = field(default_factory=Counter)  # damaged tar members etc.

    def record(self, count: int | None, outcome: str) -> None:
        self.samples += 1
        if outcome == KEPT:
            self.kept += 1
        else:
            self.dropped[outcome] += 1
        self.per_count[str(count) if count is not None else "none"][outcome] += 1

    def to_json(self, detector: str, elapsed: float) -> dict:
        return {"shard": self.shard, "detector": detector, "samples": self.samples, "kept": self.kept,
                "dropped": dict(self.dropped), "per_count": {k: dict(v) for k, v in sorted(self.per_count.items())},
                "detected_vs_caption": {k: {str(d): n for d, n in sorted(v.items())}
                                        for k, v in sorted(self.detected.items())},
                "problems": dict(self.problems), "elapsed_s": round(elapsed, 3)}


@dataclass
class Pending:
    sample: Sample
    count: int
    noun: str
    image: Image.Image


class ShardVerifier:
    """Verifies one shard at a time, batching images through the detector."""

    def __init__(self, detector: Detector, batch_size: int, threshold: float):
        self.detector, self.batch_size, self.threshold = detector, batch_size, threshold

    def run(self, source: Path, target: Path) -> dict:
        started = time.perf_counter()
        report = ShardReport(source.name)
        pending: list[Pending] = []
        with ShardWriter(target) as writer:
            for sample in iter_samples(source, report.problems):
                item = self._prepare(sample, report)
                if item is not None:
                    pending.append(item)
                if len(pending) >= self.batch_size:
                    self._flush(pending, writer, report)
            self._flush(pending, writer, report)
        return report.to_json(self.detector.name, time.perf_counter() - started)

    def _prepare(self, sample: Sample, report: ShardReport) -> Pending | None:
        count, noun = sample_count(sample)
        if count is None or noun is None:
            report.record(count, NO_COUNT if count is None else NO_NOUN)
            return None
        image = sample.image_bytes()
        if image is None:
            report.record(count, NO_IMAGE)
            return None
        try:
            decoded = Image.open(io.BytesIO(image[1]))
            decoded.load()
        except Exception:  # PIL raises many types for corrupt data; all mean "unusable image"
            report.record(count, BAD_IMAGE)
            return None
        return Pending(sample, count, noun, to_rgb(decoded))  # transparency on white, not black

    def _flush(self, pending: list[Pending], writer: ShardWriter, report: ShardReport) -> None:
        if not pending:
            return
        detections = self.detector.detect([p.image for p in pending], [p.noun for p in pending])
        for item, detection in zip(pending, detections, strict=True):
            report.detected[str(item.count)][detection.count] += 1
            outcome = KEPT if detection.count == item.count else (FEWER if detection.count < item.count else MORE)
            report.record(item.count, outcome)
            if outcome == KEPT:
                writer.write(_with_verification(item.sample, detection.count, self.detector.name, self.threshold))
        pending.clear()


def sample_count(sample: Sample) -> tuple[int | None, str | None]:
    """(count, noun) from the sample's json (written by `countclip mine` via img2dataset), else
    from its caption through the count core. Counts outside 2..10 are not counting samples."""
    count, noun = _from_json(sample.files.get("json"))
    if count is None and "txt" in sample.files:
        try:
            caption = sample.files["txt"].decode("utf-8")
        except UnicodeDecodeError:
            return None, None
        from countclip.counting.core import find_count

        match = find_count(caption)
        count, noun = (match.count, match.noun) if match else (None, None)
    if count is None or not MIN_COUNT <= count <= MAX_COUNT:
        return None, None
    return count, noun or None


def _from_json(raw: bytes | None) -> tuple[int | None, str | None]:
    if raw is None:
        return None, None
    try:
        meta = json.loads(raw)
    except ValueError:
        return None, None
    if not isinstance(meta, dict):
        return None, None
    count, noun = meta.get("count"), meta.get("noun")
    count = count if isinstance(count, int) and not isinstance(count, bool) else None
    return count, noun if isinstance(noun, str) and noun.strip() else None


def _with_verification(sample: Sample, detected: int, detector: str, threshold: float) -> Sample:
    try:
        meta = json.loads(sample.files["json"]) if "json" in sample.files else {}
    except ValueError:
        meta = {}
    meta = meta if isinstance(meta, dict) else {}
    meta["verified"] = {"detector": detector, "detected": detected, "threshold": threshold}
    files = dict(sample.files)
    files["json"] = json.dumps(meta, ensure_ascii=False).encode("utf-8")
    return Sample(sample.key, files)


# ----------------------------------------------------------------------------- driver

def rank_and_world() -> tuple[int, int]:
    """torchrun's RANK / WORLD_SIZE; a plain run is rank 0 of 1."""
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if not 0 <= rank < world:
        raise ValueError(f"RANK={rank} is outside WORLD_SIZE={world}")
    return rank, world


def report_path(out_dir: Path, shard: Path) -> Path:
    return out_dir / REPORTS_DIR / f"{shard.name}.json"


def is_done(out_dir: Path, shard: Path) -> bool:
    # The report is written after the shard is renamed into place: it marks completion.
    return report_path(out_dir, shard).is_file() and (out_dir / shard.name).is_file()


def verify_shards(shards: list[Path], out_dir: Path, verifier: ShardVerifier, rank: int, world: int) -> dict:
    """Process this rank's unfinished shards; returns {"processed", "skipped", "failed"}."""
    done = {"processed": [], "skipped": [], "failed": []}
    for shard in shards[rank::world]:
        if is_done(out_dir, shard):
            done["skipped"].append(shard.name)
            continue
        _remove_stale_tmp(out_dir, shard)
        try:
            report = verifier.run(shard, out_dir / shard.name)
        except ShardError as error:
            # Recorded (so the run's report can be complete and name it) but retried on restart.
            print(f"countclip verify: {error}; shard skipped", file=sys.stderr)
            write_json(report_path(out_dir, shard), {"shard": shard.name, "error": str(error)})
            done["failed"].append({"shard": shard.name, "error": str(error)})
            continue
        # img2dataset's per-shard stats file: the trainer reads "successes" instead of indexing the tar.
        kept, samples = report["kept"], report["samples"]
        write_json(out_dir / f"{Path(shard.name).stem}_stats.json",
                   {"count": samples, "successes": kept, "failed_to_verify": samples - kept})
        write_json(report_path(out_dir, shard), report)
        done["processed"].append(shard.name)
        print(f"[rank {rank}] {shard.name}: kept {report['kept']}/{report['samples']}", flush=True)
    return done


def _remove_stale_tmp(out_dir: Path, shard: Path) -> None:
    """Temporary files of a run that was killed (only this shard's owner ever writes them)."""
    for stale in out_dir.glob(f"{shard.name}.tmp-*"):
        stale.unlink(missing_ok=True)


def aggregate(out_dir: Path, shards: list[Path]) -> dict | None:
    """The run's report when every shard has one, else None (another rank is still working)."""
    reports, failed = [], []
    for shard in shards:
        path = report_path(out_dir, shard)
        if not path.is_file():
            return None
        report = json.loads(path.read_text(encoding="utf-8"))
        if "error" in report:
            failed.append(report)
        elif is_done(out_dir, shard):
            reports.append(report)
        else:
            return None
    total = {"shards": len(reports), "failed_shards": failed, "samples": 0, "kept": 0, "dropped": Counter(),
             "problems": Counter(), "per_count": defaultdict(Counter), "detected_vs_caption": defaultdict(Counter)}
    for report in reports:
        total["samples"] += report["samples"]
        total["kept"] += report["kept"]
        total["dropped"].update(report["dropped"])
        total["problems"].update(report["problems"])
        for key in ("per_count", "detected_vs_caption"):
            for count, values in report[key].items():
                total[key][count].update(values)
    total["detectors"] = sorted({r["detector"] for r in reports})
    total["kept_fraction"] = round(total["kept"] / total["samples"], 4) if total["samples"] else None
    for key in ("per_count", "detected_vs_caption"):
        total[key] = {k: dict(sorted(v.items())) for k, v in sorted(total[key].items(), key=lambda kv: _count_key(kv[0]))}
    total["dropped"], total["problems"] = dict(total["dropped"]), dict(total["problems"])
    return total


def _count_key(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (10**9, value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="countclip verify", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("inputs", nargs="+", help="input .tar shards: files, directories, globs or brace patterns")
    parser.add_argument("--out", required=True, type=Path, help="output directory for verified shards and reports")
    parser.add_argument("--detector", default=DEFAULT_DETECTOR,
                        help=f"transformers zero-shot detector: hub id or local directory (default {DEFAULT_DETECTOR}); "
                        "'fake' is the blob counter used in tests")
    parser.add_argument("--threshold", type=float, default=0.3, help="box score threshold (default 0.3)")
    parser.add_argument("--nms-iou", type=float, default=0.5, help="IoU above which NMS merges boxes (default 0.5)")
    parser.add_argument("--query-template", default=DEFAULT_QUERY, help=f"detector text query (default {DEFAULT_QUERY!r})")
    parser.add_argument("--batch-size", type=int, default=16, help="images per detector call")
    parser.add_argument("--device", default="auto", help="auto (this rank's GPU if any), cpu, cuda, cuda:N")
    parser.add_argument("--bf16", action="store_true", help="run the detector under bfloat16 autocast (GPU)")
    return parser


def _detector_from_args(args: argparse.Namespace) -> Detector:
    import torch

    from countclip.distributed import resolve_device

    device = resolve_device(args.device, int(os.environ.get("LOCAL_RANK", "0")))
    return load_detector(args.detector, threshold=args.threshold, nms_iou=args.nms_iou, device=device,
                         query_template=args.query_template, autocast_dtype=torch.bfloat16 if args.bf16 else None)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rank, world = rank_and_world()
        shards = resolve_paths(args.inputs, (".tar",))
        _check_unique_names(shards)
        if any(shard.parent.resolve() == args.out.resolve() for shard in shards):
            raise ValueError(f"--out {args.out} holds input shards; verified shards would replace them")
    except (ValueError, FileNotFoundError) as error:
        print(f"countclip verify: error: {error}", file=sys.stderr)
        return 2
    verifier = ShardVerifier(_detector_from_args(args), args.batch_size, args.threshold)
    done = verify_shards(shards, args.out, verifier, rank, world)
    print(f"[rank {rank}/{world}] processed {len(done['processed'])}, already done {len(done['skipped'])}, "
          f"failed {len(done['failed'])}")
    total = aggregate(args.out, shards)
    if total is None:
        print(f"[rank {rank}] other shards still in progress; {REPORT_NAME} is written by the last rank to finish")
    else:
        # Every finisher that sees all reports writes the same content, so the race is harmless.
        write_json(args.out / REPORT_NAME, total)
        print(f"kept {total['kept']:,} of {total['samples']:,} samples; report: {args.out / REPORT_NAME}")
    return 1 if done["failed"] else 0


def _check_unique_names(shards: list[Path]) -> None:
    names = Counter(s.name for s in shards)
    clashes = [n for n, c in names.items() if c > 1]
    if clashes:
        raise ValueError(f"shards from different directories share names {clashes[:5]}; outputs would collide")


if __name__ == "__main__":
    sys.exit(main())
