/**
 * The count core's vocabulary: every table its rules read, in one place.
 *
 * Shared with `training/countclip/counting/lexicon.py` word for word; the parity test compares
 * the two (`lexiconTables()` here, `lexicon_tables()` there). Add a word here and there.
 */

const words = (s: string): string[] => s.split(/\s+/).filter((w) => w.length > 0);
const wordSet = (s: string): ReadonlySet<string> => new Set(words(s));

// ---------------------------------------------------------------------------- lexicon

export const NUMBER_WORDS: readonly string[] = words(`
  zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
  fifteen sixteen seventeen eighteen nineteen twenty`);
export const WORD_VALUES: ReadonlyMap<string, number> = new Map(
  NUMBER_WORDS.slice(1).map((word, i): [string, number] => [word, i + 1]),
);
// Numerals beyond the lexicon: never a count we report, but a rival count when they count
// something ("fifty cats"), and they make compounds ("twenty one", "two hundred").
export const BIG_WORDS: readonly string[] = words(`
  thirty forty fifty sixty seventy eighty ninety hundred hundreds thousand thousands million
  millions billion billions dozen dozens`);
export const BIG_WORD_SET = new Set(BIG_WORDS);
export const TENS_WORDS = wordSet("twenty thirty forty fifty sixty seventy eighty ninety");
export const IDIOMS: ReadonlyArray<readonly [string, number]> = [
  ["half a dozen", 6],
  ["a couple of", 2],
  ["a pair of", 2],
  ["a dozen", 12],
  ["pair of", 2],
];
export const IDIOM_VALUES: ReadonlyMap<string, number> = new Map(IDIOMS);
// "a pair of jeans" is one object.
export const PAIR_NOUNS = wordSet(`
  binoculars boxers briefs clippers glasses goggles headphones earphones jeans knickers
  leggings overalls pajamas panties pants pliers pyjamas scissors shears shorts slacks
  spectacles sunglasses tights tongs trousers tweezers underpants`);

// ---------------------------------------------------------------------------- context vocabulary
// Words right after a numeral that make it something other than a count.
export const DURATION_WORDS = wordSet(`
  second seconds sec secs minute minutes min mins hour hours hr hrs h day days week weeks
  wk wks month months mo mos year years yr yrs y decade decades century centuries night
  nights weekend weekends millennium millennia moment moments`);
export const TIME_WORDS = wordSet("o'clock o’clock oclock am pm a.m p.m");
export const UNIT_WORDS = wordSet(`
  km kms kilometer kilometers kilometre kilometres mile miles mi m meter meters metre metres
  cm mm nm inch inches ft feet foot yd yard yards kg kgs kilo kilos kilogram kilograms g gr
  gram grams mg mcg lb lbs pound pounds oz ounce ounces ton tons tonne tonnes t l liter liters
  litre litres ml cl dl gallon gallons gal quart quarts qt pint pints tbsp tsp teaspoon
  teaspoons tablespoon tablespoons percent pct per degree degrees deg mph kph kmh mp
  megapixel megapixels mpx px pixel pixels dpi gb mb kb tb gig gigs ghz mhz khz hz w watt watts
  kw kwh v volt volts amp amps mah hp horsepower cal kcal calorie calories acre acres hectare
  hectares ha sq cc bpm rpm psi ct carat carats karat karats k point points pts
  x inchs quot`);
export const MONEY_WORDS = wordSet(`
  dollar dollars buck bucks cent cents euro euros eur usd gbp pence quid yen yuan rmb rupee
  rupees rs franc francs grand bitcoin btc centimos centavos pesos kopeks`);
export const FRACTION_WORDS = wordSet(`
  half halves third thirds quarter quarters fourth fourths fifth fifths sixth sixths seventh
  sevenths eighth eighths ninth ninths tenth tenths percentile`);
export const MULTIPLIER_WORDS = wordSet("times fold x ×");
// A connector between two numerals makes a range, score, ratio or dimension.
export const CONNECTOR_WORDS = wordSet("or to x × by in of out and nor vs versus");
export const MONTH_WORDS = wordSet(`
  january february march april may june july august september october november december
  jan feb mar apr jun jul aug sep sept oct nov dec`);

// Words right before a numeral.
export const RANK_WORDS = wordSet(`
  top number no nr num part pt chapter chap ch episode ep season series volume vol book level
  lvl grade stage round step page pg p act scene track version ver v type size room gate
  platform route highway channel phase lesson unit module figure fig table item game match
  lot psalm verse exhibit plate apollo windows iphone ipad galaxy pixel playstation ps xbox
  sonnet symphony opus op class day week year rank ranked ranking place no. issue edition
  mark mk model gen sz`);
