"""The count core's vocabulary: every table its rules read, in one place.

Shared with `server/counts/lexicon.ts` word for word; the parity test compares the two
(`lexicon_tables()` here, `lexiconTables()` there). Add a word here and there.
"""

from __future__ import annotations

# ----------------------------------------------------------------------------- lexicon

NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
    "eighteen", "nineteen", "twenty",
)
WORD_VALUES = {word: value for value, word in enumerate(NUMBER_WORDS) if value >= 1}
# Numerals beyond the lexicon: never a count we report, but a rival count when they count
# something ("fifty cats"), and they make compounds ("twenty one", "two hundred").
BIG_WORDS = (
    "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred", "hundreds",
    "thousand", "thousands", "million", "millions", "billion", "billions", "dozen", "dozens",
)
TENS_WORDS = frozenset(("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"))
# Idioms that count, longest first so the alternation prefers them.
IDIOMS = (("half a dozen", 6), ("a couple of", 2), ("a pair of", 2), ("a dozen", 12), ("pair of", 2))
IDIOM_VALUES = dict(IDIOMS)
# "a pair of jeans" is one object.
PAIR_NOUNS = frozenset("""
    binoculars boxers briefs clippers glasses goggles headphones earphones jeans knickers
    leggings overalls pajamas panties pants pliers pyjamas scissors shears shorts slacks
    spectacles sunglasses tights tongs trousers tweezers underpants
""".split())

# ----------------------------------------------------------------------------- context vocabulary
# Words right after a numeral that make it something other than a count.
DURATION_WORDS = frozenset("""
    second seconds sec secs minute minutes min mins hour hours hr hrs h day days week weeks
    wk wks month months mo mos year years yr yrs y decade decades century centuries night
    nights weekend weekends millennium millennia moment moments
""".split())
TIME_WORDS = frozenset("o'clock o’clock oclock am pm a.m p.m".split())
UNIT_WORDS = frozenset("""
    km kms kilometer kilometers kilometre kilometres mile miles mi m meter meters metre metres
    cm mm nm inch inches ft feet foot yd yard yards kg kgs kilo kilos kilogram kilograms g gr
    gram grams mg mcg lb lbs pound pounds oz ounce ounces ton tons tonne tonnes t l liter liters
    litre litres ml cl dl gallon gallons gal quart quarts qt pint pints tbsp tsp teaspoon
    teaspoons tablespoon tablespoons percent pct per degree degrees deg mph kph kmh mp
    megapixel megapixels mpx px pixel pixels dpi gb mb kb tb gig gigs ghz mhz khz hz w watt watts
    kw kwh v volt volts amp amps mah hp horsepower cal kcal calorie calories acre acres hectare
    hectares ha sq cc bpm rpm psi ct carat carats karat karats k point points pts
    x inchs quot
""".split())
MONEY_WORDS = frozenset("""
    dollar dollars buck bucks cent cents euro euros eur usd gbp pence quid yen
    yuan rmb rupee rupees rs franc francs grand bitcoin btc centimos centavos pesos kopeks
""".split())
FRACTION_WORDS = frozenset("""
    half halves third thirds quarter quarters fourth fourths fifth fifths sixth sixths seventh
    sevenths eighth eighths ninth ninths tenth tenths percentile
""".split())
MULTIPLIER_WORDS = frozenset("times fold x ×".split())
# A connector between two numerals makes a range, score, ratio or dimension ("two or three",
# "6 to 4", "2 x 3", "one in five", "two out of ten").
CONNECTOR_WORDS = frozenset("or to x × by in of out and nor vs versus".split())
MONTH_WORDS = frozenset("""
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec
""".split())

