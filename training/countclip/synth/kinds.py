"""The object kinds of the synthetic world: one emoji sprite, a singular and a plural noun each.

Nouns are regular English count nouns whose plural a caption parser recognises
("cat"/"cats", "bus"/"buses", "strawberry"/"strawberries"); mass nouns and
irregular plurals ("sheep", "leaves", "dice") are left out on purpose so every
caption reads naturally and counts stay parseable.

`HELD_OUT` kinds never appear in training shards: the synthetic CountBench uses
them to show that counting transfers to objects the model has not seen counted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    name: str  # singular noun, also the zero-shot class name
    plural: str
    emoji: str

    def noun(self, count: int) -> str:
        return self.name if count == 1 else self.plural


def _kinds(rows: str) -> tuple[Kind, ...]:
    kinds = []
    for line in rows.strip().splitlines():
        emoji, name, plural = (part.strip() for part in line.split("|"))
        kinds.append(Kind(name=name, plural=plural, emoji=emoji))
    return tuple(kinds)


KINDS: tuple[Kind, ...] = _kinds("""
🐈 | cat | cats
🐕 | dog | dogs
🐇 | rabbit | rabbits
🐄 | cow | cows
🐖 | pig | pigs
🐎 | horse | horses
🐘 | elephant | elephants
🦒 | giraffe | giraffes
🐢 | turtle | turtles
🦆 | duck | ducks
🐧 | penguin | penguins
🦉 | owl | owls
🦋 | butterfly | butterflies
🐞 | ladybug | ladybugs
🐝 | bee | bees
🐌 | snail | snails
🦀 | crab | crabs
🐬 | dolphin | dolphins
🦩 | flamingo | flamingos
🦜 | parrot | parrots
🍎 | apple | apples
🍌 | banana | bananas
🍋 | lemon | lemons
🍐 | pear | pears
🍓 | strawberry | strawberries
🥕 | carrot | carrots
🍄 | mushroom | mushrooms
🍩 | donut | donuts
🍪 | cookie | cookies
🧁 | cupcake | cupcakes
🥚 | egg | eggs
🍅 | tomato | tomatoes
🥑 | avocado | avocados
🍔 | burger | burgers
🚗 | car | cars
🚌 | bus | buses
🚲 | bicycle | bicycles
✈️ | airplane | airplanes
🚀 | rocket | rockets
⛵ | sailboat | sailboats
🚜 | tractor | tractors
🎈 | balloon | balloons
⚽ | ball | balls
⭐ | star | stars
❤️ | heart | hearts
🔑 | key | keys
🔔 | bell | bells
🎁 | gift | gifts
👟 | shoe | shoes
✏️ | pencil | pencils
☂️ | umbrella | umbrellas
🎩 | hat | hats
🌻 | sunflower | sunflowers
🌷 | tulip | tulips
🌳 | tree | trees
🏠 | house | houses
🎸 | guitar | guitars
🧸 | teddy bear | teddy bears
⚓ | anchor | anchors
🪁 | kite | kites
""")

# Never in training shards; used (with some training kinds) by the synthetic CountBench.
HELD_OUT: frozenset[str] = frozenset({"rabbit", "owl", "pear", "cupcake", "tractor", "bell", "tulip", "anchor"})

BY_NAME: dict[str, Kind] = {kind.name: kind for kind in KINDS}


def training_kinds() -> tuple[Kind, ...]:
    return tuple(kind for kind in KINDS if kind.name not in HELD_OUT)


def held_out_kinds() -> tuple[Kind, ...]:
    return tuple(kind for kind in KINDS if kind.name in HELD_OUT)