export const APPROX_WORDS = wordSet(`
  about around approximately approx roughly nearly almost over under than least most upto
  circa ca c some maybe perhaps estimated est`);
// Superlatives after a numeral make a list title: "10 Best Places", "The 15 Most Common Mistakes".
export const SUPERLATIVE_WORDS = wordSet(`
  best most top greatest worst biggest largest smallest easiest simplest coolest cutest
  funniest craziest weirdest strangest finest`);
export const AGE_WORDS = wordSet("age aged ages");
// Words before a numeral that make it a capacity, a place in a sequence or a prize, not what
// the picture shows: "table for two", "his last three starts", "win two tickets".
export const PURPOSE_WORDS = wordSet("for");
// After PURPOSE_WORDS, nouns of a capacity: "a villa for 8 people", "for 5 persons".
export const CAPACITY_NOUNS = wordSet("people persons guests adults");
export const SEQUENCE_WORDS = wordSet("last previous past");
// ... and after it, in the noun phrase: "three previous years", "four consecutive Super Bowls".
export const SEQUENCE_ADJECTIVES = wordSet("previous consecutive successive");
export const PRIZE_WORDS = wordSet("win wins won winning");
export const GESTURE_WORDS = wordSet("high"); // "giving a high five"
export const MULTIPLIER_PREFIX_WORDS = wordSet("times x ×");
export const PREFIX_SYMBOLS = "$€£¥₹₩#№";
// Words that introduce a count with no noun after it ("set of eight", "pack of 8").
export const INTRODUCER_WORDS = wordSet(`
  of set sets pack packs box lot group collection bundle kit total all only the these those pair
  with and includes including featuring contains containing has have are were`);
// Words before "one" that make it a pronoun ("the one", "no one", "each one").
export const ONE_PRONOUN_PREFIX = wordSet(`
  the this that each every no any which another someone anyone first second third last next
  other big little new old right wrong same`);
// Words after "one" that make it not a count ("one of", "one another", "one day").
export const ONE_NOT_COUNT_NEXT = wordSet("of another more less by way or and on");

// Words that end a noun phrase (the noun is before them).
export const STOP_WORDS = wordSet(`
  a an the this that these those his her its their our my your of in on at with from for by to
  into onto under over near behind between among around against above below inside outside
  beside across along through during after before about and or but nor & is are was were be
  been being has have had do does did will would can could should may might must shall who
  which whom whose where when while what how why as than then there here it they them he she
  we you i me us him not no so if each every all both some any one per via vs versus plus
  sitting standing lying playing walking running looking holding wearing eating posing
  smiling flying swimming hanging waiting laying resting sleeping isolated set pack made
  up down out off away back together alone apart each apiece soon now again too also today
  tomorrow yesterday very just only even still yet ever never always already`);
// The participles among STOP_WORDS: before a plural they describe it ("two smiling girls",
// "four young smiling people"), so there they do not end the noun phrase.
export const PARTICIPLE_STOPS = wordSet(`
  sitting standing lying playing walking running looking holding wearing eating posing
  smiling flying swimming hanging waiting laying resting sleeping`);
// Singular nouns that, right after a plural numeral, describe the thing that follows: "Two
// Piece Suit", "6 person tent", "two bedroom flat", "18 speed bike", "two way radio".
export const MODIFIER_NOUNS = wordSet(`
  piece pc bedroom bed bath bathroom room story storey floor door seater person man player
  speed way tone color colour light lane wheel wheeler star step tier layer ply pack part
  level drawer shelf burner slice hole point car family cylinder stroke channel string
  button blade pocket compartment disc disk gang handle ingredient`);
// Nouns that a picture does not show: what listicles, headings and news count ("7 Reasons
// Why", "Three Ways to", "two previous terms", "5 new languages", "the three previous movies").
// Not words that a picture often does show (types, styles, options, signs).
export const ABSTRACT_NOUNS = wordSet(`
  ways reasons tips ideas things hacks facts lessons rules secrets mistakes tricks benefits
  advantages habits strategies eras terms pleasures methods techniques questions answers
  stories quotes songs albums movies films episodes seasons games matches chapters versions
  editions goals wins victories titles innings starts words categories features principles
  factors trends series plans classes companies firms brands businesses debates elections
  languages apps programs programmes templates pages kinds steps patterns designs sides
  bedrooms bathrooms baths variables concentrations stats statistics nations organizations
  organisations exercises trailers strikes properties countries saves sessions services
  systems roles briefs generations floors storeys spots outs touchdowns runs wickets areas
  regions resources directions positions uses acts videos`);
