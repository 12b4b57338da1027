/* countclip.counting._fastcount: `find_count`'s decision in C, for mining web-scale captions.
 *
 * A line-by-line port of the decision that `countclip/counting/core.py` makes in `find_count`
 * (which numerals count, what they count, whether they agree). It answers only (value,
 * noun): the reasons behind an abstention, offsets and rewriting stay in Python. Every
 * vocabulary comes from Python at `configure()` (lexicon.py and the sets core.py composes
 * from it), so the tables have one source; the rules are code here and in core.py, and
 * `countclip/counting/fastcount.py` refuses this module unless core.py is the very file it
 * was ported from (its SHA-256), so an edited rule cannot drift unseen.
 *
 * Entry points: `count_many` (a list of str); `count_utf8` and `filter_count_utf8` (an
 * Arrow string array read in place; the latter first applies the mining pre-filter, RE2's
 * pattern decided on the bytes); `sampling_keys` (keyed BLAKE2b of two Arrow arrays, as
 * hashlib computes it); `configure`, `configure_prefilter`, `features`.
 *
 * Text is handled as code points (offsets, windows and lengths are code points in Python),
 * with CPython's own predicates where Python calls str methods (isspace, isupper, isalpha),
 * so every caption gets the answer find_count gives, not only ASCII ones. Names follow
 * core.py's where they can (_quiet -> quiet, _is_plural -> is_plural, _context ->
 * read_context). Parity: training/tests/test_fastcount.py.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

typedef Py_UCS4 cp;

/* ------------------------------------------------------------------ word table */
/* One open-addressing table: word (code points) -> bit set of the vocabularies holding it. */

typedef uint64_t wflags;  /* a word's vocabularies, one bit each */
#define W_LEXNUM (1ull << 0)  /* _LEXICON_NUMERALS */
#define W_NOUN_ENDER (1ull << 1)  /* NOUN_PHRASE_ENDERS */
#define W_NEXT_REASON (1ull << 2)  /* NEXT_WORD_REASONS */
#define W_PREV_REASON (1ull << 3)  /* PREV_WORD_REASONS */
#define W_MONTH (1ull << 4)
#define W_SUPERLATIVE (1ull << 5)
#define W_ONE_NOT_COUNT_NEXT (1ull << 6)
#define W_CONNECTOR (1ull << 7)
#define W_TENS (1ull << 8)
#define W_ONE_PRONOUN_PREFIX (1ull << 9)
#define W_INTRODUCER (1ull << 10)
#define W_PARTITIVE (1ull << 11)
#define W_MODIFIER (1ull << 12)
#define W_ADJECTIVE (1ull << 13)
#define W_ING_ED (1ull << 14)
#define W_NOUN_ADJ (1ull << 15)
#define W_PAIR (1ull << 16)
#define W_NOT_PLURAL (1ull << 17)
#define W_IRREG_PLURAL (1ull << 18)
#define W_NEXT_TRIGGER (1ull << 19)  /* _NEXT_TRIGGERS */
#define W_PREV_TRIGGER (1ull << 20)  /* _PREV_TRIGGERS */
#define W_RANGE_START (1ull << 21)  /* _RANGE_STARTS */
#define W_RANGE_END (1ull << 22)  /* _RANGE_ENDS */
#define W_PHRASE (1ull << 23)  /* a numeral phrase of one word (Entry.value: its value, -1 None) */
#define W_ABSTRACT (1ull << 24)  /* ABSTRACT_NOUNS */
#define W_EVENT (1ull << 25)  /* EVENT_WORDS */
#define W_PACK (1ull << 26)  /* PACK_WORDS */
#define W_PARTICIPLE (1ull << 27)  /* PARTICIPLE_STOPS */
#define W_PURPOSE (1ull << 28)  /* PURPOSE_WORDS */
#define W_AUTHOR (1ull << 29)        /* AUTHOR_WORDS */
#define W_LISTICLE_NEXT (1ull << 30) /* LISTICLE_NEXT_WORDS */
#define W_PICTURE (1ull << 31)       /* PICTURE_WORDS */
#define W_VARIANT (1ull << 32)       /* VARIANT_NOUNS */
#define W_SET (1ull << 33)           /* SET_WORDS */
#define W_TITLE_PREP (1ull << 34)    /* TITLE_PREPOSITIONS */
#define W_CAPACITY (1ull << 35)      /* CAPACITY_NOUNS */
#define W_GLUED (1ull << 36)         /* GLUED_PACK_WORDS */
#define W_SEQUENCE_ADJ (1ull << 37)  /* SEQUENCE_ADJECTIVES */
#define W_PER_PACK (1ull << 38)      /* PER_PACK_WORDS */
#define W_BUILD_PLURAL (1ull << 39)  /* BUILD_PLURALS */
#define W_FINITE (1ull << 40)        /* FINITE_WORDS */
#define W_PRESENTING (1ull << 41)    /* PRESENTING_WORDS */
#define W_PERSON (1ull << 42)        /* PERSON_SINGULARS */
#define W_DETERMINER (1ull << 43)    /* core.DETERMINERS */

static const struct { const char *name; wflags bit; } SET_NAMES[] = {
    {"lexicon_numerals", W_LEXNUM}, {"noun_phrase_enders", W_NOUN_ENDER},
    {"next_word_reasons", W_NEXT_REASON}, {"prev_word_reasons", W_PREV_REASON},
    {"month_words", W_MONTH}, {"superlative_words", W_SUPERLATIVE},
    {"one_not_count_next", W_ONE_NOT_COUNT_NEXT}, {"connector_words", W_CONNECTOR},
    {"tens_words", W_TENS}, {"one_pronoun_prefix", W_ONE_PRONOUN_PREFIX},
    {"introducer_words", W_INTRODUCER}, {"partitive_determiners", W_PARTITIVE},
    {"modifier_nouns", W_MODIFIER}, {"adjectives", W_ADJECTIVE}, {"ing_ed_nouns", W_ING_ED},
    {"noun_adjectives", W_NOUN_ADJ}, {"pair_nouns", W_PAIR}, {"not_plural", W_NOT_PLURAL},
    {"irregular_plurals", W_IRREG_PLURAL}, {"next_triggers", W_NEXT_TRIGGER},
    {"prev_triggers", W_PREV_TRIGGER}, {"range_starts", W_RANGE_START}, {"range_ends", W_RANGE_END},
    {"abstract_nouns", W_ABSTRACT}, {"event_words", W_EVENT}, {"pack_words", W_PACK},
    {"participle_stops", W_PARTICIPLE}, {"purpose_words", W_PURPOSE}, {"author_words", W_AUTHOR},
    {"listicle_next_words", W_LISTICLE_NEXT}, {"picture_words", W_PICTURE}, {"variant_nouns", W_VARIANT},
    {"set_words", W_SET}, {"title_prepositions", W_TITLE_PREP}, {"capacity_nouns", W_CAPACITY}, {"glued_pack_words", W_GLUED},
    {"sequence_adjectives", W_SEQUENCE_ADJ}, {"per_pack_words", W_PER_PACK},
    {"build_plurals", W_BUILD_PLURAL}, {"finite_words", W_FINITE}, {"presenting_words", W_PRESENTING},
    {"person_singulars", W_PERSON}, {"determiners", W_DETERMINER},
};
#define N_SETS (sizeof SET_NAMES / sizeof SET_NAMES[0])

typedef struct { cp *key; Py_ssize_t len; wflags flags; int value; } Entry;  /* value: of a W_PHRASE */
static Entry *table = NULL;
static size_t table_mask = 0;

static uint64_t hash_cps(const cp *s, Py_ssize_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (Py_ssize_t i = 0; i < n; i++) { h ^= s[i]; h *= 1099511628211ULL; }
    return h;
}

static inline int same_cps(const cp *a, const cp *b, Py_ssize_t n) {  /* words are short: no memcmp call */
    for (Py_ssize_t i = 0; i < n; i++) if (a[i] != b[i]) return 0;
    return 1;
}

static const Entry *entry_of(const cp *s, Py_ssize_t n) {
    if (table == NULL || n <= 0) return NULL;
    size_t i = (size_t)hash_cps(s, n) & table_mask;
    for (;;) {
        const Entry *e = &table[i];
        if (e->key == NULL) return NULL;
        if (e->len == n && same_cps(e->key, s, n)) return e;
        i = (i + 1) & table_mask;
    }
}

/* The rules ask about the same few words of a caption many times (the word before a numeral,
 * the one after): their flags are kept per caption, by where the word lies. find_count starts
 * a new generation for each caption (the buffers are reused). */
typedef struct { const cp *s; Py_ssize_t n; wflags flags; uint32_t generation; } FlagsSeen;
static FlagsSeen flags_seen[32];
static uint32_t flags_generation = 1;

static wflags flags_of(const cp *s, Py_ssize_t n) {
    FlagsSeen *seen = &flags_seen[((uintptr_t)s / sizeof(cp)) & 31];
    if (seen->generation == flags_generation && seen->s == s && seen->n == n) return seen->flags;
    const Entry *e = entry_of(s, n);
    seen->s = s;
    seen->n = n;
    seen->flags = e ? e->flags : 0;
    seen->generation = flags_generation;
    return seen->flags;
}

static Entry *table_add(const cp *s, Py_ssize_t n, wflags bit) {
    size_t i = (size_t)hash_cps(s, n) & table_mask;
    for (;;) {
        Entry *e = &table[i];
        if (e->key == NULL) {
            e->key = PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(cp));
            if (e->key == NULL) { PyErr_NoMemory(); return NULL; }
            memcpy(e->key, s, (size_t)n * sizeof(cp));
            e->len = n;
            e->flags = bit;
            e->value = -1;
            return e;
        }
        if (e->len == n && memcmp(e->key, s, (size_t)n * sizeof(cp)) == 0) { e->flags |= bit; return e; }
        i = (i + 1) & table_mask;
    }
}

static void table_free(void) {
    if (table == NULL) return;
    for (size_t i = 0; i <= table_mask; i++) PyMem_Free(table[i].key);
    PyMem_Free(table);
    table = NULL;
    table_mask = 0;
}

/* ------------------------------------------------------------------ other configuration */

#define MAX_PHRASES 64
#define MAX_SUFFIXES 32
#define MAX_RANGES 32
#define MAX_CHARS 64

typedef struct { cp text[32]; Py_ssize_t len; int value; int idiom; } Phrase;
static Phrase phrases[MAX_PHRASES];
static int n_phrases = 0;
/* Phrases by their first letter (all phrases start with an ASCII letter). */
static unsigned char phrases_from[128][MAX_PHRASES];
static int n_phrases_from[128];
/* One-word phrases: their (first, last) letter pairs and length range, checked before a
 * table look-up (most words are not numerals). */
static unsigned char word_phrase_ends[26][26];
static unsigned char word_phrase_starts[26][26];  /* their first two letters */
static Py_ssize_t word_phrase_min = 1 << 30, word_phrase_max = 0;
typedef struct { cp text[16]; Py_ssize_t len; } Suffix;
static Suffix suffixes[MAX_SUFFIXES];
static int n_suffixes = 0;
static cp word_ranges[MAX_RANGES][2];
static int n_word_ranges = 0;
static Py_ssize_t left_window = 40;
static int set_noun_tokens = 8;  /* SET_NOUN_TOKENS */
static Py_ssize_t story_start = 120, long_caption = 250, story_words = 16;  /* STORY_START, LONG_CAPTION, STORY_WORDS */
static Py_ssize_t prose_caption = 100;  /* PROSE_CAPTION */
static int configured = 0;

/* Character sets (short strings of code points). */
typedef struct { cp c[MAX_CHARS]; int n; uint64_t ascii[2]; } CharSet;  /* ascii: a bitmap of c below 128 */
static CharSet punct, sentence_end, joiners, prefix_symbols, after_symbols, after_triggers,
    before_triggers, prev_end_triggers, prev_word_separators, set_separators;

static inline int in_set(const CharSet *s, cp ch) {
    if (ch < 128) return (int)((s->ascii[ch >> 6] >> (ch & 63)) & 1);
    for (int i = 0; i < s->n; i++) if (s->c[i] == ch) return 1;
    return 0;
}

/* ------------------------------------------------------------------ character classes */

static unsigned char ascii_word_char[128];  /* WORD_CHARS below 128, filled by configure */

static inline int is_word_char(cp ch) {  /* WORD_CHARS */
    if (ch < 128) return ascii_word_char[ch];
    for (int i = 0; i < n_word_ranges; i++)
        if (ch >= word_ranges[i][0] && ch <= word_ranges[i][1]) return 1;
    return 0;
}
static inline int is_ascii_letter(cp ch) { return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'); }
static inline int is_ascii_digit(cp ch) { return ch >= '0' && ch <= '9'; }
static inline int is_upper_az(cp ch) { return ch >= 'A' && ch <= 'Z'; }
static inline int is_lower_az(cp ch) { return ch >= 'a' && ch <= 'z'; }
static inline int is_space(cp ch) { return Py_UNICODE_ISSPACE(ch); }  /* str.split() */

static int all_ascii(const cp *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) if (s[i] > 127) return 0;
    return 1;
}
static int all_ascii_digits(const cp *s, Py_ssize_t n) {  /* w.isascii() and w.isdigit() */
    if (n == 0) return 0;
    for (Py_ssize_t i = 0; i < n; i++) if (!is_ascii_digit(s[i])) return 0;
    return 1;
}
static int all_digits(const cp *s, Py_ssize_t n) {  /* str.isdigit() */
    if (n == 0) return 0;
    for (Py_ssize_t i = 0; i < n; i++) if (!Py_UNICODE_ISDIGIT(s[i])) return 0;
    return 1;
}
static int all_alpha(const cp *s, Py_ssize_t n) {  /* str.isalpha() */
    if (n == 0) return 0;
    for (Py_ssize_t i = 0; i < n; i++) if (!Py_UNICODE_ISALPHA(s[i])) return 0;
    return 1;
}
static int str_isupper(const cp *s, Py_ssize_t n) {  /* str.isupper(), as CPython computes it */
    int cased = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (Py_UNICODE_ISLOWER(s[i]) || Py_UNICODE_ISTITLE(s[i])) return 0;
        if (!cased && Py_UNICODE_ISUPPER(s[i])) cased = 1;
    }
    return cased;
}
static int ends_with(const cp *s, Py_ssize_t n, const cp *suffix, Py_ssize_t m) {
    if (n < m) return 0;
    for (Py_ssize_t k = 1; k <= m; k++) if (s[n - k] != suffix[m - k]) return 0;  /* last letters first */
    return 1;
}
static int equals_ascii(const cp *s, Py_ssize_t n, const char *word) {
    Py_ssize_t m = (Py_ssize_t)strlen(word);
    if (n != m) return 0;
    for (Py_ssize_t i = 0; i < n; i++) if (s[i] != (cp)(unsigned char)word[i]) return 0;
    return 1;
}

