#!/usr/bin/env python3
"""Generate `test/vectors/counts.json`: the shared specification of the count core.

    python3 scripts/generators/gen_count_vectors.py            # write the file
    python3 scripts/generators/gen_count_vectors.py --check    # exit 1 if the file is stale

Every expectation here comes from the template that built the case (the number we put in,
the noun we put after it, the exclusion the phrase belongs to), never from running the
implementation, so the vectors test both implementations against the specification; the
Python and TypeScript suites both read this one file. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "test" / "vectors" / "counts.json"

WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen twenty").split()
# (singular, plural): the noun as written after the numeral.
NOUNS = (("cat", "cats"), ("light bulb", "light bulbs"), ("child", "children"), ("puppy", "puppies"),
         ("box", "boxes"), ("woman", "women"), ("apple", "apples"), ("glass", "glasses"),
         ("sheep", "sheep"), ("knife", "knives"), ("Dog", "Dogs"), ("coffee cup", "coffee cups"))
# Templates with {n} (the numeral) and {noun}; the expected noun is the one we put in.
COUNT_TEMPLATES = (
    "{n} {noun}",
    "a photo of {n} {noun}",
    "{n} small {noun} on a wooden table",
    "There are {n} {noun} in the picture.",
    "Illustration with {n} {noun}, vector",
    "Set of {n} vintage {noun}",
    "📷 {n} {noun} 🐈",
    "«{n} {noun}»",
)
NOUNLESS_TEMPLATES = ("Set of {n}", "pack of {n}")
# A set's count with no noun after it counts the nearest plural before the set, or, when the
# set opens a segment of the caption, the nearest singular noun; so do "per pack" and "/pkg".
NOUN_BEFORE_TEMPLATES = (("glasses, set of {n}.", "glasses"), ("Napkins Black & Red - Set of {n}", "Napkins"),
                         ("Wood Print Stamps (Set of {n}) by Royal Kraft", "Stamps"),
                         ("Black Parson Dining Chair (Set of {n})", "Chair"), ("Fabric Rectangle Magnet ({n} pack)", "Magnet"),
                         ("Hitch Brackets With Handle - {n} Per Pack", "Brackets"), ("Kosta Boda Clear Bowl, Set of {n}", "Bowl"))

# Phrases that must NOT give a count, by exclusion class. Several phrasings each.
EXCLUSIONS = {
    "age": ["a 5-year-old boy", "a five-year-old girl", "she is two years old", "3 years old boy",
            "aged 7", "kids age 10 and up", "a six-month-old baby", "Liam, 12, and Stella, 11",
            "my son, two, loves it", "Two-year-old twins"],
    "time": ["three o'clock", "meet at 5 pm", "at five", "open until 9 am", "5:30 in the morning",
             "at 7 p.m. sharp", "Seven o’clock news", "at 10"],
    "duration": ["two hours", "six weeks", "ten minutes", "one day at the beach", "three days later",
                 "5 years ago", "two nights in Paris", "twelve months", "2 seconds", "a trip of 4 days"],
    "measure": ["10 km", "six inches", "ten percent", "5 kg of flour", "3 miles", "two feet tall", "20°",
                "5% off", "a 12 mm lens", "two liters of water", "8 GB", "three gallons", "6\" tall",
                "4 mph", "15 cm wide", "2 tbsp sugar", "7 lbs", "take 2 per day", "5 per cent"],
    "money": ["10 centimos. AU.", "$5", "5$", "10 €", "five dollars", "€10", "ten bucks", "20 cents", "£3", "US$ 9", "5 euros",
              "costs $ 12", "only 3 usd"],
    "rank or title": ["top ten", "number five", "No. 5", "#3", "Ocean's Eleven", "Part 2",
                      "Chapter Three", "season 4", "episode 7", "Apollo 11", "iPhone 6 case",
                      "Windows 10", "level 3", "Top 10 beaches", "the Fantastic Four", "Room 12",
                      "Maroon 5", "volume 2", "page 14"],
    "year or date": ["in 1999", "May 5", "5 May", "June 10, 2020", "10/12/2020", "the summer of 2015",
                     "Dec 12"],
    "score": ["6-4", "won 3-1", "a 2:1 victory", "a 3 to 1 win", "lost 2–0"],
    "fraction": ["two thirds", "one half", "three quarters of the cake", "2/3 cup", "one-third",
                 "a fifth of it"],
    "multiplier": ["two times", "3 times faster", "x 2", "twofold", "two-fold", "times nine"],
    "one of": ["one of the cats", "one of them", "love one another", "one or two", "the one",
               "no one", "each one", "this one is mine", "one facing up", "one by one"],
    "approximate": ["about five", "around 10 people", "more than three cats", "at least 4 dogs",
                    "up to 6 guests", "nearly ten", "over 5 dogs", "roughly 7 birds"],
    "range": ["two or three cats", "2-3 cats", "5 to 10 people", "three out of ten", "one in five",
              "4 x 6 photo", "2 by 4"],
    "compound": ["twenty-one", "twenty one pilots", "two hundred", "two dozen eggs",
                 "a three-legged stool", "a two-story house", "a 5-star hotel", "nineteen eighty-four",
                 "one-of-a-kind"],
    "name or title": ["Tea for Two", "dinner for Four", "One Direction", "1 Thessalonians 5:17",
                      "10 Best Places To Visit", "The 15 Most Common Mistakes", "One Piece manga",
                      "One World Trade Center", "music by the Jackson Five"],
    "listicle or heading": ["7 Reasons Why You Should Choose AWS", "Three Ways to Make an Ape Man",
                            "seven ways to make your wedding cheaper", "5 Highly Profitable Ideas for Your Business",
                            "two different kinds of olive oil", "Only three steps, and they are easy",
                            "10 Modern Small Bathroom Ideas", "Maxwell-Gunter AFB Housing: 7 On-Base Options",
                            "the three previous Bourne movies", "served two previous terms as president",
                            "Flashback Four Series", "bmw 3 series", "5 Foods That Boost Your Metabolism",
                            "three previous years in a row", "2 Bedrooms Flat for sale"],
    "product variants": ["Camo Cargo Pants - 5 Colors", "Travel Tins (Two Sizes)", "Available in 5 colors"],
    "news or event": ["Vehicle plows into crowd, nine hurt", "3 terrorists holed up", "two men arrested",
                      "Two killed in crash", "police search for two vehicles involved in a shootout",
                      "Four women have accused the conductor", "a crash that killed two teens"],
    "prize or sequence": ["Win two premium tickets", "a 0.95 ERA in his last three starts", "won three cars",
                          "the first team to appear in four consecutive Super Bowls",
                          "team doing a high five gesture"],
    "capacity": ["Breakfast for two", "Coffee Set for Two", "a table for 4"],
    "title or name in Title Case": ["The Three Stooges", "Kubo and the Two Strings", "Goldilocks And The Three Bears",
                                    "Tom Priddy/Four Seam Images", "Ben 10 Invitation Cards", "Two Hearts Earrings",
                                    "A Devil, Two Rivers, and a Dream", "Beyond: Two Souls: Interview",
                                    "The Voice Final Five fight", "A Tale of Two Cities",
                                    "Two Rings: A Story of Love and War", "Three Stooges; Moe, Larry and Curly",
                                    "Three Wishes (1995)", "Six Armies in Normandy by John Keegan",
                                    "6 of the Best Dopp Kits for Men"],
    "in a story": ["Police stop a boy as he walks away from a crowd that formed after a shooting in Salt Lake "
                   "City on Saturday, February 27. The ordeal started when officers saw two males with metal "
                   "objects attacking another male outside a homeless shelter, police said. Officers told them "
                   "to drop their weapons."],
    "capacity with a noun": ["Villa for 8 people in Pollença", "Holiday apartment for 5 persons"],
    "purpose": ["leather wine box package for three bottles", "the school is looking for two school nurses",
                "a menu plan for five weeknight meals"],
    "build or spec in Title Case": ["Two Faucet Tower Kit", "Three Card Poker Game", "Three Phase Oil Cooled Stabilizer",
                                    "Two Tier Moshi Monster Birthday Cake Neo Cakes", "faux two piece romper bib pants set",
                                    "Five stone diamond bubble ring", "A Professional Two Page Investment Analyst"],
    # Round 3 of issue 21's web shapes.
    "announcement": ["Two new DJ mixtapes out now", "Caribou Troop 184 gains three new Eagle Scouts"],
    "build of one object": ["Fantastic Two Pieces Ball Gown Prom Dress", "five burners gas cooker grill"],
    "spec list": ["recently sold mobile home 2 beds 1 baths in park terrace"],
    "keyword soup": ["women's rain boots riding boots rainboots 3 rubber shoes water shoes"],
    "news or prose": ["Headless animals, including two roosters, were found outside a Florida jail this week and may be part of a sacrifice"],
    "announcement in Title Case": ["Two New Canon Lenses Coming Soon?"],
    "listicle or heading, round 3": ["10 Easter Cocktails For Adults : Woman Of Many Roles", "6 wet felting tutorials to try",
                                     "Crafty Mom: 5 activities for kids using a turkey baster"],
    "name in capitals": ["TOM CLANCY'S: RAINBOW SIX SIEGE PC UBISOFT", "22K HEARTS ROW LOVE TWO TONE PLATED BEADS"],
    "plural naming a product": ["Two Heads Creek (Hindi Dubbed)", "Seven Circles Necklace"],
    # Round 4 of issue 21: shapes, not word lists.
    "prose with a finite verb before the count": [
        "This delicious cake is made by combining two favorite recipes: a carrot cake and a cheesecake, for the holiday table.",
        "The RCMP in Meteghan say they responded to complaints on Thursday after three fishing crews sailed out of the harbour."],
    "title in a series": ["Three Sisters (Blackberry Island, #2)", "He-Man and the Masters of the Universe, Vol. 2 [2 Discs]",
                          "DEATHBLOW #4 & 5 WILDSTORM DC COMICS"],
    "listicle after a dash": ["Elegant Traditional Kitchen Faucets – 8 Designer Favorites"],
    "headline verb": ["Two Cows Explain the World Economies in Simple Terms"],
    "idiom that does not count": ["a pair of jeans", "a pair of scissors", "A pair of sunglasses",
                                  "a couple walking on the beach", "a dozen", "dozens of eggs"],
    "modifier": ["one bedroom apartments", "Two Handle Faucet", "Two Piece Suit", "a 6 person tent", "two bedroom flat", "18 speed bike", "two way radio",
                 "Two Bedroom Suite", "a four door car"],
    "mixed number": ["two and a half men", "Two and a Half Men", "three and a half years"],
    "code": ["HJC CL-17 helmet", "COVID-19 cases", "an F-16 jet", "B-2 bomber", "Nite team 4 icon",
             "Picture: 7 News.", "Saturn 5 rocket", "steel cups (4/pk2)"],
    "beyond the lexicon": ["21 cats", "fifty cats", "100 balloons", "twenty-five dogs", "thirty chairs",
                           "hundreds of birds", "dozens of eggs", "0 cats", "007 agents"],
    "several counts": ["two cucumbers and three tomatoes", "3 cats and 2 dogs", "one dog and two cats",
                       "Two women and three men", "five cups, 2 plates", "three cats and 50 dogs",
                       "two cats. Three dogs."],
    "boundaries": ["often", "tent", "someone", "network", "Twenty20", "anyone", "Tennis", "fourteenth",
                   "sixth sense", "oneself", "eightfold", "3D printer", "x2", "2x", "iPhone6", "COVID-19",
                   "B2B", "mp3", "3pcsx", "x3pcs cats", "2pc suit", "4pkg", "ninetee", "tenth", "Ninety", "seventyish", "one_two", "two_cats",
                   "Oneida", "Stone", "Attention", "Eighteenth-century", "t w o", "ONEself"],
    "no numeral": ["", " ", "cats", "🐈🐈🐈", "שלושה חתולים", "ثلاث قطط", "三只猫", "\u200b",
                   "\ufeff", "a cat", "Twenty20 cricket", "x"],
}
# (text, expected count, numeral, noun): counts the exclusions must not swallow.
SPECIAL_COUNTS = [
    ("a pair of shoes", 2, "a pair of", "shoes"),
    ("A couple of dogs on the grass", 2, "A couple of", "dogs"),
    ("a dozen eggs", 12, "a dozen", "eggs"),
    ("A DOZEN roses", 12, "A DOZEN", "roses"),
    ("half a dozen eggs in a bowl", 6, "half a dozen", "eggs"),
    ("two 5-year-old boys", 2, "two", "boys"),
    ("Three cats and one of them is black", 3, "Three", "cats"),
    ("someone holding two cups", 2, "two", "cups"),
    ("often two birds", 2, "two", "birds"),
    ("Ten science fiction paperbacks for ten bucks", 10, "Ten", "fiction paperbacks"),
    ("Set of six silver forks, 2 inches long", 6, "six", "forks"),
    ("two cats, one sleeping", 2, "two", "cats"),
    ("Seven of the players", 7, "Seven", "players"),
    ("five 5 holiday nail polishes", 5, "five", None),
    ("set of eight (8) glasses", 8, "eight", None),
    ("three\u00a0cats", 3, "three", "cats"),
    ("THREE CATS", 3, "THREE", "CATS"),
    ("tHrEe cats", 3, "tHrEe", "cats"),
    ("😀😀 three cats", 3, "three", "cats"),
    ("ثلاث قطط three cats", 3, "three", "cats"),
    ("שלושה חתולים three cats", 3, "three", "cats"),
    ("e\u0301 three cats", 3, "three", "cats"),
    ("Nine oranges sit together, three to a row.", 9, "Nine", "oranges"),
    ("four chairs in 1999", 4, "four", "chairs"),
    ("one red apple", 1, "one", "apple"),
    ("1 cat", 1, "1", "cat"),
    ("only one cat", 1, "one", "cat"),
    ("three cats at 5 pm", 3, "three", "cats"),
    ("two dogs, $5", 2, "two", "dogs"),
    ("The top three cats and three dogs", 3, "three", "dogs", 1),
    ("Three lovely, young dogs", 3, "Three", None),
    ("three businesswomen in an office", 3, "three", "businesswomen"),
    ("two light bulbs", 2, "two", "light bulbs"),
    ("Two Piece Suits", 2, "Two", "Piece Suits"),
    ("five bottle caps", 5, "five", "bottle caps"),
    ("two best friends", 2, "two", "friends"),
    ("French Armchairs, Set of Four, 1950s", 4, "Four", "Armchairs"),
    ("Oak Dining Chair - Berry (Pack of Two)", 2, "Two", None),
    ("Photo of Three Cats", 3, "Three", "Cats"),
    ("ONE CAT", 1, "ONE", "CAT"),
    ("I will make one soon, with two cakes", 2, "two", "cakes"),
    ("3 Pack Socks", 3, "3", "Socks"),
    ("Knorr beef 8 pack stock pot", 8, "8", "stock pot"),
    ("8 pack of crayons", 8, "8", "crayons"),
    ("2-Pack Bath Towels", 2, "2", "Bath Towels"),
    ("three-pack of socks", 3, "three", "socks"),
    ("5 Pcs Toy Cars", 5, "5", "Toy Cars"),
    ("Chinese Pair of Famille Rose Vases", 2, "Pair of", "Rose Vases"),
    ("Two smiling girls watching a phone", 2, "Two", "girls"),
    ("Group of four young smiling people playing bowling", 4, "four", "people"),
    ("Breakfast for two with two cups of coffee", 2, "two", "cups", 1),
    ("Two Eagles", 2, "Two", "Eagles"),
    ("Four Antique Gravestones", 4, "Four", "Gravestones"),
    ("Set of Two Beanie Boos", 2, "Two", "Beanie Boos"),
    ("Two Funny Puffins", 2, "Two", "Puffins"),
    ("two money bag on brown background", 2, "two", "money bag"),
    ("Photograph of Two Association Members", 2, "Two", "Association Members"),
    ("six colors of paint", 6, "six", "colors"),
    ("Four women friends talking", 4, "Four", "women"),
    ("Montessori Greeting Cards (10 Pack)", 10, "10", "Cards"),
    ("3pcs cotton bath towels", 3, "3", "bath towels"),
    ("10PCS Toy Cars", 10, "10", "Toy Cars"),
    ("a 6pack of beer", 6, "6", "beer"),
    ("Three Boys in a Dory Print by Winslow Homer", 3, "Three", "Boys"),
    ("Street Scene: Three young boys, Harlem", 3, "Three", "boys"),
    ("Around the table, four dining stools are upholstered", 4, "four", "stools"),
    ("Photo for Three young excited men jumping", 3, "Three", "men"),
    ("Two funny smiling little children", 2, "Two", "children"),
    ("Flower Whirls (5/pkg)", 5, "5", "Whirls"),
    ("Mesh Laundry Bags (6/Case)", 6, "6", "Bags"),
    ("red broadheads three pack from Archery Hit", 3, "three", "broadheads"),
    ("Sphere Gold (5 count)", 5, "5", "Sphere"),
    ("Eye Support (Vegan) - 4 Pack", 4, "4", None),
    ("Hex Key Set 8pcs For Tool Chest", 8, "8", None),
    # Round 3: what the new shapes must leave counted.
    ("Three pieces of handmade natural soap", 3, "Three", "pieces"),
    ("Rubber Set 4 Pieces Reproduction", 4, "4", "Pieces"),
    ("Three Boys Stock Photography", 3, "Three", "Boys"),
    ("Two Cocktail Glasses Vector", 2, "Two", "Cocktail Glasses"),
    ("Set Of Three French Oak Dining Chairs Louis", 3, "Three", "Chairs"),
    ("TWO VINTAGE CHRISTMAS APRONS", 2, "TWO", "CHRISTMAS"),
    ("a painting of a muscular naked surfer in front of a black and white striped barrier featuring two red poles", 2, "two", "poles"),
    ("A photo of a birthday cake on a wooden table in a sunny garden, decorated with two red roses and candles", 2, "two", "roses"),
    ("Asbestos 5 Pack Test Kit", 5, "5", "Test Kit"),
    ("The Chase had four new contestants looking to beat the chaser", 4, "four", "contestants"),
    ("Lloyds Bank has appointed seven new specialist banking professionals dedicated to the SME sector. Pictured are", 7, "seven", "professionals"),
    ("a gift set including 4 cups", 4, "4", "cups"),
    ("vintage metal kitchen canisters set of 4 orange white", 4, "4", "canisters"),
    ("Pair of Two Round Ceramic Cabochons", 2, "Two", "Cabochons"),
    ("Organic Rice - Case Of 8", 8, "8", "Rice"),
    # Round 4: recoveries, and what its shapes must leave counted.
    ("Picture of four geese walking on a road", 4, "four", "geese"),
    ("Two dried fish on a white background", 2, "Two", "fish"),
    ("Six Spanish Dining-Chairs", 6, "Six", "Dining-Chairs"),
    ("Family of four outside house", 4, "four", "Family"),
    ("Two beautiful young woman shopping in the city", 2, "Two", "woman"),
    ("Portrait of two young isolated business woman", 2, "two", "woman"),
    ("In this small village there are two old churches that the families of the valley have visited every Sunday for years.",
     2, "two", "churches"),
    ("Two Men Seated on a Bench, waiting for a #6 Subway Train", 2, "Two", "Men"),
    ("Web Hosting Banner Bundle - 3 Sets - GraphicRiver Item", 3, "3", "Sets"),
    ("Three Women Search for Understanding", 3, "Three", "Women"),
]
REPLACEMENTS = [  # (text, numeral, n, expected)
    ("Three cats", "Three", 7, "Seven cats"),
    ("three cats", "three", 1, "one cat"),
    ("THREE CATS", "THREE", 1, "ONE CAT"),
    ("Three Cats", "Three", 1, "One Cat"),
    ("3 cats", "3", 1, "1 cat"),
    ("3 cats", "3", 12, "12 cats"),
    ("one cat", "one", 4, "four cats"),
    ("One Puppy", "One", 2, "Two Puppies"),
    ("1 puppy", "1", 2, "2 puppies"),
    ("three light bulbs", "three", 1, "one light bulb"),
    ("two children", "two", 1, "one child"),
    ("two sheep", "two", 1, "one sheep"),
    ("two boxes", "two", 1, "one box"),
    ("two glasses", "two", 1, "one glass"),
    ("two knives", "two", 1, "one knife"),
    ("one knife", "one", 3, "three knives"),
    ("two puppies", "two", 1, "one puppy"),
    ("two movies", "two", 1, "one movie"),
    ("one bus", "one", 2, "two buses"),
    ("one church", "one", 2, "two churches"),
    ("one toy", "one", 2, "two toys"),
    ("a pair of shoes", "a pair of", 1, "one shoe"),
    ("A pair of shoes", "A pair of", 3, "Three shoes"),
    ("A dozen eggs", "A dozen", 3, "Three eggs"),
    ("two of the cats", "two", 1, "one of the cats"),
    ("😀 three cats", "three", 1, "😀 one cat"),
    ("three cats", "three", 3, "three cats"),
    ("three cats and three dogs", "three", 5, "five cats and three dogs"),
    ("ten small white mice", "ten", 1, "one small white mouse"),
    ("Set of 8", "8", 1, "Set of 1"),
    ("seven", "seven", 2, "two"),
    ("three firemen", "three", 1, "one fireman"),
    ("one policeman", "one", 3, "three policemen"),
]
VARIANTS = [  # (text, number): expected built by substitution below
    ("Three little pigs - three pigs", 3, "word"),
    ("Set of 4 mugs", 4, "digits"),
    ("five 5 holiday nail polishes", 5, "word"),
    ("TWO cats", 2, "word"),
    ("twenty-two cats and two dogs", 2, "word"),
    ("😀 Nine 🐈 nine", 9, "word"),
    ("Ten science fiction paperbacks for ten bucks", 10, "word"),
    ("Seven often seven", 7, "word"),
]
QUERIES = [
    ("three cats", {"count": 3, "noun": "cats", "singular": "cat"}),
    ("two puppies", {"count": 2, "noun": "puppies", "singular": "puppy"}),
    ("a photo of 4 children", {"count": 4, "noun": "children", "singular": "child"}),
    ("cats", {"count": None, "noun": None, "singular": None}),
    ("one cat", {"count": 1, "noun": "cat", "singular": "cat"}),
    ("Three Light Bulbs", {"count": 3, "noun": "Light Bulbs", "singular": "Light Bulb"}),
    ("seven", {"count": 7, "noun": None, "singular": None}),
    ("", {"count": None, "noun": None, "singular": None}),
    ("two boxes", {"count": 2, "noun": "boxes", "singular": "box"}),
    ("six sheep", {"count": 6, "noun": "sheep", "singular": "sheep"}),
    ("three glasses", {"count": 3, "noun": "glasses", "singular": "glass"}),
    ("five dollars", {"count": None, "noun": None, "singular": None}),
]
ERRORS = [  # calls that must raise (Python ValueError, TypeScript RangeError)
    {"fn": "replace_count", "text": "three cats", "span": [0, 4], "n": 2},
    {"fn": "replace_count", "text": "three cats", "span": [6, 10], "n": 2},
    {"fn": "replace_count", "text": "three cats", "span": [0, 5], "n": 21},
    {"fn": "replace_count", "text": "three cats", "span": [0, 50], "n": 2},
    {"fn": "replace_count", "text": "fifty cats", "span": [0, 5], "n": 2},
    {"fn": "count_variants", "text": "three cats", "number": 4},
    {"fn": "count_variants", "text": "three cats", "number": 0},
    {"fn": "count_variants", "text": "three cats", "number": 21},
    {"fn": "number_word", "n": 21},
    {"fn": "number_word", "n": -1},
]


def cased(word: str, case: str) -> str:
    return {"lower": word, "title": word.capitalize(), "upper": word.upper()}[case]


def expect(text: str, count: int | None, numeral: str | None = None, noun: str | None = None,
           nth: int = 0) -> dict:
    """A find_count case; the numeral's span is its `nth` occurrence in the text."""
    if count is None:
        return {"text": text, "expect": None}
    start = -1
    for _ in range(nth + 1):
        start = text.index(numeral, start + 1)
    return {"text": text, "expect": {"count": count, "start": start, "end": start + len(numeral), "noun": noun}}


