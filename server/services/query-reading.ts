/**
 * The service's reading of a query around the shared count core (server/counts/, which stays
 * identical to the Python and C ports): an article before a lone noun ("a cat") read as count
 * 1, and, when count-aware search cannot apply, notes that say why, with the nearest reading
 * that it could apply to ("thre catss" -> "three cats") when there is one.
 */
import type { components } from "../api/types.gen.ts";
import { NUMBER_WORDS, parseQuery, type ParsedQuery } from "../counts/counts.ts";
import { MAX_COUNT } from "./scoring.ts";

export type SearchNote = components["schemas"]["SearchNote"];

/**
 * "a cat", "an apple", "a single dog", "a photo of a cat": the whole query is one article and
 * one noun. Anything longer stays the core's (an article inside a sentence is no count claim),
 * and quantity words are no nouns ("a few", "a dozen" are the core's to read).
 */
const ARTICLE_NOUN = /^(?:(?:a|an)\s+(?:photo|picture|image|drawing)\s+of\s+)?(?:an?|an?\s+single|single|just\s+one)\s+(\p{L}[\p{L}'-]*)$/iu;
const NOT_NOUNS = new Set("few lot lots couple dozen pair bunch group number handful score little bit many photo picture image drawing".split(" "));

export function readQuery(text: string): ParsedQuery {
  const parsed = parseQuery(text);
  if (parsed.count !== null) return parsed;
  const m = ARTICLE_NOUN.exec(text.trim().replace(/\s+/g, " "));
  const noun = m?.[1];
  if (noun === undefined || NOT_NOUNS.has(noun.toLowerCase())) return parsed;
  return { count: 1, noun, singular: noun };
}

const COUNT_WORDS = NUMBER_WORDS.slice(1, MAX_COUNT + 1);

/** Why count-aware ranking did not (fully) apply to `parsed`, with a nearby reading when one exists. */
export function queryNotes(text: string, parsed: ParsedQuery, countAwareAsked: boolean, nouns: ReadonlySet<string>): SearchNote[] {
  const notes: SearchNote[] = [];
  if (parsed.count === null) {
    if (!countAwareAsked) return notes;
    const note: SearchNote = { code: "no-count", message: "no count found in the query, so hits are ranked by similarity alone (countAware is false)" };
    const suggestion = nearestReading(text, nouns);
    if (suggestion !== undefined) {
      note.suggestion = suggestion;
      note.message += `; did you mean "${suggestion}"?`;
    }
    notes.push(note);
  } else if (parsed.count < 1 || parsed.count > MAX_COUNT) {
    notes.push({ code: "count-out-of-range", message: `the count ${parsed.count} is outside 1..${MAX_COUNT}, the counts the model scores, so hits are ranked by similarity alone` });
  } else if (parsed.noun === null) {
    notes.push({ code: "no-noun", message: `no noun found after the count, so "objects" were counted` });
  } else if (nouns.size > 0 && !nouns.has(parsed.noun.toLowerCase()) && !nouns.has((parsed.singular ?? "").toLowerCase())) {
    const near = nearest(parsed.noun.toLowerCase(), nouns);
    if (near !== undefined) {
      const suggestion = text.replace(parsed.noun, near);
      notes.push({ code: "unknown-noun", message: `the gallery holds no "${parsed.noun}"; did you mean "${suggestion}"?`, suggestion });
    }
  }
  return notes;
}

/**
 * The query with misspelt count words and nouns replaced by the nearest known ones (count
 * words one..ten; nouns from `nouns`, the gallery's), when that reading states a count 1..10.
 * A word becomes a count word only right before a known noun (any word when none are known),
 * so "toys for kids" does not turn into "toys four kids".
 */
export function nearestReading(text: string, nouns: ReadonlySet<string>): string | undefined {
  const words = [...text.matchAll(/\p{L}+/gu)].map((m) => ({ at: m.index ?? 0, word: m[0], fixed: m[0] }));
  const known = (w: string) => COUNT_WORDS.includes(w) || nouns.has(w);
  for (const w of words) {
    const lower = w.word.toLowerCase();
    if (!known(lower)) w.fixed = nearest(lower, nouns) ?? w.word;
  }
  for (const [i, w] of words.entries()) {
    const next = words[i + 1];
    const lower = w.word.toLowerCase();
    if (known(lower) || next === undefined || (nouns.size > 0 && !nouns.has(next.fixed.toLowerCase()))) continue;
    w.fixed = nearest(lower, COUNT_WORDS) ?? w.fixed;
  }
  if (words.every((w) => w.fixed === w.word)) return undefined;
  let replaced = text;
  for (const w of [...words].reverse()) replaced = replaced.slice(0, w.at) + w.fixed + replaced.slice(w.at + w.word.length);
  const reading = parseQuery(replaced);
  return reading.count !== null && reading.count >= 1 && reading.count <= MAX_COUNT ? replaced : undefined;
}

/**
 * The closest candidate within a small edit distance (1, or 2 for words of 6+ letters); among
 * equally close ones the one of the word's length ("catz" -> "cats", not "cat"); none if that
 * still ties.
 */
function nearest(word: string, candidates: Iterable<string>): string | undefined {
  if (word.length < 3) return undefined;
  const budget = word.length >= 6 ? 2 : 1;
  let best: string | undefined;
  let bestKey = [budget + 1, 0];
  let tie = false;
  for (const candidate of candidates) {
    const lengthGap = Math.abs(candidate.length - word.length);
    if (lengthGap > budget) continue;
    const key = [editDistance(word, candidate, budget), lengthGap];
    const order = key[0]! - bestKey[0]! || key[1]! - bestKey[1]!;
    if (order < 0) [best, bestKey, tie] = [candidate, key, false];
    else if (order === 0 && candidate !== best) tie = true;
  }
  return best !== undefined && !tie && bestKey[0]! <= budget ? best : undefined;
}

/** Damerau-Levenshtein (optimal string alignment) distance, or budget + 1 once it exceeds it. */
export function editDistance(a: string, b: string, budget = Infinity): number {
  let prev2: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, prev2[j - 2]! + 1);
      row.push(d);
      rowMin = Math.min(rowMin, d);
    }
    if (rowMin > budget) return budget + 1;
    [prev2, prev] = [prev, row];
  }
  return prev[b.length]!;
}