/* ------------------------------------------------------------------ one caption */

typedef struct { const cp *s; Py_ssize_t n; } Span;  /* a word: code points and length */

#define MAX_TOKENS 8  /* AFTER_RE reads at most 8 tokens; split on blanks gives at most 8 */

typedef struct {
    /* _Numeral */
    Py_ssize_t start, end;
    int value;        /* -1: None */
    int kind;         /* KIND_* */
    int hyphen;
    Py_ssize_t words_end;  /* where AFTER_RE's words end (-1: no words) */
    /* _Context */
    Span before, after, prev_raw, prev, prev2_raw, prev2;
    int n_tokens;
    Span raw_tokens[MAX_TOKENS];  /* the words after the numeral, as written */
    Span lw[MAX_TOKENS];          /* ... lowercased (ctx.lower) */
} Numeral;

enum { KIND_DIGITS, KIND_WORD, KIND_IDIOM };

typedef struct {
    const cp *t;              /* the caption */
    const cp *lower;          /* ... with ASCII letters lowercased */
    const unsigned char *cls; /* ... each code point's C_* classes */
    Py_ssize_t n;
} Text;

/* Character classes, one byte per code point, computed once per caption: the loops below
 * test a bit instead of calling the predicates again and again. */
enum { C_WORD = 1, C_LETTER = 2, C_DIGIT = 4, C_SPACE = 8, C_BLANK = 16 };
static unsigned char ascii_cls[128];

static unsigned char classes_of(cp ch) {
    if (ch < 128) return ascii_cls[ch];
    return (unsigned char)((is_word_char(ch) ? C_WORD : 0) | (is_space(ch) ? C_SPACE : 0) | (ch == 0xa0 ? C_BLANK : 0));
}

static int is_plural(Span w) {  /* _is_plural */
    wflags f = flags_of(w.s, w.n);
    if (f & W_IRREG_PLURAL) return 1;
    if (w.n < 3) return 0;
    cp last = w.s[w.n - 1];
    if (last == 's') {
        cp c = w.s[w.n - 2];
        if (c == 's' || c == 'u' || c == 'i' || c == '\'' || c == 0x2019) return 0;
        return !(f & W_NOT_PLURAL);
    }
    return last == 'n' && w.n > 4 && w.s[w.n - 3] == 'm' && w.s[w.n - 2] == 'e' && !(f & W_NOT_PLURAL);
}

static int hyphenated_plural(Span w) {  /* _hyphenated_plural: "dining-chairs" */
    Py_ssize_t k = w.n;
    while (k > 0 && w.s[k - 1] != '-') k--;
    if (k == 0) return 0;
    Span last = {w.s + k, w.n - k};
    return all_alpha(w.s, k - 1) && all_alpha(last.s, last.n) && is_plural(last);
}

static int is_adjective(Span w) {  /* _is_adjective */
    wflags f = flags_of(w.s, w.n);
    if (f & (W_ING_ED | W_IRREG_PLURAL)) return 0;  /* round 4: "geese" is no "-ese" adjective */
    if (hyphenated_plural(w)) return 0;  /* round 4: "Dining-Chairs" */
    if (f & W_ADJECTIVE) return 1;
    for (int i = 0; i < n_suffixes; i++)
        if (ends_with(w.s, w.n, suffixes[i].text, suffixes[i].len)) return 1;
    return !all_alpha(w.s, w.n);
}

static int is_numeral_word(Span w) {  /* _is_numeral_word */
    return (flags_of(w.s, w.n) & W_LEXNUM) || all_ascii_digits(w.s, w.n);
}

/* _ascii_lower(word) for a token: lowered only when it is all ASCII. */
static Span ascii_lowered(const Text *x, Span raw) {
    if (all_ascii(raw.s, raw.n)) { Span out = {x->lower + (raw.s - x->t), raw.n}; return out; }
    return raw;
}

/* The length of a phrase matched at t[i] (lowercase, a blank in the phrase = a run of blanks),
 * or 0. */
static Py_ssize_t phrase_length(const Text *x, Py_ssize_t i, const Phrase *p) {
    Py_ssize_t j = i;
    for (Py_ssize_t k = 0; k < p->len; k++) {
        if (p->text[k] == ' ') {
            if (j >= x->n || !(x->cls[j] & C_BLANK)) return 0;
            while (j < x->n && (x->cls[j] & C_BLANK)) j++;
        } else {
            if (j >= x->n || x->lower[j] != p->text[k]) return 0;
            j++;
        }
    }
    return j - i;
}

/* NUMERAL_RE at t[i] (t[i-1] is not a word character): the numeral's end, or -1. */
static Py_ssize_t numeral_at(const Text *x, Py_ssize_t i, int *kind, int *value) {
    const cp *t = x->t;
    const unsigned char *cls = x->cls;
    Py_ssize_t n = x->n;
    if (cls[i] & C_DIGIT) {  /* [0-9]++ then no word character, or a glued pack word ("10pcs") */
        Py_ssize_t j = i;
        while (j < n && (cls[j] & C_DIGIT)) j++;
        if (j < n && (cls[j] & C_WORD)) {
            Py_ssize_t e = j;
            while (e < n && (cls[e] & C_LETTER)) e++;
            if (e == j || (e < n && (cls[e] & C_WORD)) || !(flags_of(x->lower + j, e - j) & W_GLUED)) return -1;
        }
        *kind = KIND_DIGITS;
        Py_ssize_t len = j - i;
        if (len <= 2 && t[i] != '0') {
            int v = len == 1 ? (int)(t[i] - '0') : (int)((t[i] - '0') * 10 + (t[i + 1] - '0'));
            *value = v <= 20 ? v : -1;
        } else {
            *value = -1;
        }
        return j;
    }
    if (!(cls[i] & C_LETTER)) return -1;
    /* The trie of NUMERAL_RE takes the longest phrase followed by a non-word character. A
     * phrase of several words (an idiom) covers more than the letters at i, so it is tried
     * first; a one-word phrase must be all of those letters: one table look-up. */
    cp first = x->lower[i];
    Py_ssize_t best = 0;
    const Phrase *chosen = NULL;
    for (int k = 0; k < n_phrases_from[first]; k++) {
        const Phrase *p = &phrases[phrases_from[first][k]];
        Py_ssize_t len = phrase_length(x, i, p);
        if (len > best && (i + len >= n || !(cls[i + len] & C_WORD))) { best = len; chosen = p; }
    }
    if (chosen != NULL) {
        *kind = KIND_IDIOM;
        *value = chosen->value;
        return i + best;
    }
    /* Most words are no numeral: their first two letters say so (one-word phrases have two or more). */
    if (i + 1 >= n || !(cls[i + 1] & C_LETTER) || !word_phrase_starts[first - 'a'][x->lower[i + 1] - 'a'])
        return -1;
    Py_ssize_t e = i;
    while (e < n && (cls[e] & C_LETTER)) e++;
    if (e < n && (cls[e] & C_WORD)) return -1;
    if (e - i < word_phrase_min || e - i > word_phrase_max || !word_phrase_ends[first - 'a'][x->lower[e - 1] - 'a'])
        return -1;
    const Entry *word = entry_of(x->lower + i, e - i);
    if (word == NULL || !(word->flags & W_PHRASE)) return -1;
    *kind = KIND_WORD;
    *value = word->value;
    return e;
}

/* TOKEN of AFTER_RE at t[i]: its end, or -1. */
static Py_ssize_t token_end(const Text *x, Py_ssize_t i) {
    const cp *t = x->t;
    Py_ssize_t n = x->n;
    if (i >= n) return -1;
    const unsigned char *cls = x->cls;
    if (cls[i] & C_DIGIT) {
        while (i < n && (cls[i] & C_DIGIT)) i++;
        return i;
    }
    if (!(cls[i] & C_LETTER)) return -1;
    while (i < n && (cls[i] & C_LETTER)) i++;
    while (i + 1 < n && (t[i] == '\'' || t[i] == 0x2019 || t[i] == '.') && (cls[i + 1] & C_LETTER)) {
        i++;
        while (i < n && (cls[i] & C_LETTER)) i++;
    }
    return i;
}

/* AFTER_RE from the numeral's end: the hyphen flag and the words' tokens. */
static void read_after(const Text *x, Numeral *num) {
    const cp *t = x->t;
    Py_ssize_t n = x->n, p = num->end;
    num->hyphen = 0;
    if (p + 1 < n && (t[p] == '-' || t[p] == 0x2010 || t[p] == 0x2013)
            && (is_ascii_letter(t[p + 1]) || is_ascii_digit(t[p + 1]))) {
        num->hyphen = 1;
        p++;
    }
    const unsigned char *cls = x->cls;
    while (p < n && (cls[p] & C_BLANK)) p++;
    Py_ssize_t ws = p, we = token_end(x, p);
    num->n_tokens = 0;
    num->words_end = -1;
    if (we < 0) return;
    for (int more = 0; more < 7; more++) {
        Py_ssize_t r = we;
        if (r < n && (cls[r] & C_BLANK)) {
            while (r < n && (cls[r] & C_BLANK)) r++;
        } else if (r < n && t[r] == '-') {
            r++;
        } else {
            break;
        }
        Py_ssize_t e = token_end(x, r);
        if (e < 0) break;
        we = e;
    }
    num->words_end = we;
    /* words.split(): whitespace in the words is only blanks. */
    Py_ssize_t i = ws;
    while (i < we && num->n_tokens < MAX_TOKENS) {
        while (i < we && (cls[i] & C_SPACE)) i++;
        if (i >= we) break;
        Py_ssize_t s = i;
        while (i < we && !(cls[i] & C_SPACE)) i++;
        Span raw = {t + s, i - s}, low = {x->lower + s, i - s};
        num->raw_tokens[num->n_tokens] = raw;
        num->lw[num->n_tokens] = low;  /* words.lower(): ASCII letters only in these tokens */
        num->n_tokens++;
    }
}

/* _stripped_lower: strip PUNCT, lowercase when ASCII. */
static Span stripped_lower(const Text *x, Span raw) {
    Py_ssize_t a = 0, b = raw.n;
    while (a < b && in_set(&punct, raw.s[a])) a++;
    while (b > a && in_set(&punct, raw.s[b - 1])) b--;
    Span word = {raw.s + a, b - a};
    return ascii_lowered(x, word);
}

/* _context: the two whitespace tokens before the numeral (inside LEFT_WINDOW), and the code
 * points around it. */
static void read_context(const Text *x, Numeral *num) {
    const cp *t = x->t;
    Py_ssize_t start = num->start, end = num->end;
    Py_ssize_t lo = start > left_window ? start - left_window : 0;
    Span empty = {t, 0};
    Py_ssize_t i = start;
    Span found[2] = {empty, empty};
    for (int k = 0; k < 2; k++) {
        while (i > lo && (x->cls[i - 1] & C_SPACE)) i--;
        if (i <= lo) break;
        Py_ssize_t e = i;
        while (i > lo && !(x->cls[i - 1] & C_SPACE)) i--;
        found[k].s = t + i;
        found[k].n = e - i;
    }
    num->prev_raw = found[0];
    num->prev2_raw = found[1];
    num->prev = stripped_lower(x, found[0]);
    num->prev2 = found[1].n ? stripped_lower(x, found[1]) : empty;
    Py_ssize_t b = start > 2 ? start - 2 : 0;
    num->before.s = t + b;
    num->before.n = start - b;
    num->after.s = t + end;
    num->after.n = (end + 2 <= x->n ? end + 2 : x->n) - end;
}

static inline wflags word_flags(Span w) { return flags_of(w.s, w.n); }
static inline Span token(const Numeral *num, int i) { return num->lw[i]; }

static int numeral_text_isupper(const Text *x, const Numeral *num) {
    return str_isupper(x->t + num->start, num->end - num->start);
}
static int numeral_is_year(const Text *x, const Numeral *num) {
    if (num->kind != KIND_DIGITS || num->end - num->start != 4) return 0;
    const cp *d = x->t + num->start;
    int v = (int)(d[0] - '0') * 1000 + (int)(d[1] - '0') * 100 + (int)(d[2] - '0') * 10 + (int)(d[3] - '0');
    return v >= 1000 && v <= 2099;
}

/* The flags of a token's part before its first hyphen (ctx.lower[0].partition("-")[0]). */
static wflags first_part_flags(Span w) {
    Py_ssize_t k = 0;
    while (k < w.n && w.s[k] != '-') k++;
    return flags_of(w.s, k);
}

/* _packed: the numeral counts a pack's items ("3 Pack Socks", "2 Per Pack"). */
static int packed(const Numeral *num) {
    if (!num->n_tokens) return 0;
    Span w0 = token(num, 0);
    if (word_flags(w0) & W_PACK) return 1;
    return equals_ascii(w0.s, w0.n, "per") && num->n_tokens > 1 && (word_flags(token(num, 1)) & W_PER_PACK);
}

/* _slash_packed: "(5/pkg)", "12/Case": a slash right after the numeral, then a PER_PACK_WORDS
 * word of ASCII letters not followed by an ASCII letter or digit. */
static int slash_packed(const Text *x, const Numeral *num) {
    Py_ssize_t k = num->end, n = x->n;
    if (k >= n || x->t[k] != '/') return 0;
    Py_ssize_t e = k + 1;
    while (e < n && is_ascii_letter(x->t[e])) e++;
    if (e < n && is_ascii_digit(x->t[e])) return 0;
    Span word = {x->lower + k + 1, e - k - 1};
    return word.n > 0 && (word_flags(word) & W_PER_PACK);
}

