"""Captions for synthetic scenes, from web-caption-like to plain.

Two streams, as in the paper's data:
  * general captions describe the scene the way web alt-text does and mostly omit
    the count ("Cute cartoon cats, vector illustration");
  * counting captions always state it directly before the noun, as a number word
    ("Set of three cats, vector illustration") or, as web alt text and people typing a
    query often do, as digits ("3 cats on a red background"), so the count core's
    `find_count` recovers it and `count_variants` can rewrite it in the same form.
Nothing else in a caption is a number, so a caption never holds two counts.
"""

from __future__ import annotations

import random

from countclip.synth.scenes import Scene

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

# {n}: number word, {things}: plural noun, {thing}: singular noun, {bg}: background phrase.
COUNTING_TEMPLATES = (
    "{n} {things}",
    "{n} {things} on {bg}",
    "Set of {n} {things}, vector illustration",
    "A picture of {n} {things}",
    "There are {n} {things} in this image",
    "Illustration of {n} {things} on {bg}",
    "{n} cartoon {things}",
    "{n} {things} emoji clip art",
    "A group of {n} {things}",
    "Photo of {n} {things} on {bg}",
    "{n} cute {things}, flat design",
    "{n} {things} isolated on {bg}",
)
# Count 1 states "one cat" (people type it, and the service's count prompt for 1 says it): the same
# shapes in the singular, leaving out those that only read well in the plural ("A group of one cat"),
# and those whose counterfactual the count core would build badly: it pluralises the phrase's last
# word ("one cat emoji clip art" -> "four cat emoji clip arts") and keeps the verb ("There is four").
COUNTING_TEMPLATES_ONE = (
    "{n} {thing}",
    "{n} {thing} on {bg}",
    "A picture of {n} {thing}",
    "Illustration of {n} {thing} on {bg}",
    "{n} cartoon {thing}",
    "Photo of {n} {thing} on {bg}",
    "{n} cute {thing}, flat design",
    "{n} {thing} isolated on {bg}",
)

GENERAL_TEMPLATES_MANY = (
    "{things} on {bg}",
    "Cute cartoon {things}, vector illustration",
    "Set of {thing} icons",
    "{things} emoji clip art",
    "A group of {things}",
    "Pattern with {things} on {bg}",
    "Flat design {thing} illustration",
    "Stock image of {things}",
    "Some {things} scattered on {bg}",
    "A photo of {things} on {bg}",
    "{things}",
)
GENERAL_TEMPLATES_ONE = (
    "{a_thing} on {bg}",
    "Cute cartoon {thing}, vector illustration",
    "{thing} icon",
    "{thing} emoji clip art",
    "A single {thing} on {bg}",
    "Flat design {thing} illustration",
    "Stock image of {a_thing}",
    "A photo of {a_thing}",
    "{thing}",
)
DISTRACTOR_SUFFIXES = (" and {other}", " with {other}", ", {other} nearby")


def number_word(count: int) -> str:
    if not 0 <= count < len(NUMBER_WORDS):
        raise ValueError(f"no number word for {count}")
    return NUMBER_WORDS[count]


def with_article(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _finish(text: str) -> str:
    return text[0].upper() + text[1:]


# The share of training captions that write the count in digits. Without any, "3 cats" is a token the
# model never saw next to three objects, and the digits form stays at chance.
DIGITS_SHARE = 0.35


def counting_caption(scene: Scene, rng: random.Random, digits_share: float = 0.0) -> str:
    """A caption that states the scene's count (1..10) before the noun: digits with probability `digits_share`."""
    if not 1 <= scene.count <= 10:
        raise ValueError(f"counting captions need a count in 1..10, got {scene.count}")
    template = rng.choice(COUNTING_TEMPLATES_ONE if scene.count == 1 else COUNTING_TEMPLATES)
    number = str(scene.count) if digits_share and rng.random() < digits_share else number_word(scene.count)
    text = template.format(n=number, things=scene.kind.plural, thing=scene.kind.name,
                           bg=scene.background.describe())
    return _finish(text)


def general_caption(scene: Scene, rng: random.Random, count_prob: float = 0.1, digits_share: float = 0.0) -> str:
    """A web-like caption; it states the count only with probability `count_prob`."""
    if scene.count >= 2 and rng.random() < count_prob:
        return counting_caption(scene, rng, digits_share)
    templates = GENERAL_TEMPLATES_ONE if scene.count == 1 else GENERAL_TEMPLATES_MANY
    text = rng.choice(templates).format(things=scene.kind.plural, thing=scene.kind.name,
                                        a_thing=with_article(scene.kind.name), bg=scene.background.describe())
    if scene.distractor is not None and rng.random() < 0.5:
        # Distractors are named without a number: a second count would make the caption ambiguous.
        other = (with_article(scene.distractor.name) if scene.distractor_count == 1
                 else f"some {scene.distractor.plural}")
        text += rng.choice(DISTRACTOR_SUFFIXES).format(other=other)
    return _finish(text)