# Words right before a numeral.
RANK_WORDS = frozenset("""
    top number no nr num part pt chapter chap ch episode ep season series volume vol book level
    lvl grade stage round step page pg p act scene track version ver v type size room gate
    platform route highway channel phase lesson unit module figure fig table item game match
    lot psalm verse exhibit plate apollo windows iphone ipad galaxy pixel playstation ps xbox
    sonnet symphony opus op class day week year rank ranked ranking place no. issue edition
    mark mk model gen sz
""".split())
APPROX_WORDS = frozenset("""
    about around approximately approx roughly nearly almost over under than least most upto
    circa ca c some maybe perhaps estimated est
""".split())
# Superlatives after a numeral make a list title: "10 Best Places", "The 15 Most Common Mistakes".
SUPERLATIVE_WORDS = frozenset("""
    best most top greatest worst biggest largest smallest easiest simplest coolest cutest
    funniest craziest weirdest strangest finest
""".split())
AGE_WORDS = frozenset("age aged ages".split())
# Words before a numeral that make it a capacity, a place in a sequence or a prize, not what
# the picture shows: "table for two", "his last three starts", "win two tickets".
PURPOSE_WORDS = frozenset("for".split())
# After PURPOSE_WORDS, nouns of a capacity: "a villa for 8 people", "for 5 persons".
CAPACITY_NOUNS = frozenset("people persons guests adults".split())
SEQUENCE_WORDS = frozenset("last previous past".split())
# ... and after it, in the noun phrase: "three previous years", "four consecutive Super Bowls".
SEQUENCE_ADJECTIVES = frozenset("previous consecutive successive".split())
PRIZE_WORDS = frozenset("win wins won winning".split())
GESTURE_WORDS = frozenset("high".split())  # "giving a high five"
MULTIPLIER_PREFIX_WORDS = frozenset("times x ×".split())
PREFIX_SYMBOLS = "$€£¥₹₩#№"
# Words that introduce a count with no noun after it ("set of eight", "pack of 8").
INTRODUCER_WORDS = frozenset("""
    of set sets pack packs box lot group collection bundle kit total all only the these those pair
    with and includes including featuring contains containing has have are were
""".split())
# Words before "one" that make it a pronoun ("the one", "no one", "each one").
ONE_PRONOUN_PREFIX = frozenset("""
    the this that each every no any which another someone anyone first second third last next
    other big little new old right wrong same
""".split())
# Words after "one" that make it not a count ("one of", "one another", "one day").
ONE_NOT_COUNT_NEXT = frozenset("of another more less by way or and on".split())