/* _quiet: no rule in CONTEXT_RULES can fire. */
static int quiet(const Numeral *num) {
    if (num->hyphen || (word_flags(num->prev) & W_PREV_TRIGGER)
            || (num->after.n && in_set(&after_triggers, num->after.s[0]))
            || (num->before.n && in_set(&before_triggers, num->before.s[num->before.n - 1]))
            || (num->prev_raw.n && in_set(&prev_end_triggers, num->prev_raw.s[num->prev_raw.n - 1])))
        return 0;
    if ((word_flags(num->prev) & W_CONNECTOR)
            && ((word_flags(num->prev2) & W_RANGE_START) || (all_digits(num->prev2.s, num->prev2.n)
                                                              && all_ascii(num->prev2.s, num->prev2.n))))
        return 0;
    if (num->n_tokens) {
        Span word = token(num, 0);
        wflags f = word_flags(word);
        if (f & W_NEXT_TRIGGER) return 0;
        for (Py_ssize_t k = 0; k < word.n; k++) {
            if (word.s[k] == '-') {
                if (flags_of(word.s, k) & W_LEXNUM) return 0;
                break;
            }
        }
        if ((f & W_CONNECTOR) && num->n_tokens > 1) {
            Span next = token(num, 1);
            if ((word_flags(next) & W_RANGE_END) || all_digits(next.s, next.n)) return 0;
        }
    }
    if (num->value == 1 && ((word_flags(num->prev) & W_ONE_PRONOUN_PREFIX)
                            || (num->n_tokens && (word_flags(token(num, 0)) & W_ONE_NOT_COUNT_NEXT))))
        return 0;
    return !(num->kind == KIND_DIGITS && num->end - num->start == 4);
}

/* CONTEXT_RULES: does any fire? (_joined, _symbols, _compound, _next_word, _range,
 * _prev_word, _apposition; only whether, not which.) */
static int context_rule_fires(const Text *x, const Numeral *num) {
    Span before = num->before, after = num->after, prev_raw = num->prev_raw;
    /* _joined */
    if (before.n == 2 && in_set(&joiners, before.s[1]) && is_ascii_digit(before.s[0])) return 1;
    if (after.n == 2 && in_set(&joiners, after.s[0]) && is_ascii_digit(after.s[1])) return 1;
    if (num->kind == KIND_DIGITS && before.n == 2 && (before.s[1] == '-' || before.s[1] == 0x2013)
            && (is_ascii_letter(before.s[0]) || is_ascii_digit(before.s[0])))
        return 1;
    /* _symbols */
    if (prev_raw.n && in_set(&prefix_symbols, prev_raw.s[prev_raw.n - 1])) return 1;
    if (after.n && in_set(&after_symbols, after.s[0])) return 1;
    if (after.n && (after.s[0] == '\'' || after.s[0] == 0x2019 || after.s[0] == '"')) return 1;
    /* _compound */
    if (num->hyphen) {
        if (!(num->n_tokens && first_part_flags(token(num, 0)) & W_PACK)) return 1;  /* "2-Pack Bath Towels" */
    } else if (num->kind == KIND_WORD) {
        if (num->n_tokens) {
            Span w = token(num, 0);
            Py_ssize_t k = 0;
            while (k < w.n && w.s[k] != '-') k++;
            if (flags_of(w.s, k) & W_LEXNUM) return 1;
        }
        if ((word_flags(num->prev) & W_TENS) && before.n
                && (before.s[before.n - 1] == '-' || before.s[before.n - 1] == ' '))
            return 1;
    } else if (numeral_is_year(x, num)) {
        return 1;
    }
    /* _next_word */
    if (num->n_tokens && !(equals_ascii(token(num, 0).s, token(num, 0).n, "per") && packed(num))) {
        wflags f = word_flags(token(num, 0));
        if (f & W_NEXT_REASON) return 1;
        if (num->kind == KIND_DIGITS && (f & W_MONTH)) return 1;
        if ((f & W_SUPERLATIVE) && (num->kind == KIND_DIGITS || is_upper_az(x->t[num->start]))) return 1;
        if (num->value == 1 && (f & W_ONE_NOT_COUNT_NEXT)) return 1;
    }
    /* _range */
    int after_connector = num->n_tokens >= 2 && (word_flags(token(num, 0)) & W_CONNECTOR);
    if (after_connector) {
        Span w0 = token(num, 0), w1 = token(num, 1);
        if (is_numeral_word(w1)) return 1;
        if (num->n_tokens >= 3 && equals_ascii(w0.s, w0.n, "out") && equals_ascii(w1.s, w1.n, "of")
                && is_numeral_word(token(num, 2)))
            return 1;
    }
    if ((word_flags(num->prev) & W_CONNECTOR)
            && (is_numeral_word(num->prev2)
                || (equals_ascii(num->prev.s, num->prev.n, "of") && equals_ascii(num->prev2.s, num->prev2.n, "out"))))
        return 1;
    if (after_connector && equals_ascii(token(num, 1).s, token(num, 1).n, "a")) {
        Span w0 = token(num, 0);
        if (equals_ascii(w0.s, w0.n, "to")) return 1;
        if (equals_ascii(w0.s, w0.n, "and") && num->n_tokens >= 3 && equals_ascii(token(num, 2).s, token(num, 2).n, "half"))
            return 1;
    }
    /* _prev_word */
    wflags pf = word_flags(num->prev);
    if ((pf & W_PREV_REASON) && !(prev_raw.n && in_set(&prev_word_separators, prev_raw.s[prev_raw.n - 1]))) return 1;
    if (equals_ascii(num->prev.s, num->prev.n, "to") && equals_ascii(num->prev2.s, num->prev2.n, "up")) return 1;
    if (num->kind == KIND_DIGITS && (pf & W_MONTH)) return 1;
    if (num->value == 1 && (pf & W_ONE_PRONOUN_PREFIX)) return 1;
    /* _apposition */
    if (prev_raw.n >= 2 && prev_raw.s[prev_raw.n - 1] == ',') {
        cp a = after.n ? after.s[0] : 0;
        if (after.n && (a == ',' || a == ')')) return 1;
        if (is_upper_az(prev_raw.s[0]) && (after.n == 0 || a == ';')) return 1;
    }
    return 0;
}

/* _proper_name_before */
static int proper_name_before(const Numeral *num) {
    Span raw = num->prev_raw;
    if (!raw.n || (word_flags(num->prev) & W_INTRODUCER)) return 0;
    /* MIXED_CASE_RE.match: [a-z]+[A-Z] */
    Py_ssize_t k = 0;
    while (k < raw.n && is_lower_az(raw.s[k])) k++;
    if (k > 0 && k < raw.n && is_upper_az(raw.s[k])) return 1;
    if (!is_upper_az(raw.s[0]) || in_set(&punct, raw.s[raw.n - 1])) return 0;
    int possessive = raw.n >= 2 && raw.s[raw.n - 1] == 's' && (raw.s[raw.n - 2] == '\'' || raw.s[raw.n - 2] == 0x2019);
    int mid_sentence = num->prev2_raw.n && !in_set(&sentence_end, num->prev2_raw.s[num->prev2_raw.n - 1]);
    return possessive || mid_sentence;
}

/* The noun as _noun writes it: one or two tokens as written (first, count), or count 0. */
typedef struct { int first; int count; Span before; } NounTokens;  /* before: a set's noun ("Napkins - Set of 4") */

static int noun_isupper(const Numeral *num, NounTokens noun) {
    /* str.isupper of "w1 w2": the blank is uncased */
    int cased = 0;
    for (int i = noun.first; i < noun.first + noun.count; i++) {
        Span w = num->raw_tokens[i];
        for (Py_ssize_t k = 0; k < w.n; k++) {
            if (Py_UNICODE_ISLOWER(w.s[k]) || Py_UNICODE_ISTITLE(w.s[k])) return 0;
            if (Py_UNICODE_ISUPPER(w.s[k])) cased = 1;
        }
    }
    return cased;
}

/* _in_a_name */
static int in_a_name(const Text *x, const Numeral *num, NounTokens noun) {
    int has_noun = noun.count > 0;
    int noun_capitalised = has_noun && is_upper_az(num->raw_tokens[noun.first].s[0]);
    cp first = x->t[num->start];
    if (num->value == 1 && num->kind != KIND_IDIOM && has_noun && noun_capitalised
            && !(numeral_text_isupper(x, num) || noun_isupper(num, noun)))
        return 1;
    if (num->kind != KIND_WORD || !is_upper_az(first) || numeral_text_isupper(x, num)) return 0;
    if (has_noun && !noun_capitalised) return 0;
    Span raw = num->prev_raw;
    return raw.n && is_lower_az(raw.s[0]) && !(word_flags(num->prev) & W_INTRODUCER);
}

/* _needs_noun: 1 when a noun-dependent rule excludes the numeral. */
static int needs_noun_excludes(const Text *x, const Numeral *num, NounTokens noun) {
    int kind = num->kind, value = num->value;
    cp first = x->t[num->start];
    if (kind == KIND_DIGITS && proper_name_before(num)) return 1;
    if ((value == 1 || is_upper_az(first)) && in_a_name(x, num, noun)) return 1;
    if (noun.count) {
        if (kind == KIND_WORD && value != -1 && value != 1) return 0;
        Span head = num->raw_tokens[noun.first + noun.count - 1];
        Span head_lower = ascii_lowered(x, head);
        if (kind == KIND_IDIOM && value == 2 && (word_flags(head_lower) & W_PAIR)) return 1;
        if (value == -1 && !(is_lower_az(head.s[0]) && is_plural(head))) return 1;
        if (value == 1 && is_adjective(head_lower) && !(word_flags(head_lower) & W_NOUN_ADJ)) return 1;
        if (kind == KIND_DIGITS && value != 1 && !is_plural(head_lower) && !packed(num)) return 1;
        return 0;
    }
    if (value == 1 || value == -1 || kind == KIND_IDIOM) return 1;
    if (equals_ascii(num->prev.s, num->prev.n, "at")) return 1;
    if (word_flags(num->prev) & W_PURPOSE) return 1;
    if (kind == KIND_DIGITS && !(word_flags(num->prev) & W_INTRODUCER) && !packed(num) && !slash_packed(x, num)) return 1;
    if (kind == KIND_WORD && is_upper_az(first) && proper_name_before(num)) return 1;
    return 0;
}

/* In _noun_phrase: the stop word at `stop` is a participle between adjectives and a plural,
 * with or without adjectives after it ("two smiling girls", "two funny smiling little
 * children"), so it does not end the phrase. */
static int participle_before_plural(const Numeral *num, int first, int stop) {
    if (!(word_flags(token(num, stop)) & W_PARTICIPLE)) return 0;
    int k = stop + 1;  /* _plural_after_adjectives */
    while (k < num->n_tokens && !is_plural(token(num, k)) && is_adjective(token(num, k))) k++;
    if (k >= num->n_tokens || !is_plural(token(num, k))) return 0;
    for (int j = first; j < stop; j++)
        if (!is_adjective(token(num, j))) return 0;
    return 1;
}

/* _year_after_words: "(1995)" after the words that follow the numeral, past blanks. */
static int year_after_words(const Text *x, const Numeral *num) {
    Py_ssize_t p = num->words_end, n = x->n;
    if (p < 0) return 0;
    while (p < n && (x->cls[p] & C_BLANK)) p++;
    if (p + 6 > n || x->t[p] != '(' || x->t[p + 5] != ')') return 0;
    const cp *d = x->t + p + 1;
    if (!((d[0] == '1' && d[1] == '9') || (d[0] == '2' && d[1] == '0'))) return 0;
    return is_ascii_digit(d[2]) && is_ascii_digit(d[3]);
}

/* The next whitespace token of x->t[*i..end), as text.split() gives them: 1 with the token in
 * *raw and *i past it, or 0 when none is left. */
static int next_token(const Text *x, Py_ssize_t *i, Py_ssize_t end, Span *raw) {
    Py_ssize_t k = *i;
    while (k < end && (x->cls[k] & C_SPACE)) k++;
    Py_ssize_t s0 = k;
    while (k < end && !(x->cls[k] & C_SPACE)) k++;
    *i = k;
    raw->s = x->t + s0;
    raw->n = k - s0;
    return k > s0;
}

/* _book_by: "by" and a capitalised word among the words after the numeral, and no word of a
 * picture in the caption. */
static int book_by(const Text *x, const Numeral *num) {
    int by = 0;
    for (int k = 0; k + 1 < num->n_tokens && !by; k++)
        by = (word_flags(token(num, k)) & W_AUTHOR) && is_upper_az(num->raw_tokens[k + 1].s[0]);
    if (!by) return 0;
    Py_ssize_t i = 0;
    Span raw;
    while (next_token(x, &i, x->n, &raw))  /* every whitespace token, stripped and lowered */
        if (word_flags(stripped_lower(x, raw)) & W_PICTURE) return 0;
    return 1;
}

static int is_capitals_word(Span w) {  /* _is_capitals_word: ASCII capitals only */
    if (w.n == 0) return 0;
    for (Py_ssize_t i = 0; i < w.n; i++) if (!is_upper_az(w.s[i])) return 0;
    return 1;
}
static int is_lower_word(Span w) {  /* _is_lower_word: ASCII lowercase letters only */
    if (w.n == 0) return 0;
    for (Py_ssize_t i = 0; i < w.n; i++) if (!is_lower_az(w.s[i])) return 0;
    return 1;
}

/* _plural_names_product: a capitalised plural, then one or two capitalised singular nouns that
 * end the words ("THREE STOOGES SPIRAL NOTEBOOK", "Seven Circles Necklace"). */
static int plural_names_product(const Numeral *num, int stop) {
    int h = 0;
    while (h < stop && !is_plural(token(num, h))) h++;
    if (h + 1 >= stop || stop - h > 3 || stop != num->n_tokens || (word_flags(num->prev) & W_INTRODUCER)) return 0;
    for (int k = h + 1; k < stop; k++) {
        Span w = token(num, k);
        if (!is_upper_az(num->raw_tokens[k].s[0]) || is_plural(w) || is_adjective(w) || (word_flags(w) & W_PICTURE))
            return 0;
    }
    return 1;
}

/* _soup_before: "riding boots rainboots 3 rubber shoes" */
static int soup_before(const Numeral *num) {
    Span raw = num->prev_raw, raw2 = num->prev2_raw;
    return is_lower_word(raw) && is_plural(raw) && !(word_flags(raw) & W_NOUN_ENDER)
        && is_lower_word(raw2) && !(word_flags(raw2) & W_NOUN_ENDER);
}