// Words of news and events: the count is of what happened, not of the picture ("two killed",
// "nine hurt", "3 terrorists holed up", "two men arrested").
export const EVENT_WORDS = wordSet(`
  killed dead die died dies dying hurt injured wounded arrested charged jailed sentenced
  convicted missing rescued evacuated hospitalised hospitalized detained involved accused
  suspected wanted holed stabbed murdered drowned kidnapped abducted fined banned suspended
  fired sacked elected nominated honored honoured killing robbed`);
// Variants a product comes in, which a picture shows one of: after digits or a Title Case
// numeral they are not counted ("5 Colors", "3 Sizes", "Available in 5 colors"); "six colors
// of paint" in running text are.
// Plurals of MODIFIER_NOUNS that, before a singular noun, make the build of one object:
// "Two Pieces Ball Gown", "five burners gas cooker", "5 shelves bookcase" (round 3).
export const BUILD_PLURALS = wordSet("pieces layers tiers lights seaters burners doors drawers shelves speeds tones ports");
// Captions longer than this are prose when "including" comes right before a count
// ("Headless animals, including two roosters, discovered ...", round 3).
export const PROSE_CAPTION = 100;
// Round 4: finite verbs and auxiliaries before a count in prose; words that present the
// picture before them ("There are two"); singular people nouns after a plural number word.
export const FINITE_WORDS = wordSet("is are was were has have had says say said will would could should");
export const PRESENTING_WORDS = wordSet("there here pictured shown seen");
export const PERSON_SINGULARS = wordSet("woman man boy girl child person lady");
export const VARIANT_NOUNS = wordSet("colors colours sizes variants styles options flavors flavours versions varieties shades");
// Words right after a listicle's counted noun: "5 Foods That Boost", "7 Stats You Need".
export const LISTICLE_NEXT_WORDS = wordSet("that to you your which why how every everyone ever");
// Words for a picture, which "of" and a Title Case count may follow ("Photograph of Two
// Members"); any other capitalised word before "of" makes a title ("A Tale of Two Cities").
export const PICTURE_WORDS = wordSet(`
  photo photos photograph photographs picture pictures image images portrait portraits
  painting paintings drawing drawings print prints poster posters illustration
  illustrations sketch study studies view scene figure figures statue sculpture art canvas
  card cards mug pillow towel magnet shirt figurine stock vector footage photography clipart`);
export const TITLE_PREPOSITIONS = wordSet("of between");
// "by" and a capitalised name after a Title Case count, in a caption with no PICTURE_WORDS
// word, make it a book's title ("Six Armies in Normandy by John Keegan"); with one, an
// artwork's, which shows what it counts ("Three Boys in a Dory Print by Winslow Homer").
export const AUTHOR_WORDS = wordSet("by");
// "Napkins - Set of 4", "Stamps (Set of 5)", "Chair (Pack of Two)": a set's count with nothing
// after it counts the nearest plural before the set, among SET_NOUN_TOKENS tokens; so does a
// pack's with only the pack word after it ("Greeting Cards (10 Pack)", "Blowouts (8 Count)").
export const SET_WORDS = wordSet("set sets pack packs box lot bundle kit case");
export const SET_NOUN_TOKENS = 8;
// Without a plural there, the nearest singular noun, but only when the set or pack starts a
// segment of the caption, after one of SET_SEPARATORS ("Dining Chair (Set of 2)", "Tumbler
// Large - Set of 2", "Clear Bowl, Set of Four"): run into the text ("LE 3 Pack 60 LEDs", "high
// quality 10pcs") the word before it is seldom the product.
export const SET_SEPARATORS = new Set("(-–—,:;|[");
// A count this many code points (and more than STORY_WORDS words) into a caption longer than
// LONG_CAPTION is in a story (news, blog prose), not the picture's: "... Saturday, February 27.
// The ordeal started when officers saw two males ...".
export const STORY_START = 120;
export const STORY_WORDS = 16;
export const LONG_CAPTION = 250;
// Words right after a numeral that say it counts the items of a pack: "3 Pack Socks", "8 pack
// of stock pots", "5 Pcs Toy Set"; the noun after them may be singular ("8 pack stock pot").
export const PACK_WORDS = wordSet("pack packs pk pkg pcs count");
// Pack words glued to digits: "10pcs", "3PCS", "6pack" count as "10 pcs". A numeral of digits
// may end where one of these starts (NUMERAL_RE), and the mining pre-filter passes them.
export const GLUED_PACK_WORDS: readonly string[] = ["pcs", "pk", "pack", "packs"];
// After "per" or a slash, words that make the numeral a pack's count ("2 Per Pack", "5/pkg",
// "12/Case"), whose noun is then the one before it; "5 per day" stays a measure.
export const PER_PACK_WORDS = wordSet("pack packs pk pkg pcs count set box case bag carton ctn lot bundle kit");
// The last code point of the word before a numeral that parts the two: "Scene: Three young
// boys", "Around the table, four dining stools". PREV_WORD_REASONS (ranks, approximations, ...)
// do not reach across it.
export const PREV_WORD_SEPARATORS = new Set(":;,");
// Adjectives are not part of the noun ("three light brown dogs" -> "dogs").
export const ADJECTIVES = wordSet(`
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
  upper lower left right top bottom front back middle inner outer open closed`);