def count_cases() -> list[dict]:
    cases = []
    for value in range(1, 21):
        for form in ("lower", "title", "upper", "digits"):
            numeral = str(value) if form == "digits" else cased(WORDS[value], form)
            for i, template in enumerate(COUNT_TEMPLATES):
                singular, plural = NOUNS[(value + i) % len(NOUNS)]
                noun = singular if value == 1 else plural
                text = template.format(n=numeral, noun=noun)
                if form == "upper":
                    text, noun = text.upper(), noun.upper()
                cases.append(expect(text, value, numeral if form != "upper" else numeral.upper(), noun))
            if value > 1:
                for template in NOUNLESS_TEMPLATES:
                    cases.append(expect(template.format(n=numeral), value, numeral, None))
                for template, noun_before in NOUN_BEFORE_TEMPLATES:
                    cases.append(expect(template.format(n=numeral), value, numeral, noun_before))
    return cases


def exclusion_cases() -> list[dict]:
    cases = []
    for tag, phrases in EXCLUSIONS.items():
        for phrase in phrases:
            cases.append({**expect(phrase, None), "tag": tag})
            if phrase and phrase[0].isalpha() and phrase[0].islower():  # the same at a sentence start
                cases.append({**expect(phrase[0].upper() + phrase[1:], None), "tag": tag})
    return cases