/* Round 4 helpers (see core.py for why each rule exists). */

/* _picture_word_in: a PICTURE_WORDS word among the caption's whitespace tokens. */
static int picture_word_in(const Text *x) {
    Py_ssize_t i = 0;
    Span raw;
    while (next_token(x, &i, x->n, &raw)) {
        Span low = stripped_lower(x, raw);
        if ((word_flags(low) & W_PICTURE) || equals_ascii(low.s, low.n, "pictured")) return 1;
    }
    return 0;
}

/* _finite_before: a FINITE_WORDS token before `start`, not right after a PRESENTING_WORDS one. */
static int finite_before(const Text *x, Py_ssize_t start) {
    Py_ssize_t i = 0;
    int presenting = 0;
    Span raw;
    while (next_token(x, &i, start, &raw)) {
        wflags f = word_flags(stripped_lower(x, raw));
        if ((f & W_FINITE) && !presenting) return 1;
        presenting = (f & W_PRESENTING) != 0;
    }
    return 0;
}

/* _series_marker: "#" and one to three digits closing a title, or "Vol" before digits. */
static int series_marker(const Text *x) {
    Py_ssize_t n = x->n;
    for (Py_ssize_t k = 0; k < n; k++) {
        if (x->t[k] != '#') continue;
        Py_ssize_t end = k + 1;
        while (end < n && is_ascii_digit(x->t[end])) end++;
        if (end - k > 1 && end - k <= 4) {
            if (end == n) return 1;
            cp c = x->t[end];
            if (c == ')' || c == ']' || c == ',' || c == ';') return 1;
            if (c == ' ' && end + 1 < n && x->t[end + 1] == '&') return 1;
        }
    }
    Py_ssize_t i = 0;
    Span prev = {x->t, 0}, raw;
    int have_prev = 0;
    while (next_token(x, &i, n, &raw)) {
        if (have_prev && equals_ascii(prev.s, prev.n, "vol")) {
            Py_ssize_t a = 0, b = raw.n;
            while (a < b && in_set(&punct, raw.s[a])) a++;
            while (b > a && in_set(&punct, raw.s[b - 1])) b--;
            if (all_ascii_digits(raw.s + a, b - a)) return 1;
        }
        prev = stripped_lower(x, raw);
        have_prev = 1;
    }
    return 0;
}

/* _headline_verb: "Two Cows Explain the World Economies". */
static int headline_verb(const Numeral *num, int stop) {
    int h = 0;
    while (h < stop && !is_plural(token(num, h))) h++;
    if (h + 2 != stop || stop >= num->n_tokens || !(word_flags(token(num, stop)) & W_DETERMINER)) return 0;
    Span low = token(num, h + 1);
    return is_upper_az(num->raw_tokens[h + 1].s[0]) && all_alpha(low.s, low.n) && !is_adjective(low)
        && !(word_flags(low) & (W_PICTURE | W_SET));
}

/* _person_singular: "Two beautiful young woman shopping"; -1 when none. */
static int person_singular(const Numeral *num, int first) {
    for (int k = first; k < num->n_tokens && k < first + 4; k++) {
        Span w = token(num, k);
        wflags f = word_flags(w);
        if (f & W_PERSON) return k;
        if (is_adjective(w)) continue;
        if ((f & W_NOUN_ENDER) || !all_alpha(w.s, w.n) || is_plural(w)) return -1;
    }
    return -1;
}

/* _title_case_name: 1 when a Title Case count is part of a name, title, heading or build. */
static int title_case_name(const Text *x, const Numeral *num, int stop, NounTokens noun, int plural_pair) {
    Span raw = num->prev_raw, prev2 = num->prev2_raw, before = num->before;
    int noun_capitalised = is_upper_az(num->raw_tokens[noun.first].s[0]);
    Span head = ascii_lowered(x, num->raw_tokens[noun.first + noun.count - 1]);
    cp first = x->t[num->start];
    if (num->kind == KIND_DIGITS && prev2.n == 0 && raw.n && is_upper_az(raw.s[0])
            && !in_set(&punct, raw.s[raw.n - 1]) && !(word_flags(num->prev) & W_INTRODUCER) && !packed(num))
        return 1;  /* Ben 10 Invitation Cards; not "Asbestos 5 Pack Test Kit" */
    int titled = is_upper_az(first) && !numeral_text_isupper(x, num);
    /* Round 4: a title in a series, a listicle after a dash, a headline's verb. */
    if ((titled || num->kind == KIND_DIGITS) && noun_capitalised && series_marker(x)) return 1;
    if (num->kind == KIND_DIGITS && raw.n == 1 && (raw.s[0] == '-' || raw.s[0] == 0x2013 || raw.s[0] == 0x2014)
            && noun_capitalised && noun.count == 2 && stop == num->n_tokens && !packed(num) && is_plural(head))
        return 1;  /* Kitchen Faucets – 8 Designer Favorites */
    if (titled && num->start == 0 && headline_verb(num, stop)) return 1;  /* Two Cows Explain the World */
    if ((titled || num->kind == KIND_DIGITS) && (word_flags(head) & W_VARIANT)) return 1;  /* 5 Colors */
    if ((titled || num->kind == KIND_DIGITS) && noun_capitalised) {
        if (num->start == 0 && stop < num->n_tokens && (word_flags(token(num, stop)) & W_LISTICLE_NEXT))
            return 1;  /* 5 Foods That Boost Your Metabolism */
        if (raw.n && raw.s[raw.n - 1] == ':') return 1;  /* Housing: 7 On-Base Options */
        if (raw.n > 2 && raw.s[raw.n - 1] == ',' && is_upper_az(raw.s[0])) return 1;  /* A Devil, Two Rivers */
    }
    /* Round 3 (see core.py for why each rule exists). */
    if (num->kind == KIND_DIGITS && num->start == 0 && stop < num->n_tokens
            && ((word_flags(token(num, stop)) & W_LISTICLE_NEXT) || equals_ascii(token(num, stop).s, token(num, stop).n, "for"))
            && is_plural(head))
        return 1;  /* 10 Easter Cocktails For Adults */
    if (num->kind == KIND_DIGITS && raw.n > 2 && raw.s[raw.n - 1] == ':') return 1;  /* Crafty Mom: 5 activities */
    if (num->kind == KIND_WORD && is_upper_az(first)) {
        int capitals = numeral_text_isupper(x, num) && noun_isupper(num, noun);
        if (capitals && is_capitals_word(raw) && !(word_flags(num->prev) & W_INTRODUCER)) return 1;  /* RAINBOW SIX SIEGE */
        if (capitals && num->value != 1 && !is_plural(head)) return 1;  /* TWO TONE PLATED BEADS */
        if (noun_capitalised && plural_names_product(num, stop)) return 1;  /* THREE STOOGES SPIRAL NOTEBOOK */
    }
    if (num->kind != KIND_WORD || !titled) return 0;
    if (noun_capitalised && num->words_end >= 0 && num->words_end < x->n
            && (x->t[num->words_end] == ':' || x->t[num->words_end] == ';'))
        return 1;  /* Two Rings: A Story of Love and War */
    if (noun_capitalised && year_after_words(x, num)) return 1;  /* Three Wishes (1995) */
    if (noun_capitalised && !(word_flags(num->prev) & W_INTRODUCER) && book_by(x, num)) return 1;  /* ... by John Keegan */
    if (equals_ascii(num->prev.s, num->prev.n, "the")) return 1;  /* The Three Stooges */
    if (noun_capitalised && (word_flags(raw) & W_TITLE_PREP) && prev2.n && is_upper_az(prev2.s[0])
            && !(word_flags(num->prev2) & (W_INTRODUCER | W_PICTURE)))
        return 1;  /* A Tale of Two Cities */
    int name_before = proper_name_before(num);
    if (num->value != 1 && !is_plural(head) && (noun_capitalised || noun.count == 2 || name_before))
        return 1;  /* Three Card Poker, Two Faucet Tower */
    if (noun_capitalised && name_before) return 1;  /* Flashback Four Series */
    if (plural_pair && noun_capitalised) return 1;  /* Two Hearts Earrings */
    return before.n == 2 && before.s[1] == '/' && is_ascii_letter(before.s[0]);  /* Tom Priddy/Four Seam Images */
}

/* _words_before: more than n whitespace tokens before `start`. */
static int words_before(const Text *x, Py_ssize_t start, Py_ssize_t n) {
    Py_ssize_t count = 0, i = 0;
    Span raw;
    while (next_token(x, &i, start, &raw))
        if (++count > n) return 1;
    return 0;
}

/* _web_shape: 1 when the shape of web alt text says the count is not the picture's. */
static int web_shape_excludes(const Text *x, const Numeral *num, int first, int stop, NounTokens noun) {
    int plural_pair = 0, n = num->n_tokens;
    if (first == 2 && first < stop && (word_flags(token(num, first)) & W_SUPERLATIVE)) return 1;  /* 6 of the Best */
    for (int k = first; k < stop; k++) {
        if (word_flags(token(num, k)) & (W_ABSTRACT | W_SEQUENCE_ADJ)) return 1;
        if (k + 1 < stop && is_plural(token(num, k)) && is_plural(token(num, k + 1))) plural_pair = 1;
    }
    for (int k = first; k < n; k++)
        if (word_flags(token(num, k)) & W_EVENT) return 1;
    if ((word_flags(num->prev) & W_EVENT) || (word_flags(num->prev2) & W_EVENT)) return 1;
    if (noun.count == 0) return 0;
    /* Round 3 (see core.py for why each rule exists). */
    if (first < stop && num->kind == KIND_WORD && equals_ascii(token(num, first).s, token(num, first).n, "new")
            && (is_upper_az(x->t[num->start]) || is_upper_az(num->raw_tokens[noun.first].s[0])))
        return 1;  /* Two new mixtapes, three new Eagle Scouts */
    if (first + 1 < stop && (word_flags(token(num, first)) & W_BUILD_PLURAL) && !(word_flags(num->prev) & W_INTRODUCER)
            && !is_plural(token(num, first + 1)) && !is_adjective(token(num, first + 1)))
        return 1;  /* Two Pieces Ball Gown */
    if (stop + 1 < n && all_ascii_digits(token(num, stop).s, token(num, stop).n) && is_plural(token(num, stop + 1)))
        return 1;  /* 2 Beds 1 Baths */
    if (num->kind == KIND_DIGITS && soup_before(num)) return 1;  /* rainboots 3 rubber shoes */
    if (equals_ascii(num->prev_raw.s, num->prev_raw.n, "including") && x->n > prose_caption)
        return 1;  /* Headless animals, including two roosters, discovered ... */
    if (x->n > prose_caption && finite_before(x, num->start) && !picture_word_in(x)) return 1;  /* round 4: prose */
    if (num->start > story_start && x->n > long_caption && words_before(x, num->start, story_words)) return 1;  /* in a story */
    Span head = ascii_lowered(x, num->raw_tokens[noun.first + noun.count - 1]);
    if (word_flags(head) & W_NEXT_REASON) return 1;  /* three previous years */
    if ((word_flags(num->prev) & W_PURPOSE) && (word_flags(head) & W_CAPACITY)) return 1;  /* a villa for 8 people */
    if ((word_flags(num->prev) & W_PURPOSE) && !(word_flags(num->prev2) & W_PICTURE)) return 1;  /* a box for three bottles */
    return title_case_name(x, num, stop, noun, plural_pair);
}

/* _starts_segment: the token at p opens with a SET_SEPARATORS code point ("(Set of 2)") or
 * follows one ("Bowl, Set of Four", "Magnet (10 pack)", "Large - Set of 2"). */
static int starts_segment(const Text *x, Py_ssize_t p) {
    if (in_set(&set_separators, x->t[p])) return 1;
    while (p > 0 && (x->cls[p - 1] & C_SPACE)) p--;
    return p > 0 && in_set(&set_separators, x->t[p - 1]);
}

/* _noun_before: the nearest plural among the SET_NOUN_TOKENS whitespace tokens before the
 * numeral, less the last `skip` ("Napkins ... - Set of 4"), without its punctuation; without a
 * plural, when the set starts a segment, the nearest word that is neither an adjective nor a
 * stop word ("Dining Chair (Set of 2)"), unless that word is a segment of its own ("Dining
 * Chair - Berry (Pack of Two)"); n 0 when none. */
static Span noun_before(const Text *x, const Numeral *num, int skip) {
    Span none = {x->t, 0}, singular = none;
    Py_ssize_t i = num->start, set_start = i, singular_start = 0, singular_end = 0;
    for (int k = 0; k < skip + set_noun_tokens; k++) {
        while (i > 0 && (x->cls[i - 1] & C_SPACE)) i--;
        if (i == 0) break;
        Py_ssize_t e = i;
        while (i > 0 && !(x->cls[i - 1] & C_SPACE)) i--;
        if (k < skip) { set_start = i; continue; }  /* "Set", "of" */
        Span word = {x->t + i, e - i};
        while (word.n && in_set(&punct, word.s[0])) { word.s++; word.n--; }
        while (word.n && in_set(&punct, word.s[word.n - 1])) word.n--;
        if (!(word.n && all_ascii(word.s, word.n) && all_alpha(word.s, word.n))) continue;
        Span low = ascii_lowered(x, word);
        if (is_plural(low)) return word;
        if (singular.n == 0 && !(word_flags(low) & W_NOUN_ENDER) && !is_adjective(low)) {
            singular = word;
            singular_start = i;
            singular_end = e;
        }
    }
    if (singular.n == 0 || !starts_segment(x, set_start)) return none;
    Py_ssize_t after = singular_end;
    while (x->cls[after] & C_SPACE) after++;  /* the next token: the set's at the latest */
    return starts_segment(x, singular_start) && starts_segment(x, after) ? none : singular;
}