# Words that end a noun phrase (the noun is before them).
STOP_WORDS = frozenset("""
    a an the this that these those his her its their our my your of in on at with from for by to
    into onto under over near behind between among around against above below inside outside
    beside across along through during after before about and or but nor & is are was were be
    been being has have had do does did will would can could should may might must shall who
    which whom whose where when while what how why as than then there here it they them he she
    we you i me us him not no so if each every all both some any one per via vs versus plus
    sitting standing lying playing walking running looking holding wearing eating posing
    smiling flying swimming hanging waiting laying resting sleeping isolated set pack made
    up down out off away back together alone apart each apiece soon now again too also today
    tomorrow yesterday very just only even still yet ever never always already
""".split())
# The participles among STOP_WORDS: before a plural they describe it ("two smiling girls",
# "four young smiling people"), so there they do not end the noun phrase.
PARTICIPLE_STOPS = frozenset("""
    sitting standing lying playing walking running looking holding wearing eating posing
    smiling flying swimming hanging waiting laying resting sleeping
""".split())
# Singular nouns that, right after a plural numeral, describe the thing that follows: "Two
# Piece Suit", "6 person tent", "two bedroom flat", "18 speed bike", "two way radio".
MODIFIER_NOUNS = frozenset("""
    piece pc bedroom bed bath bathroom room story storey floor door seater person man player
    speed way tone color colour light lane wheel wheeler star step tier layer ply pack part
    level drawer shelf burner slice hole point car family cylinder stroke channel string
    button blade pocket compartment disc disk gang handle ingredient
""".split())
# Nouns that a picture does not show: what listicles, headings and news count ("7 Reasons
# Why", "Three Ways to", "two previous terms", "5 new languages", "the three previous movies").
# Not words that a picture often does show (types, styles, options, signs).
ABSTRACT_NOUNS = frozenset("""
    ways reasons tips ideas things hacks facts lessons rules secrets mistakes tricks benefits
    advantages habits strategies eras terms pleasures methods techniques questions answers
    stories quotes songs albums movies films episodes seasons games matches chapters versions
    editions goals wins victories titles innings starts words categories features principles
    factors trends series plans classes companies firms brands businesses debates elections
    languages apps programs programmes templates pages kinds steps patterns designs sides
    bedrooms bathrooms baths variables concentrations stats statistics nations organizations
    organisations exercises trailers strikes properties countries saves sessions services
    systems roles briefs generations floors storeys spots outs touchdowns runs wickets areas
    regions resources directions positions uses acts videos
""".split())
# Plurals of MODIFIER_NOUNS that, before a singular noun, make the build of one object:
# "Two Pieces Ball Gown", "five burners gas cooker", "5 shelves bookcase" (round 3).
BUILD_PLURALS = frozenset("""
    pieces layers tiers lights seaters burners doors drawers shelves speeds tones ports
""".split())
# Captions longer than this are prose when "including" comes right before a count
# ("Headless animals, including two roosters, discovered ...", round 3).
PROSE_CAPTION = 100
# Variants a product comes in, which a picture shows one of: after digits or a Title Case
# numeral they are not counted ("5 Colors", "3 Sizes", "Available in 5 colors"); "six colors
# of paint" in running text are.
VARIANT_NOUNS = frozenset("""
    colors colours sizes variants styles options flavors flavours versions varieties shades
""".split())
# Words of news and events: the count is of what happened, not of the picture ("two killed",
# "nine hurt", "3 terrorists holed up", "two men arrested").
EVENT_WORDS = frozenset("""
    killed dead die died dies dying hurt injured wounded arrested charged jailed sentenced
    convicted missing rescued evacuated hospitalised hospitalized detained involved accused
    suspected wanted holed stabbed murdered drowned kidnapped abducted fined banned
    suspended fired sacked elected nominated honored honoured killing robbed
""".split())
# Words right after a listicle's counted noun: "5 Foods That Boost", "7 Stats You Need".
LISTICLE_NEXT_WORDS = frozenset("that to you your which why how every everyone ever".split())
# Words for a picture, which "of" and a Title Case count may follow ("Photograph of Two
# Members"); any other capitalised word before "of" makes a title ("A Tale of Two Cities").
PICTURE_WORDS = frozenset("""
    photo photos photograph photographs picture pictures image images portrait portraits
    painting paintings drawing drawings print prints poster posters illustration illustrations
    sketch study studies view scene figure figures statue sculpture art canvas card cards mug
    pillow towel magnet shirt figurine stock vector footage photography clipart
""".split())
# "by" and a capitalised name after a Title Case count, in a caption with no PICTURE_WORDS
# word, make it a book's title ("Six Armies in Normandy by John Keegan"); with one, an
# artwork's, which shows what it counts ("Three Boys in a Dory Print by Winslow Homer").
AUTHOR_WORDS = frozenset("by".split())
TITLE_PREPOSITIONS = frozenset("of between".split())
# "Napkins - Set of 4", "Stamps (Set of 5)", "Chair (Pack of Two)": a set's count with nothing
# after it counts the nearest plural before the set, among SET_NOUN_TOKENS tokens; so does a
# pack's with only the pack word after it ("Greeting Cards (10 Pack)", "Blowouts (8 Count)").
SET_WORDS = frozenset("set sets pack packs box lot bundle kit case".split())
SET_NOUN_TOKENS = 8
# Without a plural there, the nearest singular noun, but only when the set or pack starts a
# segment of the caption, after one of SET_SEPARATORS ("Dining Chair (Set of 2)", "Tumbler
# Large - Set of 2", "Clear Bowl, Set of Four"): run into the text ("LE 3 Pack 60 LEDs", "high
# quality 10pcs") the word before it is seldom the product.
SET_SEPARATORS = "(-–—,:;|["
# A count this many code points (and more than STORY_WORDS words) into a caption longer than
# LONG_CAPTION is in a story (news, blog prose), not the picture's: "... Saturday, February 27.
# The ordeal started when officers saw two males ...".
STORY_START = 120
STORY_WORDS = 16
LONG_CAPTION = 250
# Round 4 (issue 21): words that make a sentence finite before a count, in a caption longer
# than PROSE_CAPTION with no PICTURE_WORDS word: prose about the count, not a picture's
# caption ("This delicious cake is made by combining two favorite recipes", "Cruella and
# Goddess are two UK produced magazines", "The RCMP ... say they responded ... after three
# ... crews"). A count before them is the sentence's subject and stays.
FINITE_WORDS = frozenset("""
    is are was were has have had says say said will would could should
""".split())
# Words before a FINITE_WORDS word that present the picture ("There are two", "Pictured are
# three"): the count after them is what the picture shows.
PRESENTING_WORDS = frozenset("there here pictured shown seen".split())
# Singular people nouns after a plural numeral, in stock-photo English ("Two beautiful young
# woman shopping", "two young isolated business woman"): counted as written (round 4).
PERSON_SINGULARS = frozenset("woman man boy girl child person lady".split())
# Words right after a numeral that say it counts the items of a pack: "3 Pack Socks", "8 pack
# of stock pots", "5 Pcs Toy Set"; the noun after them may be singular ("8 pack stock pot").
PACK_WORDS = frozenset("pack packs pk pkg pcs count".split())
# After "per" or a slash, words that make the numeral a pack's count ("2 Per Pack", "5/pkg",
# "12/Case"), whose noun is then the one before it; "5 per day" stays a measure.
PER_PACK_WORDS = frozenset("pack packs pk pkg pcs count set box case bag carton ctn lot bundle kit".split())
# The last code point of the word before a numeral that parts the two: "Scene: Three young
# boys", "Around the table, four dining stools". PREV_WORD_REASONS (ranks, approximations, ...)
# do not reach across it.
PREV_WORD_SEPARATORS = ":;,"
# Pack words glued to digits: "10pcs", "3PCS", "6pack" count as "10 pcs". A numeral of digits
# may end where one of these starts (NUMERAL_RE), and the mining pre-filter passes them.
GLUED_PACK_WORDS = ("pcs", "pk", "pack", "packs")
# Adjectives are not part of the noun ("three light brown dogs" -> "dogs", "light bulbs" keeps "light").
ADJECTIVES = frozenset("""
    big small little large tiny huge giant tall short long wide narrow thick thin fat old new
    young ancient modern vintage retro antique classic cute beautiful pretty lovely adorable
    happy sad funny angry good bad great best better nice fine cool hot warm cold fresh ripe raw
    white black red green blue yellow orange purple pink brown gray grey golden gold silver
    dark bright colorful colourful colored coloured multicolored different same other various
    assorted identical similar separate individual matching more many several few empty full
    wild wooden metal plastic glass paper ceramic leather cotton round square flat striped
    spotted dotted plain simple fancy elegant luxury cheap expensive real fake whole main
    traditional stylish tropical heavy soft hard wet dry clean dirty sweet sour spicy tasty
    delicious healthy organic natural handmade homemade custom original unique rare famous
    favorite favourite popular amazing stunning gorgeous sleek shiny fluffy furry hairy
    smiling sleeping running standing sitting male female adult baby teen senior elderly
    cartoon realistic isolated diverse multiple tall various own first last next final
    upper lower left right top bottom front back middle inner outer open closed
""".split())
# Nouns that look like participles ("one wedding ring" counts a ring).
ING_ED_NOUNS = frozenset("""
    king ring wing thing swing string spring sling building painting drawing wedding pudding
    ceiling earring dumpling sapling seedling duckling bed shed sled seed reed
""".split())
# Adjectives that are also count nouns: "one glass" counts a glass, "one red" does not.
NOUN_ADJECTIVES = frozenset("""
    glass metal paper gold silver plastic leather cotton orange baby adult male female senior
    teen cartoon square round top bottom back front giant classic antique
""".split())
ADJECTIVE_SUFFIXES = ("ed", "ing", "ful", "ous", "ive", "ish", "less", "able", "ible", "ic", "ical", "al", "ian", "ese", "ary")