def replacement_cases() -> list[dict]:
    out = []
    for text, numeral, n, expected in REPLACEMENTS:
        start = text.index(numeral)
        out.append({"text": text, "span": [start, start + len(numeral)], "n": n, "expect": expected})
    return out


def variant_cases() -> list[dict]:
    out = []
    for text, number, form in VARIANTS:
        word = WORDS[number]
        expected = []
        for n in range(2, 11):
            caption = text
            if form == "digits":
                caption = caption.replace(str(number), str(n))
            else:
                for model in (word.upper(), word.capitalize(), word):
                    caption = _replace_word(caption, model, cased(WORDS[n], _case_of(model)))
            expected.append(caption)
        out.append({"text": text, "number": number, "expect": expected})
    return out


def _case_of(model: str) -> str:
    return "upper" if model.isupper() else "title" if model[0].isupper() else "lower"


def _replace_word(text: str, word: str, new: str) -> str:
    """Replace `word` where it stands alone (not inside "twenty-two", "often", "nineteen")."""
    out, i = [], 0
    while True:
        j = text.find(word, i)
        if j < 0:
            return "".join(out) + text[i:]
        alone = (j == 0 or not (text[j - 1].isalnum() or text[j - 1] == "-")) and \
                (j + len(word) == len(text) or not text[j + len(word)].isalnum())
        out.append(text[i:j] + (new if alone else word))
        i = j + len(word)


def build() -> dict:
    return {
        "description": "Shared specification of the count core (countclip.counting.core / server/counts/counts.ts). "
                       "Offsets are Unicode code points. Generated by scripts/generators/gen_count_vectors.py.",
        "find_count": count_cases() + exclusion_cases() + [expect(*case) for case in SPECIAL_COUNTS],
        "replace_count": replacement_cases(),
        "count_variants": variant_cases(),
        "parse_query": [{"text": text, "expect": expected} for text, expected in QUERIES],
        "number_word": [{"n": n, "expect": word} for n, word in enumerate(WORDS)],
        "errors": ERRORS,
    }


def render() -> str:
    return json.dumps(build(), ensure_ascii=False, indent=1) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file differs from what would be written")
    args = parser.parse_args()
    text = render()
    if args.check:
        stale = not OUT.exists() or OUT.read_text("utf-8") != text
        print(f"{OUT.relative_to(ROOT)} is {'stale' if stale else 'up to date'}")
        return 1 if stale else 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(text, "utf-8")
    tmp.replace(OUT)  # atomic: a reader never sees half a file
    data = build()
    print(f"wrote {OUT.relative_to(ROOT)}: " + ", ".join(f"{k} {len(v)}" for k, v in data.items() if isinstance(v, list)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