/* _classify without reasons: 1 when the numeral counts, with its noun in *noun. */
static int counts_something(const Text *x, Numeral *num, NounTokens *noun) {
    read_context(x, num);
    if (!quiet(num) && context_rule_fires(x, num)) return 0;
    /* _noun_phrase */
    int n = num->n_tokens, first = 0, head = -1, stop;
    if (n > 2 && equals_ascii(token(num, 0).s, token(num, 0).n, "of") && (word_flags(token(num, 1)) & W_PARTITIVE))
        first = 2;
    else if (n && (word_flags(token(num, 0)) & W_PACK))  /* not "per pack": _packed's other form */
        first = n > 1 && equals_ascii(token(num, 1).s, token(num, 1).n, "of") ? 2 : 1;
    for (stop = first; stop < n; stop++) {
        Span w = token(num, stop);
        wflags f = word_flags(w);
        if (((f & W_NOUN_ENDER) || all_digits(w.s, w.n)) && !participle_before_plural(num, first, stop)) break;
        if (head < 0 && num->value != 1 && is_plural(w)) head = stop;
    }
    if (head < 0) head = stop - 1;
    /* _singular_modifier */
    if (first < stop && (word_flags(token(num, first)) & W_MODIFIER)) {
        int plural_after = 0;
        for (int k = first + 1; k < stop && k < first + 3; k++) if (is_plural(token(num, k))) { plural_after = 1; break; }
        if (num->value == 1 ? plural_after : !plural_after) return 0;
    }
    /* _noun */
    NounTokens found = {0, 0, {NULL, 0}};
    if (stop != first) {
        Span word = token(num, head);
        int adjective_end = num->value != 1 && is_adjective(word) && !(word_flags(word) & W_NOUN_ADJ);
        if (!adjective_end) {
            if (head > first && !is_adjective(token(num, head - 1))) { found.first = head - 1; found.count = 2; }
            else { found.first = head; found.count = 1; }
        }
    }
    if (num->kind == KIND_WORD && num->value >= 2 && (found.count == 0 || !is_plural(token(num, head)))) {
        int k = person_singular(num, first);  /* round 4: Two beautiful young woman */
        if (k >= 0) { found.first = k; found.count = 1; }
    }
    if (needs_noun_excludes(x, num, found)) return 0;
    if (web_shape_excludes(x, num, first, stop, found)) return 0;
    if (found.count == 0 && equals_ascii(num->prev.s, num->prev.n, "of") && (word_flags(num->prev2) & W_SET))
        found.before = noun_before(x, num, 2);  /* Napkins - Set of 4 */
    else if (found.count == 0 && equals_ascii(num->prev_raw.s, num->prev_raw.n, "of")
             && equals_ascii(num->prev2.s, num->prev2.n, "family")) {
        Span w = num->prev2_raw;  /* round 4: Family of four (stripped, as written) */
        while (w.n && in_set(&punct, w.s[0])) { w.s++; w.n--; }
        while (w.n && in_set(&punct, w.s[w.n - 1])) w.n--;
        found.before = w;
    } else if (found.count == 0 && first == stop && (packed(num) || (n == 0 && slash_packed(x, num))))
        found.before = noun_before(x, num, 0);  /* Greeting Cards (10 Pack), 2 Per Pack, (5/pkg) */
    *noun = found;
    return 1;
}

static PyObject *noun_string(const Numeral *num, NounTokens noun) {
    if (noun.count == 0 && noun.before.n) return PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, noun.before.s, noun.before.n);
    if (noun.count == 0) Py_RETURN_NONE;
    Span a = num->raw_tokens[noun.first];
    if (noun.count == 1) return PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, a.s, a.n);
    Span b = num->raw_tokens[noun.first + 1];
    cp buf[256];
    cp *joined = (a.n + b.n + 1 <= 256) ? buf : PyMem_Malloc((size_t)(a.n + b.n + 1) * sizeof(cp));
    if (joined == NULL) return PyErr_NoMemory();
    memcpy(joined, a.s, (size_t)a.n * sizeof(cp));
    joined[a.n] = ' ';
    memcpy(joined + a.n + 1, b.s, (size_t)b.n * sizeof(cp));
    PyObject *out = PyUnicode_FromKindAndData(PyUnicode_4BYTE_KIND, joined, a.n + b.n + 1);
    if (joined != buf) PyMem_Free(joined);
    return out;
}

/* The first p >= j where a word starts with an ASCII letter or digit: cls[p] has C_LETTER or
 * C_DIGIT and cls[p - 1] (if any) no C_WORD. Reads cls 16 at a time (reserve() pads it). */
static Py_ssize_t next_word_start(const Text *x, Py_ssize_t j) {
    const unsigned char *cls = x->cls;
    Py_ssize_t n = x->n;
#if defined(__SSE2__)
    const __m128i zero = _mm_setzero_si128();
    for (; j < n; j += 16) {
        __m128i c = _mm_loadu_si128((const __m128i *)(cls + j));
        unsigned int alnum = 0xFFFFu ^ (unsigned int)_mm_movemask_epi8(
            _mm_cmpeq_epi8(_mm_and_si128(c, _mm_set1_epi8(C_LETTER | C_DIGIT)), zero));
        unsigned int word = 0xFFFFu ^ (unsigned int)_mm_movemask_epi8(
            _mm_cmpeq_epi8(_mm_and_si128(c, _mm_set1_epi8(C_WORD)), zero));
        unsigned int after_word = (word << 1) | (j > 0 && (cls[j - 1] & C_WORD));
        unsigned int starts = alnum & ~after_word;
        if (n - j < 16) starts &= (1u << (n - j)) - 1;
        if (starts) return j + __builtin_ctz(starts);
    }
    return n;
#else
    for (; j < n; j++)
        if ((cls[j] & (C_LETTER | C_DIGIT)) && !(j > 0 && (cls[j - 1] & C_WORD))) return j;
    return n;
#endif
}

/* find_count: the agreed value (0 when none) and, through *noun_out, the noun (new reference,
 * or NULL when there is no count). Returns -1 on a Python error. */
static int find_count(const Text *x, PyObject **noun_out) {
    if (++flags_generation == 0) {  /* wrapped around: forget everything */
        memset(flags_seen, 0, sizeof flags_seen);
        flags_generation = 1;
    }
    int have = 0, value = 0;
    Numeral found, num;
    found.value = -1;
    NounTokens found_noun = {0, 0, {NULL, 0}};
    *noun_out = NULL;
    /* Numerals start where a word starts with a letter or digit (after no word character);
     * a numeral's end is followed by none either. */
    for (Py_ssize_t j = next_word_start(x, 0); j < x->n; j = next_word_start(x, j + 1)) {
        int kind, val;
        Py_ssize_t end = numeral_at(x, j, &kind, &val);
        if (end < 0) continue;  /* not a numeral: the next word start is past this word */
        num.start = j;
        num.end = end;
        num.kind = kind;
        num.value = val;
        read_after(x, &num);
        NounTokens noun;
        if (counts_something(x, &num, &noun)) {
            if (!have) { have = 1; found = num; found_noun = noun; }
            else if (num.value != found.value) return 0;  /* counts that disagree */
        }
        j = end;  /* the code point at end is not a word character */
    }
    if (!have || found.value == -1) return 0;
    value = found.value;
    *noun_out = noun_string(&found, found_noun);
    if (*noun_out == NULL) return -1;
    return value;
}

/* ------------------------------------------------------------------ Python API */

typedef struct { cp *t; cp *lower; unsigned char *cls; Py_ssize_t cap; } Buffers;

/* ------------------------------------------------------------------ Arrow string arrays */
/* An Arrow string (or binary) array handed over as its buffers: the functions below read the
 * bytes in place, without a Python object per string. From Python:
 * (data, offsets, wide_offsets, offset, length, validity or None). */

typedef struct {
    Py_buffer data, offsets, validity;
    int wide, has_validity;
    Py_ssize_t offset, length;
} StrArray;

static void str_array_release(StrArray *a) {
    if (a->data.obj) PyBuffer_Release(&a->data);
    if (a->offsets.obj) PyBuffer_Release(&a->offsets);
    if (a->has_validity) PyBuffer_Release(&a->validity);
}

static int str_array_parse(PyObject *parts, StrArray *a) {
    memset(a, 0, sizeof *a);
    PyObject *validity;
    if (!PyArg_ParseTuple(parts, "y*y*pnnO", &a->data, &a->offsets, &a->wide, &a->offset, &a->length, &validity))
        return -1;
    if (validity != Py_None) {
        if (PyObject_GetBuffer(validity, &a->validity, PyBUF_SIMPLE) < 0) { str_array_release(a); return -1; }
        a->has_validity = 1;
    }
    Py_ssize_t width = a->wide ? 8 : 4;
    if (a->offset < 0 || a->length < 0 || (a->offset + a->length + 1) * width > a->offsets.len
            || (a->has_validity && (a->offset + a->length + 7) / 8 > a->validity.len)) {
        PyErr_SetString(PyExc_ValueError, "string array: buffers too short for its offset and length");
        str_array_release(a);
        return -1;
    }
    return 0;
}

/* String i of the array: its bytes and length; 0 when null, -1 (with an exception) on bad offsets. */
static int str_array_get(const StrArray *a, Py_ssize_t i, const unsigned char **bytes, Py_ssize_t *len) {
    Py_ssize_t row = a->offset + i;
    if (a->has_validity && !((((const unsigned char *)a->validity.buf)[row >> 3] >> (row & 7)) & 1)) return 0;
    int64_t start = a->wide ? ((const int64_t *)a->offsets.buf)[row] : ((const int32_t *)a->offsets.buf)[row];
    int64_t end = a->wide ? ((const int64_t *)a->offsets.buf)[row + 1] : ((const int32_t *)a->offsets.buf)[row + 1];
    if (start < 0 || end < start || end > a->data.len) {
        PyErr_SetString(PyExc_ValueError, "string array: bad offsets");
        return -1;
    }
    *bytes = (const unsigned char *)a->data.buf + start;
    *len = (Py_ssize_t)(end - start);
    return 1;
}

static int reserve(Buffers *buf, Py_ssize_t n) {
    if (n + 1 <= buf->cap) return 0;
    Py_ssize_t cap = (n + 1) * 2;
    cp *t = PyMem_Realloc(buf->t, (size_t)cap * sizeof(cp));
    if (t == NULL) { PyErr_NoMemory(); return -1; }
    buf->t = t;
    cp *lower = PyMem_Realloc(buf->lower, (size_t)cap * sizeof(cp));
    if (lower == NULL) { PyErr_NoMemory(); return -1; }
    buf->lower = lower;
    unsigned char *cls = PyMem_Realloc(buf->cls, (size_t)cap + 16);  /* next_word_start reads 16 at a time */
    if (cls == NULL) { PyErr_NoMemory(); return -1; }
    buf->cls = cls;
    buf->cap = cap;
    return 0;
}

#if defined(__SSE2__)
/* 16 ASCII bytes at once: their code points, lowercased copy and classes (ascii_cls, computed
 * with compares; configure checks the two agree on every ASCII byte, else this is not used). */
static int ascii_blocks = 0;

static inline __m128i byte_range(__m128i x, unsigned char lo, unsigned char hi) {  /* 0xFF where lo <= x <= hi */
    __m128i shifted = _mm_sub_epi8(x, _mm_set1_epi8((char)lo)), width = _mm_set1_epi8((char)(hi - lo));
    return _mm_cmpeq_epi8(_mm_max_epu8(shifted, width), width);
}

static inline void widen_store(__m128i x, cp *out) {
    __m128i zero = _mm_setzero_si128(), low = _mm_unpacklo_epi8(x, zero), high = _mm_unpackhi_epi8(x, zero);
    _mm_storeu_si128((__m128i *)out, _mm_unpacklo_epi16(low, zero));
    _mm_storeu_si128((__m128i *)(out + 4), _mm_unpackhi_epi16(low, zero));
    _mm_storeu_si128((__m128i *)(out + 8), _mm_unpacklo_epi16(high, zero));
    _mm_storeu_si128((__m128i *)(out + 12), _mm_unpackhi_epi16(high, zero));
}

static inline void ascii_block(const unsigned char *s, cp *t, cp *lower, unsigned char *cls) {
    __m128i x = _mm_loadu_si128((const __m128i *)s);
    __m128i upper = byte_range(x, 'A', 'Z');
    __m128i low = _mm_add_epi8(x, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
    __m128i letter = byte_range(low, 'a', 'z'), digit = byte_range(x, '0', '9');
    __m128i word = _mm_or_si128(_mm_or_si128(letter, digit), _mm_cmpeq_epi8(x, _mm_set1_epi8('_')));
    __m128i blank = _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8(' ')), _mm_cmpeq_epi8(x, _mm_set1_epi8('\t')));
    __m128i space = _mm_or_si128(byte_range(x, '\t', '\r'), byte_range(x, 0x1c, ' '));
    __m128i classes = _mm_or_si128(
        _mm_or_si128(_mm_and_si128(word, _mm_set1_epi8(C_WORD)), _mm_and_si128(letter, _mm_set1_epi8(C_LETTER))),
        _mm_or_si128(_mm_and_si128(digit, _mm_set1_epi8(C_DIGIT)),
                     _mm_or_si128(_mm_and_si128(space, _mm_set1_epi8(C_SPACE)), _mm_and_si128(blank, _mm_set1_epi8(C_BLANK)))));
    _mm_storeu_si128((__m128i *)cls, classes);
    widen_store(x, t);
    widen_store(low, lower);
}

/* Whether ascii_block gives ascii_cls's classes and the scalar lowercasing on every ASCII byte. */
static int ascii_blocks_agree(void) {
    unsigned char bytes[128], cls[128];
    cp t[128], lower[128];
    for (int b = 0; b < 128; b++) bytes[b] = (unsigned char)b;
    for (int k = 0; k < 128; k += 16) ascii_block(bytes + k, t + k, lower + k, cls + k);
    for (int b = 0; b < 128; b++)
        if (cls[b] != ascii_cls[b] || t[b] != (cp)b || lower[b] != (cp)b + ((cp)((cp)b - 'A' < 26u) << 5)) return 0;
    return 1;
}
#endif

/* UTF-8 bytes to buf's code points, lowercased copy and classes in one pass; false on bad UTF-8. */
static int decode_classify(const unsigned char *s, Py_ssize_t len, Buffers *buf, Text *x) {
    cp *t = buf->t, *lower = buf->lower;
    unsigned char *cls = buf->cls;
    Py_ssize_t n = 0, i = 0;
    while (i < len) {
#if defined(__SSE2__)
        if (ascii_blocks && i + 16 <= len
                && _mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(s + i))) == 0) {
            ascii_block(s + i, t + n, lower + n, cls + n);
            i += 16;
            n += 16;
            continue;
        }