# Irregular plurals (plural -> singular); invariant nouns map to themselves.
IRREGULAR_PLURALS = {
    "men": "man", "women": "woman", "children": "child", "people": "person", "feet": "foot",
    "teeth": "tooth", "mice": "mouse", "geese": "goose", "dice": "die", "oxen": "ox", "lice": "louse",
    "knives": "knife", "wives": "wife", "lives": "life", "leaves": "leaf", "loaves": "loaf",
    "halves": "half", "wolves": "wolf", "shelves": "shelf", "calves": "calf", "thieves": "thief",
    "elves": "elf", "scarves": "scarf", "hooves": "hoof", "selves": "self", "cacti": "cactus",
    "fungi": "fungus", "criteria": "criterion", "phenomena": "phenomenon", "bacteria": "bacterium",
    "sheep": "sheep", "fish": "fish", "deer": "deer", "series": "series", "species": "species",
    "moose": "moose", "aircraft": "aircraft", "bison": "bison", "salmon": "salmon", "trout": "trout",
    "shrimp": "shrimp", "swine": "swine", "cattle": "cattle", "police": "police", "moai": "moai",
    "buses": "bus", "lenses": "lens", "gases": "gas", "bonuses": "bonus", "viruses": "virus",
    "campuses": "campus", "circuses": "circus", "walruses": "walrus", "octopuses": "octopus",
    "cactuses": "cactus", "geniuses": "genius", "choruses": "chorus", "quizzes": "quiz",
    "potatoes": "potato", "tomatoes": "tomato", "heroes": "hero", "echoes": "echo",
    "mangoes": "mango", "volcanoes": "volcano", "torpedoes": "torpedo", "buffaloes": "buffalo",
    "dominoes": "domino", "mosquitoes": "mosquito", "vetoes": "veto", "axes": "axe",
}
IRREGULAR_SINGULARS = {singular: plural for plural, singular in IRREGULAR_PLURALS.items()}
# Words ending in "s" that are not plurals.
NOT_PLURAL = frozenset("""
    glass grass class bus gas lens plus news series species chess dress cross boss moss mass
    kiss bass brass this is was has his its us yes thus always perhaps cos physics mathematics
    specimen abdomen stamen semen ramen lumen yemen regimen bitumen albumen
""".split())
# "-man" nouns whose plural is "-mans".
MAN_NOUNS_WITH_S = frozenset("human german roman shaman talisman caiman cayman ottoman walkman doberman".split())
# "-ie" nouns whose plural is "-ies" but whose singular is not "-y".
IE_NOUNS = frozenset("""
    movie cookie pie tie lie die zombie hippie rookie goalie selfie smoothie brownie hoodie
    beanie genie sweetie calorie prairie aussie collie birdie pixie auntie bookie budgie
    cutie veggie nightie newbie freebie boogie hottie junkie yuppie
""".split())