// Nouns that look like participles ("one wedding ring" counts a ring).
export const ING_ED_NOUNS = wordSet(`
  king ring wing thing swing string spring sling building painting drawing wedding pudding
  ceiling earring dumpling sapling seedling duckling bed shed sled seed reed`);
// Adjectives that are also count nouns: "one glass" counts a glass, "one red" does not.
export const NOUN_ADJECTIVES = wordSet(`
  glass metal paper gold silver plastic leather cotton orange baby adult male female senior
  teen cartoon square round top bottom back front giant classic antique`);
export const ADJECTIVE_SUFFIXES = words("ed ing ful ous ive ish less able ible ic ical al ian ese ary");

// Irregular plurals (plural -> singular); invariant nouns map to themselves.
export const IRREGULAR_PLURALS: ReadonlyMap<string, string> = new Map(
  Object.entries({
    men: "man", women: "woman", children: "child", people: "person", feet: "foot",
    teeth: "tooth", mice: "mouse", geese: "goose", dice: "die", oxen: "ox", lice: "louse",
    knives: "knife", wives: "wife", lives: "life", leaves: "leaf", loaves: "loaf",
    halves: "half", wolves: "wolf", shelves: "shelf", calves: "calf", thieves: "thief",
    elves: "elf", scarves: "scarf", hooves: "hoof", selves: "self", cacti: "cactus",
    fungi: "fungus", criteria: "criterion", phenomena: "phenomenon", bacteria: "bacterium",
    sheep: "sheep", fish: "fish", deer: "deer", series: "series", species: "species",
    moose: "moose", aircraft: "aircraft", bison: "bison", salmon: "salmon", trout: "trout",
    shrimp: "shrimp", swine: "swine", cattle: "cattle", police: "police", moai: "moai",
    buses: "bus", lenses: "lens", gases: "gas", bonuses: "bonus", viruses: "virus",
    campuses: "campus", circuses: "circus", walruses: "walrus", octopuses: "octopus",
    cactuses: "cactus", geniuses: "genius", choruses: "chorus", quizzes: "quiz",
    potatoes: "potato", tomatoes: "tomato", heroes: "hero", echoes: "echo",
    mangoes: "mango", volcanoes: "volcano", torpedoes: "torpedo", buffaloes: "buffalo",
    dominoes: "domino", mosquitoes: "mosquito", vetoes: "veto", axes: "axe",
  }),
);
export const IRREGULAR_SINGULARS: ReadonlyMap<string, string> = new Map(
  [...IRREGULAR_PLURALS].map(([plural, singular]): [string, string] => [singular, plural]),
);
// Words ending in "s" that are not plurals.
export const NOT_PLURAL = wordSet(`
  glass grass class bus gas lens plus news series species chess dress cross boss moss mass
  kiss bass brass this is was has his its us yes thus always perhaps cos physics mathematics
  specimen abdomen stamen semen ramen lumen yemen regimen bitumen albumen`);
// "-man" nouns whose plural is "-mans".
export const MAN_NOUNS_WITH_S = wordSet("human german roman shaman talisman caiman cayman ottoman walkman doberman");
// "-ie" nouns whose plural is "-ies" but whose singular is not "-y".
export const IE_NOUNS = wordSet(`
  movie cookie pie tie lie die zombie hippie rookie goalie selfie smoothie brownie hoodie
  beanie genie sweetie calorie prairie aussie collie birdie pixie auntie bookie budgie
  cutie veggie nightie newbie freebie boogie hottie junkie yuppie`);