#endif
        unsigned char b = s[i];
        if (b < 0x80) {
            t[n] = b;
            lower[n] = b + ((cp)((cp)b - 'A' < 26u) << 5);
            cls[n++] = ascii_cls[b];
            i++;
            continue;
        }
        int extra = b >= 0xF0 ? 3 : b >= 0xE0 ? 2 : b >= 0xC0 ? 1 : -1;
        if (extra < 0 || i + extra >= len) return 0;
        cp ch = b & (0x3F >> extra);
        for (int k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            ch = (ch << 6) | (s[i + k] & 0x3F);
        }
        t[n] = lower[n] = ch;
        cls[n++] = classes_of(ch);
        i += extra + 1;
    }
    x->t = t;
    x->lower = lower;
    x->cls = cls;
    x->n = n;
    return 1;
}

/* The lowercased copy and the classes of the n code points in buf->t. */
static void classify_text(Buffers *buf, Py_ssize_t n, Text *x) {
    for (Py_ssize_t i = 0; i < n; i++) {
        cp ch = buf->t[i];
        buf->lower[i] = ch + ((cp)(ch - 'A' < 26u) << 5);
        buf->cls[i] = ch < 128 ? ascii_cls[ch] : classes_of(ch);
    }
    x->t = buf->t;
    x->lower = buf->lower;
    x->cls = buf->cls;
    x->n = n;
}

static int load_text(PyObject *str, Buffers *buf, Text *x) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(str);
    if (reserve(buf, n) < 0) return -1;
    if (PyUnicode_AsUCS4(str, buf->t, buf->cap, 0) == NULL) return -1;
    classify_text(buf, n, x);
    return 0;
}

static PyObject *py_count_many(PyObject *self, PyObject *arg) {
    (void)self;
    if (!configured) { PyErr_SetString(PyExc_RuntimeError, "_fastcount.configure() was not called"); return NULL; }
    PyObject *seq = PySequence_Fast(arg, "count_many expects a sequence of str");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *values = PyBytes_FromStringAndSize(NULL, n);
    PyObject *nouns = PyList_New(n);
    Buffers buf = {NULL, NULL, NULL, 0};
    if (values == NULL || nouns == NULL) goto fail;
    char *out = PyBytes_AS_STRING(values);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyUnicode_Check(item)) {
            PyErr_Format(PyExc_TypeError, "count_many: item %zd is %.100s, not str", i, Py_TYPE(item)->tp_name);
            goto fail;
        }
        Text x;
        if (load_text(item, &buf, &x) < 0) goto fail;
        PyObject *noun;
        int value = find_count(&x, &noun);
        if (value < 0) goto fail;
        out[i] = (char)value;
        if (noun == NULL) { noun = Py_None; Py_INCREF(noun); }
        PyList_SET_ITEM(nouns, i, noun);
    }
    PyMem_Free(buf.t);
    PyMem_Free(buf.lower);
    PyMem_Free(buf.cls);
    Py_DECREF(seq);
    return Py_BuildValue("(NN)", values, nouns);
fail:
    PyMem_Free(buf.t);
    PyMem_Free(buf.lower);
    PyMem_Free(buf.cls);
    Py_DECREF(seq);
    Py_XDECREF(values);
    Py_XDECREF(nouns);
    return NULL;
}

/* find_count on one UTF-8 string (row `row` of an array, for the error): its value (0: none),
 * with the noun (a new reference or NULL) in *noun; -1 with an exception on bad UTF-8. */
static int count_utf8_string(const unsigned char *bytes, Py_ssize_t len, Py_ssize_t row, Buffers *buf, PyObject **noun) {
    Text x;
    if (reserve(buf, len) < 0) return -1;
    if (!decode_classify(bytes, len, buf, &x)) {
        PyErr_Format(PyExc_ValueError, "string %zd is not UTF-8", row);
        return -1;
    }
    return find_count(&x, noun);
}

/* count_utf8(parts) -> (values, nouns): count_many on an Arrow string array's buffers. A null
 * string has no count. */
static PyObject *py_count_utf8(PyObject *self, PyObject *parts) {
    (void)self;
    if (!configured) { PyErr_SetString(PyExc_RuntimeError, "_fastcount.configure() was not called"); return NULL; }
    StrArray a;
    if (str_array_parse(parts, &a) < 0) return NULL;
    PyObject *values = PyBytes_FromStringAndSize(NULL, a.length), *nouns = PyList_New(a.length), *result = NULL;
    Buffers buf = {NULL, NULL, NULL, 0};
    if (values == NULL || nouns == NULL) goto done;
    char *out = PyBytes_AS_STRING(values);
    for (Py_ssize_t i = 0; i < a.length; i++) {
        Py_INCREF(Py_None);
        PyList_SET_ITEM(nouns, i, Py_None);
        out[i] = 0;
        const unsigned char *bytes;
        Py_ssize_t len;
        int got = str_array_get(&a, i, &bytes, &len);
        if (got < 0) goto done;
        if (got == 0) continue;
        PyObject *noun;
        int value = count_utf8_string(bytes, len, i, &buf, &noun);
        if (value < 0) goto done;
        out[i] = (char)value;
        if (noun != NULL) {
            Py_DECREF(Py_None);
            PyList_SET_ITEM(nouns, i, noun);
        }
    }
    result = Py_BuildValue("(OO)", values, nouns);
done:
    PyMem_Free(buf.t);
    PyMem_Free(buf.lower);
    PyMem_Free(buf.cls);
    Py_XDECREF(values);
    Py_XDECREF(nouns);
    str_array_release(&a);
    return result;
}


/* ------------------------------------------------------------------ the mining pre-filter */
/* countclip/mining/prefilter.py's RE2 pattern, `\b(?:word|...|0*(?:[2-9]|10))\b` applied with
 * ignore_case, decided on the UTF-8 bytes: RE2's \b is ASCII ([0-9A-Za-z_] on one side only;
 * every byte of a non-ASCII code point is a non-word byte, so byte and code-point boundaries
 * agree), and its case folding lets "k" match U+212A (Kelvin sign) and "s" U+017F (long s)
 * besides K and S. Words are lowercase ASCII letters (configure_prefilter checks).
 * tests/test_fastcount.py checks it against RE2 on real, generated and fuzzed captions. */

#define MAX_PF_WORDS 64
static unsigned char pf_words[MAX_PF_WORDS][24];
#define MAX_GLUED 8
static unsigned char glued[MAX_GLUED][8];  /* GLUED_PACK_WORDS, for the pre-filter's digits */
static Py_ssize_t glued_lengths[MAX_GLUED];
static int n_glued = 0;
static Py_ssize_t pf_lengths[MAX_PF_WORDS];
static int n_pf_words = 0, pf_configured = 0;
static unsigned char pf_from[26][MAX_PF_WORDS];  /* words by first letter */
static int n_pf_from[26];
static unsigned char re2_word_byte[256];  /* [0-9A-Za-z_] */
/* pf_second[letter][byte]: a word starting with `letter` may go on with this byte (its second
 * letter in either case, or a lead byte of U+017F / U+212A): most word starts fail here. */
static unsigned char pf_second[26][256];
/* pf_pair[first byte][next byte (0 at the end)]: whether a match may start there: a digit, a
 * first letter whose word may go on with that byte, or a lead byte of U+017F / U+212A. */
static unsigned char pf_pair[256][256];
/* pf_triple: a hashed set of the words' first three letters (bits of a 32 Kbit table), checked
 * after pf_pair at word starts with an ASCII letter: "the", "this", "ten" pass pf_pair, and
 * only "ten" passes here. Used when every word has three letters or more and none has s or k
 * (which may be two or three bytes under RE2's case folding) second or third. */
static unsigned char pf_triple[4096];
static int pf_triple_on = 0;

static inline uint32_t triple_hash(unsigned char a, unsigned char b, unsigned char c) {
    uint32_t key = (uint32_t)(a | 0x20) | ((uint32_t)(b | 0x20) << 8) | ((uint32_t)(c | 0x20) << 16);
    return (key * 2654435761u) >> 17;  /* 15 bits */
}

/* Whether a word may start at s[p] (an ASCII letter) on its first three bytes. b | 0x20 is a
 * lowercase letter only when b is that letter in either case, so a match always passes. */
static inline int triple_passes(const unsigned char *s, Py_ssize_t n, Py_ssize_t p) {
    if (!pf_triple_on) return 1;
    if (p + 3 > n) return 0;
    uint32_t h = triple_hash(s[p], s[p + 1], s[p + 2]);
    return (pf_triple[h >> 3] >> (h & 7)) & 1;
}

static inline int byte_boundary(const unsigned char *s, Py_ssize_t n, Py_ssize_t q) {
    return (q > 0 && re2_word_byte[s[q - 1]]) != (q < n && re2_word_byte[s[q]]);
}

/* How many bytes at s[q] match the lowercase ASCII `letter` under RE2's case folding (0: none). */
static inline Py_ssize_t folded_letter(const unsigned char *s, Py_ssize_t n, Py_ssize_t q, unsigned char letter) {
    unsigned char b = s[q];
    if (b < 128) return (b | 0x20) == letter && is_ascii_letter(b);
    if (letter == 's' && b == 0xC5 && q + 1 < n && s[q + 1] == 0xBF) return 2;                       /* U+017F */
    if (letter == 'k' && b == 0xE2 && q + 2 < n && s[q + 1] == 0x84 && s[q + 2] == 0xAA) return 3;  /* U+212A */
    return 0;
}

/* A word of the pattern (letter: its first, 0..25) or, for letter -1, 0*(?:[2-9]|10) at s[p],
 * where \b holds. */
/* After the digits of the pattern, at q: a boundary, or an optional glued pack word
 * ((?:pcs|pk|pack|packs)?, case-folded as RE2 folds it) and then one. */
static int ends_digits(const unsigned char *s, Py_ssize_t n, Py_ssize_t q) {
    if (byte_boundary(s, n, q)) return 1;
    for (int i = 0; i < n_glued; i++) {
        Py_ssize_t r = q, k = 0, step;
        while (k < glued_lengths[i] && r < n && (step = folded_letter(s, n, r, glued[i][k])) > 0) { r += step; k++; }
        if (k == glued_lengths[i] && byte_boundary(s, n, r)) return 1;
    }
    return 0;
}

static int pattern_at(const unsigned char *s, Py_ssize_t n, Py_ssize_t p, int letter) {
    if (letter < 0) {  /* taking fewer zeros never helps */
        Py_ssize_t q = p;
        while (q < n && s[q] == '0') q++;
        if (q < n && s[q] >= '2' && s[q] <= '9' && ends_digits(s, n, q + 1)) return 1;
        return q + 1 < n && s[q] == '1' && s[q + 1] == '0' && ends_digits(s, n, q + 2);
    }
    Py_ssize_t second = p + (s[p] == 0xC5 ? 2 : s[p] == 0xE2 ? 3 : 1);  /* after the first letter */
    if (second >= n || !pf_second[letter][s[second]]) return 0;
    for (int i = 0; i < n_pf_from[letter]; i++) {
        const unsigned char *word = pf_words[pf_from[letter][i]];
        Py_ssize_t len = pf_lengths[pf_from[letter][i]], q = p, k = 0, step;
        while (k < len && q < n && (step = folded_letter(s, n, q, word[k])) > 0) { q += step; k++; }
        if (k == len && byte_boundary(s, n, q)) return 1;
    }
    return 0;
}

/* The pattern may start where a run of word bytes starts (its first byte: a digit or a letter),
 * or at U+017F / U+212A (lead bytes C5 / E2) right after a word byte. */
static inline int starts_here(const unsigned char *s, Py_ssize_t n, Py_ssize_t p) {
    unsigned char b = s[p];
    if (re2_word_byte[b]) {
        if (p > 0 && re2_word_byte[s[p - 1]]) return 0;
        if (b == '_') return 0;
        return pattern_at(s, n, p, is_ascii_digit(b) ? -1 : (b | 0x20) - 'a');
    }
    if ((b == 0xC5 || b == 0xE2) && p > 0 && re2_word_byte[s[p - 1]])
        return pattern_at(s, n, p, b == 0xC5 ? 's' - 'a' : 'k' - 'a');
    return 0;
}

#if defined(__SSE2__)


/* 16 bytes at a time: where word runs start, and where C5 / E2 stand; the candidates are
 * then checked one by one (a dozen in a caption, against 70 bytes). `readable`: bytes that may
 * be read from s on (the rest of the Arrow data buffer): the last block is loaded in place when
 * they suffice, its bytes past n ignored. */
static int prefilter_passes(const unsigned char *s, Py_ssize_t n, Py_ssize_t readable) {
    unsigned int previous_word = 0;
    for (Py_ssize_t base = 0; base < n; base += 16) {
        unsigned char tail[16];
        const unsigned char *chunk = s + base;
        if (n - base < 16 && readable - base < 16) {
            memset(tail, 0, sizeof tail);
            memcpy(tail, s + base, (size_t)(n - base));
            chunk = tail;
        }
        __m128i x = _mm_loadu_si128((const __m128i *)chunk);
        __m128i folded = _mm_or_si128(x, _mm_set1_epi8(0x20));
        unsigned int word = (unsigned int)(_mm_movemask_epi8(byte_range(x, '0', '9')) | _mm_movemask_epi8(byte_range(folded, 'a', 'z'))
                                           | _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8('_'))));
        unsigned int special = (unsigned int)_mm_movemask_epi8(_mm_or_si128(
            _mm_cmpeq_epi8(x, _mm_set1_epi8((char)0xC5)), _mm_cmpeq_epi8(x, _mm_set1_epi8((char)0xE2))));
        unsigned int candidates = (word & ~((word << 1) | previous_word)) | special;
        if (n - base < 16) candidates &= (1u << (n - base)) - 1;
        while (candidates) {
            Py_ssize_t p = base + __builtin_ctz(candidates);
            candidates &= candidates - 1;
            /* Most word starts fail on their first two bytes: one look-up; most others on three. */
            unsigned char first = s[p];
            if (pf_pair[first][p + 1 < n ? s[p + 1] : 0] && (!is_ascii_letter(first) || triple_passes(s, n, p))
                    && starts_here(s, n, p))
                return 1;
        }
        previous_word = (word >> 15) & 1;
    }
    return 0;
}
#else
static int prefilter_passes(const unsigned char *s, Py_ssize_t n, Py_ssize_t readable) {
    (void)readable;
    for (Py_ssize_t p = 0; p < n; p++)
        if (starts_here(s, n, p)) return 1;
    return 0;
}
#endif