# Punctuation stripped from the words around a numeral.
PUNCT = "\"'()[]{}<>,.;:!?*_~`|/\\-–—‘’“”«»…"
SENTENCE_END = ".!?:;|"
# Code points of a "word" for numeral boundaries: ASCII letters and digits, the underscore,
# combining diacritics, and the Latin, Greek and Cyrillic letter blocks. A fixed table (not
# the runtime's Unicode database) so Python and JavaScript agree on every input.
WORD_CHARS = "0-9A-Za-z_\u00aa\u00b5\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02af\u0300-\u036f\u0370-\u03ff\u0400-\u052f\u1e00-\u1fff"
LEFT_WINDOW = 40  # code points before a numeral that its left words are read from



def lexicon_tables() -> dict:
    """The tables as plain JSON (sets as sorted lists), for the cross-language parity test."""
    sets = {
        "pair_nouns": PAIR_NOUNS, "duration_words": DURATION_WORDS, "time_words": TIME_WORDS,
        "unit_words": UNIT_WORDS, "money_words": MONEY_WORDS, "fraction_words": FRACTION_WORDS,
        "multiplier_words": MULTIPLIER_WORDS, "connector_words": CONNECTOR_WORDS,
        "month_words": MONTH_WORDS, "rank_words": RANK_WORDS, "approx_words": APPROX_WORDS,
        "age_words": AGE_WORDS, "superlative_words": SUPERLATIVE_WORDS, "multiplier_prefix_words": MULTIPLIER_PREFIX_WORDS,
        "introducer_words": INTRODUCER_WORDS, "one_pronoun_prefix": ONE_PRONOUN_PREFIX,
        "one_not_count_next": ONE_NOT_COUNT_NEXT, "stop_words": STOP_WORDS, "adjectives": ADJECTIVES,
        "ing_ed_nouns": ING_ED_NOUNS, "modifier_nouns": MODIFIER_NOUNS, "noun_adjectives": NOUN_ADJECTIVES, "not_plural": NOT_PLURAL, "ie_nouns": IE_NOUNS,
        "man_nouns_with_s": MAN_NOUNS_WITH_S,
        # issue 21's shapes of web alt text
        "purpose_words": PURPOSE_WORDS, "capacity_nouns": CAPACITY_NOUNS, "sequence_words": SEQUENCE_WORDS,
        "sequence_adjectives": SEQUENCE_ADJECTIVES,
        "prize_words": PRIZE_WORDS, "gesture_words": GESTURE_WORDS, "variant_nouns": VARIANT_NOUNS,
        "listicle_next_words": LISTICLE_NEXT_WORDS, "set_words": SET_WORDS, "picture_words": PICTURE_WORDS,
        "title_prepositions": TITLE_PREPOSITIONS, "author_words": AUTHOR_WORDS, "abstract_nouns": ABSTRACT_NOUNS,
        "participle_stops": PARTICIPLE_STOPS, "finite_words": FINITE_WORDS,
        "presenting_words": PRESENTING_WORDS, "person_singulars": PERSON_SINGULARS, "build_plurals": BUILD_PLURALS, "event_words": EVENT_WORDS, "pack_words": PACK_WORDS,
        "glued_pack_words": frozenset(GLUED_PACK_WORDS), "per_pack_words": PER_PACK_WORDS,
        "punct": frozenset(PUNCT), "sentence_end": frozenset(SENTENCE_END),
        "prev_word_separators": frozenset(PREV_WORD_SEPARATORS), "set_separators": frozenset(SET_SEPARATORS),
    }
    tables: dict[str, object] = {name: sorted(values) for name, values in sets.items()}
    tables.update(
        number_words=list(NUMBER_WORDS), big_words=list(BIG_WORDS), idioms=[list(i) for i in IDIOMS],
        adjective_suffixes=list(ADJECTIVE_SUFFIXES), irregular_plurals=dict(IRREGULAR_PLURALS),
        prefix_symbols=PREFIX_SYMBOLS, word_chars=WORD_CHARS, left_window=LEFT_WINDOW,
        set_noun_tokens=SET_NOUN_TOKENS, prose_caption=PROSE_CAPTION, story_start=STORY_START, story_words=STORY_WORDS, long_caption=LONG_CAPTION,
    )
    return tables