// Punctuation stripped from the words around a numeral.
export const PUNCT = new Set("\"'()[]{}<>,.;:!?*_~`|/\\-–—‘’“”«»…");
export const SENTENCE_END = new Set(".!?:;|");
// Code points of a "word" for numeral boundaries: a fixed table, identical to Python's.
export const WORD_CHARS =
  "0-9A-Za-z_\u00aa\u00b5\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u02af\u0300-\u036f\u0370-\u03ff\u0400-\u052f\u1e00-\u1fff";
export const LEFT_WINDOW = 40; // code points before a numeral that its left words are read from
// Python's str.split() whitespace (str.isspace), so both languages cut the same tokens.
export const PY_WHITESPACE = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;

/** All tables, for the cross-language parity test (sorted lists, as Python's LEXICON). */
export const LEXICON: Record<string, unknown> = {
  number_words: [...NUMBER_WORDS],
  big_words: [...BIG_WORDS],
  idioms: IDIOMS.map(([phrase, value]) => [phrase, value]),
  pair_nouns: PAIR_NOUNS, duration_words: DURATION_WORDS, time_words: TIME_WORDS, unit_words: UNIT_WORDS,
  money_words: MONEY_WORDS, fraction_words: FRACTION_WORDS, multiplier_words: MULTIPLIER_WORDS,
  connector_words: CONNECTOR_WORDS, month_words: MONTH_WORDS, rank_words: RANK_WORDS,
  approx_words: APPROX_WORDS, age_words: AGE_WORDS, superlative_words: SUPERLATIVE_WORDS, multiplier_prefix_words: MULTIPLIER_PREFIX_WORDS,
  prefix_symbols: PREFIX_SYMBOLS, introducer_words: INTRODUCER_WORDS, one_pronoun_prefix: ONE_PRONOUN_PREFIX,
  one_not_count_next: ONE_NOT_COUNT_NEXT, stop_words: STOP_WORDS, adjectives: ADJECTIVES,
  ing_ed_nouns: ING_ED_NOUNS, modifier_nouns: MODIFIER_NOUNS, noun_adjectives: NOUN_ADJECTIVES, adjective_suffixes: ADJECTIVE_SUFFIXES,
  irregular_plurals: Object.fromEntries(IRREGULAR_PLURALS), not_plural: NOT_PLURAL, ie_nouns: IE_NOUNS,
  man_nouns_with_s: MAN_NOUNS_WITH_S,
  sequence_adjectives: SEQUENCE_ADJECTIVES,
  purpose_words: PURPOSE_WORDS, capacity_nouns: CAPACITY_NOUNS, sequence_words: SEQUENCE_WORDS, prize_words: PRIZE_WORDS,
  abstract_nouns: ABSTRACT_NOUNS, participle_stops: PARTICIPLE_STOPS, finite_words: FINITE_WORDS,
  presenting_words: PRESENTING_WORDS, person_singulars: PERSON_SINGULARS, build_plurals: BUILD_PLURALS, event_words: EVENT_WORDS, pack_words: PACK_WORDS,
  glued_pack_words: new Set(GLUED_PACK_WORDS), per_pack_words: PER_PACK_WORDS,
  prev_word_separators: PREV_WORD_SEPARATORS, set_separators: SET_SEPARATORS,
  gesture_words: GESTURE_WORDS, variant_nouns: VARIANT_NOUNS, author_words: AUTHOR_WORDS,
  listicle_next_words: LISTICLE_NEXT_WORDS, picture_words: PICTURE_WORDS, title_prepositions: TITLE_PREPOSITIONS,
  set_words: SET_WORDS,
  punct: PUNCT, sentence_end: SENTENCE_END, word_chars: WORD_CHARS, left_window: LEFT_WINDOW,
  set_noun_tokens: SET_NOUN_TOKENS, prose_caption: PROSE_CAPTION, story_start: STORY_START, story_words: STORY_WORDS, long_caption: LONG_CAPTION,
};

/** The tables as plain JSON (sets as sorted lists), for the cross-language parity test. */
export function lexiconTables(): Record<string, unknown> {
  const plain = (value: unknown): unknown => {
    if (value instanceof Set) return [...value].sort();
    if (value instanceof Map) return Object.fromEntries(value);
    return value;
  };
  return Object.fromEntries(Object.entries(LEXICON).map(([name, value]) => [name, plain(value)]));
}
