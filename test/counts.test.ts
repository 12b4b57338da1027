/**
 * The TypeScript count core against the shared specification (test/vectors/counts.json, the
 * same file pytest reads) and the CountBench targets (skipped when ../shared is absent).
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  type CountMatch,
  countVariants,
  explain,
  findCount,
  NUMBER_WORDS,
  numberWord,
  parseQuery,
  pluralize,
  replaceCount,
  singularize,
} from "../server/counts/counts.ts";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const COUNTBENCH = path.join(REPO, "..", "shared", "countbench", "CountBench.json");

interface Vectors {
  find_count: Array<{ text: string; expect: CountMatch | null; tag?: string }>;
  replace_count: Array<{ text: string; span: [number, number]; n: number; expect: string }>;
  count_variants: Array<{ text: string; number: number; expect: string[] }>;
  parse_query: Array<{ text: string; expect: ReturnType<typeof parseQuery> }>;
  number_word: Array<{ n: number; expect: string }>;
  errors: Array<{ fn: string; text?: string; span?: [number, number]; n?: number; number?: number }>;
}
const vectors = JSON.parse(readFileSync(path.join(REPO, "test", "vectors", "counts.json"), "utf8")) as Vectors;

test("find_count vectors", () => {
  assert.ok(vectors.find_count.length >= 1000);
  const failures = vectors.find_count.filter((c) => !isDeepStrictEqualJson(findCount(c.text), c.expect));
  assert.deepEqual(
    failures.map((c) => ({ text: c.text, got: findCount(c.text), expect: c.expect })),
    [],
  );
});

test("replace_count vectors", () => {
  for (const c of vectors.replace_count) assert.equal(replaceCount(c.text, c.span, c.n), c.expect, c.text);
});

test("count_variants vectors: nine captions, the original among them", () => {
  for (const c of vectors.count_variants) {
    const got = countVariants(c.text, c.number);
    assert.deepEqual(got, c.expect, c.text);
    assert.equal(got.length, 9);
    assert.ok(got.includes(c.text));
  }
});

test("parse_query and number_word vectors", () => {
  for (const c of vectors.parse_query) assert.deepEqual(parseQuery(c.text), c.expect, c.text);
  for (const c of vectors.number_word) assert.equal(numberWord(c.n), c.expect);
});

test("error vectors throw RangeError", () => {
  for (const c of vectors.errors) {
    const call = (): unknown =>
      c.fn === "replace_count"
        ? replaceCount(c.text!, c.span!, c.n!)
        : c.fn === "count_variants"
          ? countVariants(c.text!, c.number!)
          : numberWord(c.n!);
    assert.throws(call, RangeError, JSON.stringify(c));
  }
});

test("offsets are code points, not UTF-16 units", () => {
  assert.deepEqual(findCount("😀😀 three cats"), { count: 3, start: 3, end: 8, noun: "cats" });
  assert.equal(replaceCount("😀 three cats", [2, 7], 1), "😀 one cat");
  assert.deepEqual(explain("\ud800 two cats")[0], { text: "two", start: 2, end: 5, value: 2, reason: null, noun: "cats" });
});

test("bad input never throws", () => {
  const texts = ["", "\ud800 three cats \udfff", `${"😀".repeat(1000)} two dogs`, "٣ cats", "three ".repeat(20000),
    `${"x".repeat(100_000)} two cats`, "\x00 two\x7f cats", "שתי two חתולות", "Ⅻ cats"];
  for (const text of texts) {
    findCount(text);
    parseQuery(text);
    explain(text);
  }
  assert.deepEqual(findCount(`${"x".repeat(100_000)} two cats`), { count: 2, start: 100_001, end: 100_004, noun: "cats" });
  assert.equal(findCount("٣ cats"), null);
});

test("singularize and pluralize", () => {
  const pairs = [["cats", "cat"], ["light bulbs", "light bulb"], ["children", "child"], ["puppies", "puppy"],
    ["boxes", "box"], ["glasses", "glass"], ["knives", "knife"], ["sheep", "sheep"], ["movies", "movie"],
    ["Buses", "Bus"], ["TOMATOES", "TOMATO"]];
  for (const [plural, singular] of pairs) {
    assert.equal(singularize(plural!), singular);
    assert.equal(pluralize(singular!), plural);
  }
});

interface CountBenchEntry {
  text: string;
  number: number;
}

test("CountBench: find_count is wrong on at most 1% and abstains on at most 10%", { skip: skipWithoutCountBench() }, () => {
  const entries = JSON.parse(readFileSync(COUNTBENCH, "utf8")) as CountBenchEntry[];
  const found = entries.map((e) => findCount(e.text));
  const wrong = entries.filter((e, i) => found[i] !== null && found[i]!.count !== e.number);
  const abstained = found.filter((m) => m === null).length;
  assert.ok(wrong.length <= 0.01 * entries.length, JSON.stringify(wrong.slice(0, 5)));
  assert.ok(abstained <= 0.1 * entries.length, `${abstained} abstentions`);
});

test("CountBench: count_variants changes exactly the annotated number", { skip: skipWithoutCountBench() }, () => {
  const entries = JSON.parse(readFileSync(COUNTBENCH, "utf8")) as CountBenchEntry[];
  for (const e of entries) {
    const variants = countVariants(e.text, e.number);
    assert.equal(variants[e.number - 2], e.text);
    const expected = [2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => oracleVariant(e.text, e.number, n));
    assert.deepEqual(variants, expected, e.text);
  }
});

/** Independent oracle: every standalone occurrence of the word, any case, becomes n's word in its case. */
function oracleVariant(text: string, number: number, n: number): string {
  const word = NUMBER_WORDS[number]!;
  const fresh = NUMBER_WORDS[n]!;
  return text.replace(new RegExp(`(?<![A-Za-z0-9-])${word}(?![A-Za-z0-9])`, "gi"), (old) =>
    old === old.toUpperCase() ? fresh.toUpperCase() : old[0] === old[0]!.toUpperCase() ? fresh[0]!.toUpperCase() + fresh.slice(1) : fresh,
  );
}

function skipWithoutCountBench(): string | false {
  return existsSync(COUNTBENCH) ? false : `${COUNTBENCH} absent`;
}

function isDeepStrictEqualJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