static PyObject *py_configure_prefilter(PyObject *self, PyObject *words) {
    (void)self;
    pf_configured = 0;
    if (!PyList_Check(words) || PyList_GET_SIZE(words) > MAX_PF_WORDS) {
        PyErr_SetString(PyExc_ValueError, "configure_prefilter: a list of at most 64 words");
        return NULL;
    }
    memset(n_pf_from, 0, sizeof n_pf_from);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(words); i++) {
        PyObject *word = PyList_GET_ITEM(words, i);
        Py_ssize_t len = PyUnicode_Check(word) ? PyUnicode_GET_LENGTH(word) : -1;
        if (len < 2 || len > 24) {
            PyErr_SetString(PyExc_ValueError, "configure_prefilter: words of 2 to 24 letters");
            return NULL;
        }
        for (Py_ssize_t k = 0; k < len; k++) {
            Py_UCS4 ch = PyUnicode_READ_CHAR(word, k);
            if (!(ch >= 'a' && ch <= 'z')) {
                PyErr_SetString(PyExc_ValueError, "configure_prefilter: words are lowercase ASCII letters");
                return NULL;
            }
            pf_words[i][k] = (unsigned char)ch;
        }
        pf_lengths[i] = len;
        int letter = pf_words[i][0] - 'a';
        pf_from[letter][n_pf_from[letter]++] = (unsigned char)i;
    }
    n_pf_words = (int)PyList_GET_SIZE(words);
    memset(pf_second, 0, sizeof pf_second);
    for (int i = 0; i < n_pf_words; i++) {
        unsigned char *second = pf_second[pf_words[i][0] - 'a'], c = pf_words[i][1];
        second[c] = second[c - 32] = 1;
        if (c == 's') second[0xC5] = 1;
        if (c == 'k') second[0xE2] = 1;
    }
    for (int b0 = 0; b0 < 256; b0++) {
        int letter = b0 < 128 && is_ascii_letter((cp)b0) ? (b0 | 0x20) - 'a' : -1;
        for (int b1 = 0; b1 < 256; b1++)
            pf_pair[b0][b1] = (unsigned char)((b0 >= '0' && b0 <= '9') || b0 == 0xC5 || b0 == 0xE2
                                              || (letter >= 0 && n_pf_from[letter] && pf_second[letter][b1]));
    }
    for (int b = 0; b < 256; b++) re2_word_byte[b] = b < 128 && (is_ascii_letter((cp)b) || is_ascii_digit((cp)b) || b == '_');
    memset(pf_triple, 0, sizeof pf_triple);
    pf_triple_on = 1;
    for (int i = 0; i < n_pf_words; i++) {
        const unsigned char *w = pf_words[i];
        if (pf_lengths[i] < 3 || w[1] == 's' || w[1] == 'k' || w[2] == 's' || w[2] == 'k') pf_triple_on = 0;
        else { uint32_t h = triple_hash(w[0], w[1], w[2]); pf_triple[h >> 3] |= (unsigned char)(1u << (h & 7)); }
    }
    pf_configured = 1;
    Py_RETURN_NONE;
}

/* filter_count_utf8(parts) -> (positions, values, nouns): the strings of an Arrow string array
 * (see StrArray) that pass the pre-filter, as their positions (int64, native order), and for
 * each find_count's value (int8, 0: none) and noun (None without one). Nulls never pass. */
static PyObject *py_filter_count_utf8(PyObject *self, PyObject *parts) {
    (void)self;
    if (!configured || !pf_configured) {
        PyErr_SetString(PyExc_RuntimeError, "_fastcount: configure() and configure_prefilter() first");
        return NULL;
    }
    StrArray a;
    if (str_array_parse(parts, &a) < 0) return NULL;
    PyObject *result = NULL, *positions = NULL, *values = NULL, *nouns = NULL;
    int64_t *at = PyMem_Malloc((size_t)(a.length > 0 ? a.length : 1) * sizeof(int64_t));
    char *value_of = PyMem_Malloc((size_t)(a.length > 0 ? a.length : 1));
    PyObject **noun_of = PyMem_Malloc((size_t)(a.length > 0 ? a.length : 1) * sizeof(PyObject *));
    Py_ssize_t found = 0;
    Buffers buf = {NULL, NULL, NULL, 0};
    if (at == NULL || value_of == NULL || noun_of == NULL) { PyErr_NoMemory(); goto done; }
    for (Py_ssize_t i = 0; i < a.length; i++) {
        const unsigned char *bytes;
        Py_ssize_t len;
        int got = str_array_get(&a, i, &bytes, &len);
        if (got < 0) goto done;
        if (got == 0 || !prefilter_passes(bytes, len, (const unsigned char *)a.data.buf + a.data.len - bytes)) continue;
        PyObject *noun;
        int value = count_utf8_string(bytes, len, i, &buf, &noun);
        if (value < 0) goto done;
        at[found] = i;
        value_of[found] = (char)value;
        noun_of[found++] = noun;  /* NULL: None */
    }
    positions = PyBytes_FromStringAndSize((const char *)at, found * (Py_ssize_t)sizeof(int64_t));
    values = PyBytes_FromStringAndSize(value_of, found);
    nouns = PyList_New(found);
    if (positions == NULL || values == NULL || nouns == NULL) goto done;
    for (Py_ssize_t k = 0; k < found; k++) {
        PyObject *noun = noun_of[k] != NULL ? noun_of[k] : Py_None;
        if (noun_of[k] == NULL) Py_INCREF(Py_None);
        noun_of[k] = NULL;  /* the list owns it now */
        PyList_SET_ITEM(nouns, k, noun);
    }
    result = Py_BuildValue("(OOO)", positions, values, nouns);
done:
    if (noun_of != NULL)
        for (Py_ssize_t k = 0; k < found; k++) Py_XDECREF(noun_of[k]);
    PyMem_Free(at);
    PyMem_Free(value_of);
    PyMem_Free(noun_of);
    PyMem_Free(buf.t);
    PyMem_Free(buf.lower);
    PyMem_Free(buf.cls);
    Py_XDECREF(positions);
    Py_XDECREF(values);
    Py_XDECREF(nouns);
    str_array_release(&a);
    return result;
}

/* ------------------------------------------------------------------ Python strings to Arrow */
/* utf8_strings(list) -> (offsets, data, validity or None): a list of str (or None) as the
 * buffers of an Arrow large_string array: int64 offsets, UTF-8 bytes, validity bits (None when
 * no item is None). Mining builds its noun columns this way, without a bytes object per noun. */
static PyObject *py_utf8_strings(PyObject *self, PyObject *list) {
    (void)self;
    if (!PyList_Check(list)) { PyErr_SetString(PyExc_TypeError, "utf8_strings: a list of str or None"); return NULL; }
    Py_ssize_t n = PyList_GET_SIZE(list), total = 0, nulls = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(list, i);
        if (item == Py_None) { nulls++; continue; }
        Py_ssize_t len;
        if (!PyUnicode_Check(item)) { PyErr_SetString(PyExc_TypeError, "utf8_strings: a list of str or None"); return NULL; }
        if (PyUnicode_AsUTF8AndSize(item, &len) == NULL) return NULL;  /* cached on the str; ASCII: its own bytes */
        total += len;
    }
    PyObject *offsets = PyBytes_FromStringAndSize(NULL, (n + 1) * (Py_ssize_t)sizeof(int64_t));
    PyObject *data = PyBytes_FromStringAndSize(NULL, total);
    PyObject *validity = nulls ? PyBytes_FromStringAndSize(NULL, (n + 7) / 8) : Py_NewRef(Py_None);
    if (offsets == NULL || data == NULL || validity == NULL) goto fail;
    int64_t *at = (int64_t *)PyBytes_AS_STRING(offsets);
    char *out = PyBytes_AS_STRING(data);
    unsigned char *bits = nulls ? (unsigned char *)PyBytes_AS_STRING(validity) : NULL;
    if (bits) memset(bits, 0, (size_t)(n + 7) / 8);
    int64_t filled = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(list, i);
        at[i] = filled;
        if (item == Py_None) continue;
        Py_ssize_t len;
        const char *utf8 = PyUnicode_AsUTF8AndSize(item, &len);
        if (utf8 == NULL) goto fail;
        memcpy(out + filled, utf8, (size_t)len);
        filled += len;
        if (bits) bits[i >> 3] |= (unsigned char)(1u << (i & 7));
    }
    at[n] = filled;
    PyObject *result = PyTuple_Pack(3, offsets, data, validity);
    Py_DECREF(offsets);
    Py_DECREF(data);
    Py_DECREF(validity);
    return result;
fail:
    Py_XDECREF(offsets);
    Py_XDECREF(data);
    Py_XDECREF(validity);
    return NULL;
}

/* ------------------------------------------------------------------ sampling keys */
/* BLAKE2b (RFC 7693), keyed, 8-byte digest: what countclip.mining.select.row_key computes with
 * hashlib.blake2b(identity + b"\0" + caption, digest_size=8, key=key), without a Python call per
 * row. tests/test_fastcount.py checks it against hashlib. */

static const uint64_t blake2b_iv[8] = {
    0x6a09e667f3bcc908ULL, 0xbb67ae8584caa73bULL, 0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
    0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL, 0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL,
};
static const uint8_t blake2b_sigma[12][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4}, {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13}, {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11}, {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5}, {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
};

static inline uint64_t rotr64(uint64_t x, int n) { return (x >> n) | (x << (64 - n)); }
static inline uint64_t load64(const uint8_t *p) {  /* little-endian, as BLAKE2b reads words */
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

typedef struct { uint64_t h[8]; uint64_t t; uint8_t block[128]; size_t filled; } Blake2b;

static void blake2b_compress(Blake2b *s, int last) {
    uint64_t v[16], m[16];
    for (int i = 0; i < 16; i++) m[i] = load64(s->block + 8 * i);
    for (int i = 0; i < 8; i++) { v[i] = s->h[i]; v[i + 8] = blake2b_iv[i]; }
    v[12] ^= s->t;  /* the counter's high word stays 0: inputs here are far below 2^64 bytes */
    if (last) v[14] = ~v[14];
#define G(a, b, c, d, x, y)                       \
    do {                                          \
        v[a] = v[a] + v[b] + (x); v[d] = rotr64(v[d] ^ v[a], 32); \
        v[c] = v[c] + v[d];       v[b] = rotr64(v[b] ^ v[c], 24); \
        v[a] = v[a] + v[b] + (y); v[d] = rotr64(v[d] ^ v[a], 16); \
        v[c] = v[c] + v[d];       v[b] = rotr64(v[b] ^ v[c], 63); \
    } while (0)
    /* The twelve rounds written out: with constant indices into blake2b_sigma the compiler reads
     * each message word straight from m[] and keeps v[] in registers (a loop over the rounds
     * cost twice the instructions). */
#define ROUND(r)                                                                   \
    do {                                                                           \
        G(0, 4, 8, 12, m[blake2b_sigma[r][0]], m[blake2b_sigma[r][1]]);            \
        G(1, 5, 9, 13, m[blake2b_sigma[r][2]], m[blake2b_sigma[r][3]]);            \
        G(2, 6, 10, 14, m[blake2b_sigma[r][4]], m[blake2b_sigma[r][5]]);           \
        G(3, 7, 11, 15, m[blake2b_sigma[r][6]], m[blake2b_sigma[r][7]]);           \
        G(0, 5, 10, 15, m[blake2b_sigma[r][8]], m[blake2b_sigma[r][9]]);           \
        G(1, 6, 11, 12, m[blake2b_sigma[r][10]], m[blake2b_sigma[r][11]]);         \
        G(2, 7, 8, 13, m[blake2b_sigma[r][12]], m[blake2b_sigma[r][13]]);          \
        G(3, 4, 9, 14, m[blake2b_sigma[r][14]], m[blake2b_sigma[r][15]]);          \
    } while (0)
    ROUND(0); ROUND(1); ROUND(2); ROUND(3); ROUND(4); ROUND(5);
    ROUND(6); ROUND(7); ROUND(8); ROUND(9); ROUND(10); ROUND(11);
#undef ROUND
#undef G
    for (int i = 0; i < 8; i++) s->h[i] ^= v[i] ^ v[i + 8];
}

static void blake2b_update(Blake2b *s, const uint8_t *data, size_t len) {
    while (len > 0) {
        if (s->filled == 128) {  /* a full block is compressed only once more input follows */
            s->t += 128;
            blake2b_compress(s, 0);
            s->filled = 0;
        }
        size_t take = 128 - s->filled < len ? 128 - s->filled : len;
        memcpy(s->block + s->filled, data, take);
        s->filled += take;
        data += take;
        len -= take;
    }
}

static void blake2b_keyed_init(Blake2b *s, const uint8_t *key, size_t key_len, size_t digest_len) {
    for (int i = 0; i < 8; i++) s->h[i] = blake2b_iv[i];
    s->h[0] ^= 0x01010000ULL ^ ((uint64_t)key_len << 8) ^ digest_len;
    s->t = 0;
    s->filled = 0;
    memset(s->block, 0, sizeof s->block);
    if (key_len) {
        memcpy(s->block, key, key_len);
        s->filled = 128;  /* the key, zero-padded, is the first block */
    }
}

static uint64_t blake2b_final64(Blake2b *s) {
    s->t += s->filled;
    memset(s->block + s->filled, 0, 128 - s->filled);
    blake2b_compress(s, 1);
    return s->h[0];  /* the first 8 bytes of the digest, read little-endian */
}

/* sampling_keys(key, identities, captions) -> bytes: per row, the key of (identity, caption),
 * both Arrow string arrays as buffers (see StrArray), identities without nulls. */
static PyObject *py_sampling_keys(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer key;
    PyObject *identity_parts, *caption_parts, *out = NULL;
    if (!PyArg_ParseTuple(args, "y*OO", &key, &identity_parts, &caption_parts)) return NULL;
    StrArray ids, caps;
    int have_ids = 0, have_caps = 0;
    if (key.len > 64) { PyErr_SetString(PyExc_ValueError, "sampling_keys: a BLAKE2b key has at most 64 bytes"); goto done; }
    if (str_array_parse(identity_parts, &ids) < 0) goto done;
    have_ids = 1;
    if (str_array_parse(caption_parts, &caps) < 0) goto done;
    have_caps = 1;
    if (ids.length != caps.length) { PyErr_SetString(PyExc_ValueError, "sampling_keys: lengths differ"); goto done; }
    out = PyBytes_FromStringAndSize(NULL, ids.length * 8);
    if (out == NULL) goto done;
    Blake2b keyed;
    blake2b_keyed_init(&keyed, key.buf, (size_t)key.len, 8);
    if (key.len) {  /* every message holds at least the separator: the key block is never the last */
        keyed.t += 128;
        blake2b_compress(&keyed, 0);
        keyed.filled = 0;
    }
    uint8_t *dst = (uint8_t *)PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < ids.length; i++) {
        const unsigned char *a, *b;
        Py_ssize_t a_len, b_len;
        int got_a = str_array_get(&ids, i, &a, &a_len), got_b = got_a < 0 ? -1 : str_array_get(&caps, i, &b, &b_len);
        if (got_a <= 0 || got_b <= 0) {
            if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "sampling_keys: row %zd is null", i);
            Py_CLEAR(out);
            goto done;
        }
        Blake2b h = keyed;
        blake2b_update(&h, a, (size_t)a_len);
        blake2b_update(&h, (const uint8_t *)"", 1);  /* the separator, b"\0" */
        blake2b_update(&h, b, (size_t)b_len);
        uint64_t digest = blake2b_final64(&h);
        for (int k = 0; k < 8; k++) dst[8 * i + k] = (uint8_t)(digest >> (8 * k));
    }
