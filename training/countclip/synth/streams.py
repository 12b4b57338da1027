"""The sample streams of the synthetic world, each a pure function of (seed, index).

Every sample draws from its own `random.Random` seeded by (stream, seed, index),
so a dataset is identical whatever the number of worker processes or the order
in which samples are made, and two streams never share scenes.

  general     training pairs with web-like captions (count mostly omitted), 1..10 objects
  counting    training pairs whose caption states the count, 1..10 objects, balanced
  countbench  the synthetic CountBench: 60 per count 2..10, half of them held-out kinds,
              backgrounds of every style including the held-out ones
  zeroshot    object-kind classification (training kinds, 1..3 objects)
  gallery     the service's default gallery: every kind, 1..10 objects
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from countclip.synth.backgrounds import HELD_OUT_STYLES, STYLES
from countclip.synth.captions import DIGITS_SHARE, counting_caption, general_caption
from countclip.synth.kinds import KINDS, Kind, held_out_kinds, training_kinds
from countclip.synth.scenes import Scene, sample_scene

TRAIN_STYLES = tuple(style for style in STYLES if style not in HELD_OUT_STYLES)
COUNTBENCH_PER_COUNT = 60
COUNTBENCH_COUNTS = tuple(range(2, 11))


@dataclass(frozen=True)
class Sample:
    scene: Scene
    caption: str
    meta: dict[str, Any]


def _rng(stream: str, seed: int, index: int) -> random.Random:
    return random.Random(f"countclip-synth/{stream}/{seed}/{index}")


def _meta(scene: Scene, stream: str, seed: int, index: int) -> dict[str, Any]:
    return {"stream": stream, "seed": seed, "index": index, "kind": scene.kind.name,
            "instances": scene.count, "background": scene.background.style,
            "distractor": scene.distractor.name if scene.distractor else None,
            "distractor_count": scene.distractor_count}


def general(seed: int, index: int, distractor_prob: float = 0.3, count_prob: float = 0.1) -> Sample:
    rng = _rng("general", seed, index)
    kinds = training_kinds()
    # Web images mostly show one thing; the rest spread over 2..10.
    count = 1 if rng.random() < 0.4 else rng.randint(2, 10)
    scene = sample_scene(rng, rng.choice(kinds), count, distractors=kinds, distractor_prob=distractor_prob,
                         styles=TRAIN_STYLES)
    # No "count" key: the trainer treats general samples by their caption alone.
    return Sample(scene, general_caption(scene, rng, count_prob, DIGITS_SHARE), _meta(scene, "general", seed, index))


def counting(seed: int, index: int, distractor_prob: float = 0.3) -> Sample:
    rng = _rng("counting", seed, index)
    kinds = training_kinds()
    # Counts 1..10: the paper's data counts 2..10, but without "one cat" in any caption the count
    # prompt for 1 meant nothing to the model, and "one cat" found a single cat 6% of the time in
    # gallery search. The counterfactual of "one cat" is "N cats" (the count core pluralises).
    scene = sample_scene(rng, rng.choice(kinds), rng.randint(1, 10), distractors=kinds,
                         distractor_prob=distractor_prob, styles=TRAIN_STYLES)
    return _counted(scene, counting_caption(scene, rng, DIGITS_SHARE), "counting", seed, index)


def countbench(seed: int, index: int, distractor_prob: float = 0.3) -> Sample:
    """Image `index` of the synthetic CountBench (0..539): count 2 + index // 60."""
    if not 0 <= index < COUNTBENCH_PER_COUNT * len(COUNTBENCH_COUNTS):
        raise ValueError(f"CountBench index out of range: {index}")
    rng = _rng("countbench", seed, index)
    pool: tuple[Kind, ...] = held_out_kinds() if index % 2 == 0 else training_kinds()
    count = COUNTBENCH_COUNTS[index // COUNTBENCH_PER_COUNT]
    scene = sample_scene(rng, rng.choice(pool), count, distractors=KINDS, distractor_prob=distractor_prob,
                         styles=STYLES)
    sample = _counted(scene, counting_caption(scene, rng), "countbench", seed, index)
    sample.meta["held_out_kind"] = index % 2 == 0
    sample.meta["held_out_background"] = scene.background.style in HELD_OUT_STYLES
    return sample


def zeroshot(seed: int, index: int, per_class: int) -> Sample:
    """Image `index` of the object-kind dataset: class training_kinds()[index // per_class]."""
    rng = _rng("zeroshot", seed, index)
    kind = training_kinds()[index // per_class]
    scene = sample_scene(rng, kind, rng.randint(1, 3), styles=STYLES)
    return Sample(scene, kind.name, _meta(scene, "zeroshot", seed, index))


GALLERY_DISTRACTOR_PROB = 0.25


def gallery(seed: int, index: int) -> Sample:
    """A gallery image: every kind at every count 1..10 in turn, so `len(KINDS) * 10 * r` images hold each
    (kind, count) pair r times; a quarter of the scenes hold 1..2 objects of another kind as well."""
    rng = _rng("gallery", seed, index)
    kind = KINDS[index % len(KINDS)]
    count = 1 + (index // len(KINDS)) % 10
    scene = sample_scene(rng, kind, count, distractors=KINDS, distractor_prob=GALLERY_DISTRACTOR_PROB, styles=STYLES)
    caption = counting_caption(scene, rng) if count >= 2 else general_caption(scene, rng, 0.0)
    return _counted(scene, caption, "gallery", seed, index)


def _counted(scene: Scene, caption: str, stream: str, seed: int, index: int) -> Sample:
    meta = _meta(scene, stream, seed, index)
    meta.update(count=scene.count, noun=scene.kind.noun(scene.count))
    return Sample(scene, caption, meta)