done:
    if (have_ids) str_array_release(&ids);
    if (have_caps) str_array_release(&caps);
    PyBuffer_Release(&key);
    return out;
}

static int read_charset(PyObject *chars, const char *name, CharSet *out) {
    PyObject *s = PyDict_GetItemString(chars, name);
    if (s == NULL || !PyUnicode_Check(s)) { PyErr_Format(PyExc_KeyError, "configure: chars[%s] (str) missing", name); return -1; }
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (n > MAX_CHARS) { PyErr_Format(PyExc_ValueError, "configure: chars[%s] too long", name); return -1; }
    out->n = (int)n;
    out->ascii[0] = out->ascii[1] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        cp ch = PyUnicode_READ_CHAR(s, i);
        out->c[i] = ch;
        if (ch < 128) out->ascii[ch >> 6] |= 1ULL << (ch & 63);
    }
    return 0;
}

static int copy_cps(PyObject *s, cp *dst, Py_ssize_t cap, Py_ssize_t *len) {
    if (!PyUnicode_Check(s)) { PyErr_SetString(PyExc_TypeError, "configure: expected str"); return -1; }
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (n == 0 || n > cap) { PyErr_SetString(PyExc_ValueError, "configure: empty or too long a word"); return -1; }
    for (Py_ssize_t i = 0; i < n; i++) dst[i] = PyUnicode_READ_CHAR(s, i);
    *len = n;
    return 0;
}

static int read_sets(PyObject *sets) {
    Py_ssize_t total = 0;
    for (size_t k = 0; k < N_SETS; k++) {
        PyObject *words = PyDict_GetItemString(sets, SET_NAMES[k].name);
        if (words == NULL) { PyErr_Format(PyExc_KeyError, "configure: sets[%s] missing", SET_NAMES[k].name); return -1; }
        Py_ssize_t size = PyObject_Size(words);
        if (size < 0) return -1;
        total += size;
    }
    size_t cap = 64;
    while (cap < (size_t)(total + MAX_PHRASES) * 4) cap <<= 1;
    table_free();
    table = PyMem_Calloc(cap, sizeof(Entry));
    if (table == NULL) { PyErr_NoMemory(); return -1; }
    table_mask = cap - 1;
    for (size_t k = 0; k < N_SETS; k++) {
        PyObject *iter = PyObject_GetIter(PyDict_GetItemString(sets, SET_NAMES[k].name));
        if (iter == NULL) return -1;
        PyObject *word;
        while ((word = PyIter_Next(iter)) != NULL) {
            Py_ssize_t n = PyUnicode_Check(word) ? PyUnicode_GET_LENGTH(word) : -1;
            Py_UCS4 *cps = n > 0 ? PyUnicode_AsUCS4Copy(word) : NULL;
            Py_DECREF(word);
            if (cps == NULL) {
                Py_DECREF(iter);
                if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "configure: sets[%s] holds an empty or non-str word", SET_NAMES[k].name);
                return -1;
            }
            Entry *added = table_add(cps, n, SET_NAMES[k].bit);
            PyMem_Free(cps);
            if (added == NULL) { Py_DECREF(iter); return -1; }
        }
        Py_DECREF(iter);
        if (PyErr_Occurred()) return -1;
    }
    return 0;
}

static PyObject *py_configure(PyObject *self, PyObject *args, PyObject *kwargs) {
    (void)self;
    static char *names[] = {"sets", "phrases", "chars", "word_ranges", "adjective_suffixes", "left_window",
                            "set_noun_tokens", "story_start", "story_words", "long_caption", "glued_pack_words",
                            "prose_caption", NULL};
    PyObject *sets, *phrase_list, *chars, *ranges, *suffix_list, *glued_list;
    Py_ssize_t window, story, story_n, long_text, prose;
    int set_tokens;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!O!O!O!ninnnO!n", names, &PyDict_Type, &sets, &PyList_Type,
                                     &phrase_list, &PyDict_Type, &chars, &PyList_Type, &ranges, &PyList_Type,
                                     &suffix_list, &window, &set_tokens, &story, &story_n, &long_text,
                                     &PyList_Type, &glued_list, &prose))
        return NULL;
    Py_ssize_t ng = PyList_GET_SIZE(glued_list);
    if (ng > MAX_GLUED) { PyErr_SetString(PyExc_ValueError, "configure: too many glued pack words"); return NULL; }
    for (Py_ssize_t i = 0; i < ng; i++) {
        PyObject *word = PyList_GET_ITEM(glued_list, i);
        Py_ssize_t len = PyUnicode_Check(word) ? PyUnicode_GET_LENGTH(word) : -1;
        if (len < 1 || len > 8) { PyErr_SetString(PyExc_ValueError, "configure: glued pack words of 1 to 8 letters"); return NULL; }
        for (Py_ssize_t k = 0; k < len; k++) {
            Py_UCS4 ch = PyUnicode_READ_CHAR(word, k);
            if (!(ch >= 'a' && ch <= 'z')) { PyErr_SetString(PyExc_ValueError, "configure: glued pack words are a-z"); return NULL; }
            glued[i][k] = (unsigned char)ch;
        }
        glued_lengths[i] = len;
    }
    n_glued = (int)ng;
    configured = 0;
    if (read_sets(sets) < 0) return NULL;
    Py_ssize_t np = PyList_GET_SIZE(phrase_list);
    if (np > MAX_PHRASES) { PyErr_SetString(PyExc_ValueError, "configure: too many phrases"); return NULL; }
    n_phrases = 0;
    memset(n_phrases_from, 0, sizeof n_phrases_from);
    memset(word_phrase_ends, 0, sizeof word_phrase_ends);
    memset(word_phrase_starts, 0, sizeof word_phrase_starts);
    word_phrase_min = 1 << 30;
    word_phrase_max = 0;
    for (Py_ssize_t i = 0; i < np; i++) {  /* (phrase lowercase, value or None, is_idiom) */
        PyObject *item = PyList_GET_ITEM(phrase_list, i), *text, *value;
        int idiom;
        Phrase phrase;
        if (!PyArg_ParseTuple(item, "OOp", &text, &value, &idiom)) return NULL;
        if (copy_cps(text, phrase.text, 32, &phrase.len) < 0) return NULL;
        phrase.value = value == Py_None ? -1 : (int)PyLong_AsLong(value);
        if (PyErr_Occurred()) return NULL;
        phrase.idiom = idiom;
        int has_blank = 0;
        for (Py_ssize_t k = 0; k < phrase.len; k++) {
            if (phrase.text[k] == ' ') has_blank = 1;
            else if (!(phrase.text[k] >= 'a' && phrase.text[k] <= 'z')) {
                PyErr_SetString(PyExc_ValueError, "configure: a phrase is lowercase ASCII letters and blanks");
                return NULL;
            }
        }
        if (has_blank != idiom || phrase.text[0] == ' ' || phrase.text[phrase.len - 1] == ' ') {
            PyErr_SetString(PyExc_ValueError, "configure: an idiom has inner blanks, a word none");
            return NULL;
        }
        if (idiom) {
            cp first = phrase.text[0];
            phrases[n_phrases] = phrase;
            phrases_from[first][n_phrases_from[first]++] = (unsigned char)n_phrases;
            n_phrases++;
        } else {
            Entry *entry = table_add(phrase.text, phrase.len, W_PHRASE);
            if (entry == NULL) return NULL;
            entry->value = phrase.value;
            if (phrase.len < 2) {
                PyErr_SetString(PyExc_ValueError, "configure: a one-word numeral has two letters or more");
                return NULL;
            }
            word_phrase_ends[phrase.text[0] - 'a'][phrase.text[phrase.len - 1] - 'a'] = 1;
            word_phrase_starts[phrase.text[0] - 'a'][phrase.text[1] - 'a'] = 1;
            if (phrase.len < word_phrase_min) word_phrase_min = phrase.len;
            if (phrase.len > word_phrase_max) word_phrase_max = phrase.len;
        }
    }
    Py_ssize_t ns = PyList_GET_SIZE(suffix_list);
    if (ns > MAX_SUFFIXES) { PyErr_SetString(PyExc_ValueError, "configure: too many suffixes"); return NULL; }
    for (Py_ssize_t i = 0; i < ns; i++)
        if (copy_cps(PyList_GET_ITEM(suffix_list, i), suffixes[i].text, 16, &suffixes[i].len) < 0) return NULL;
    n_suffixes = (int)ns;
    Py_ssize_t nr = PyList_GET_SIZE(ranges);
    if (nr > MAX_RANGES) { PyErr_SetString(PyExc_ValueError, "configure: too many word ranges"); return NULL; }
    for (Py_ssize_t i = 0; i < nr; i++) {
        unsigned int lo, hi;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(ranges, i), "II", &lo, &hi)) return NULL;
        word_ranges[i][0] = lo;
        word_ranges[i][1] = hi;
    }
    n_word_ranges = (int)nr;
    for (cp ch = 0; ch < 128; ch++) {
        ascii_word_char[ch] = 0;
        for (int i = 0; i < n_word_ranges; i++)
            if (ch >= word_ranges[i][0] && ch <= word_ranges[i][1]) ascii_word_char[ch] = 1;
    }
    for (cp ch = 0; ch < 128; ch++)
        ascii_cls[ch] = (unsigned char)((ascii_word_char[ch] ? C_WORD : 0) | (is_ascii_letter(ch) ? C_LETTER : 0)
                                        | (is_ascii_digit(ch) ? C_DIGIT : 0) | (is_space(ch) ? C_SPACE : 0)
                                        | (ch == ' ' || ch == '\t' ? C_BLANK : 0));
#if defined(__SSE2__)
    ascii_blocks = ascii_blocks_agree();
#endif
    if (read_charset(chars, "punct", &punct) < 0 || read_charset(chars, "sentence_end", &sentence_end) < 0
            || read_charset(chars, "joiners", &joiners) < 0 || read_charset(chars, "prefix_symbols", &prefix_symbols) < 0
            || read_charset(chars, "after_symbols", &after_symbols) < 0
            || read_charset(chars, "after_triggers", &after_triggers) < 0
            || read_charset(chars, "before_triggers", &before_triggers) < 0
            || read_charset(chars, "prev_end_triggers", &prev_end_triggers) < 0
            || read_charset(chars, "prev_word_separators", &prev_word_separators) < 0
            || read_charset(chars, "set_separators", &set_separators) < 0)
        return NULL;
    left_window = window;
    set_noun_tokens = set_tokens;
    story_start = story;
    story_words = story_n;
    long_caption = long_text;
    prose_caption = prose;
    configured = 1;
    Py_RETURN_NONE;
}

static PyObject *py_features(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
#if defined(__SSE2__)
    return Py_BuildValue("{s:O,s:O}", "sse2", Py_True, "ascii_blocks", ascii_blocks ? Py_True : Py_False);
#else
    return Py_BuildValue("{s:O,s:O}", "sse2", Py_False, "ascii_blocks", Py_False);
#endif
}

static PyMethodDef methods[] = {
    {"features", py_features, METH_NOARGS, "features() -> {'sse2': bool, 'ascii_blocks': bool}: the fast paths in use."},
    {"configure", (PyCFunction)(void (*)(void))py_configure, METH_VARARGS | METH_KEYWORDS,
     "configure(sets, phrases, chars, word_ranges, adjective_suffixes, left_window, set_noun_tokens, story_start, "
     "story_words, long_caption, glued_pack_words, prose_caption): load the lexicon."},
    {"sampling_keys", py_sampling_keys, METH_VARARGS,
     "sampling_keys(key, identities, captions) -> bytes: blake2b(identity + b'\\0' + caption, digest_size=8, "
     "key=key) per row, as little-endian uint64; both arrays as buffers (data, offsets, wide, offset, length, "
     "validity)."},
    {"configure_prefilter", py_configure_prefilter, METH_O,
     "configure_prefilter(words): the mining pre-filter's words (lowercase ASCII letters)."},
    {"filter_count_utf8", py_filter_count_utf8, METH_O,
     "filter_count_utf8((data, offsets, wide, offset, length, validity)) -> (positions, values, nouns): the "
     "strings that pass the mining pre-filter, and count_many on them."},
    {"count_utf8", py_count_utf8, METH_O,
     "count_utf8((data, offsets, wide, offset, length, validity)) -> (values, nouns): count_many on an Arrow "
     "string array's buffers."},
    {"utf8_strings", py_utf8_strings, METH_O,
     "utf8_strings(list of str or None) -> (offsets, data, validity or None): an Arrow large_string array's buffers."},
    {"count_many", py_count_many, METH_O,
     "count_many(captions) -> (bytes of values, list of nouns): find_count's value (0: none) and noun per caption."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastcount", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fastcount(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
#ifdef SOURCE_SHA256
    if (PyModule_AddStringConstant(m, "SOURCE_SHA256", SOURCE_SHA256) < 0) { Py_DECREF(m); return NULL; }
#endif
    return m;
}
