/**
 * The TypeScript CLIP tokenizer against transformers.CLIPTokenizer: committed edge-case vectors
 * (test/vectors/tokenizer.json, from scripts/generators/make_tokenizer_vectors.py), the 540 CountBench
 * captions and the LAION captions (Python run at test time), from both vocab.json + merges.txt
 * and a bundle's tokenizer.json.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { before, describe, test } from "node:test";
import { loadTokenizer, tokenizerFromJson, TokenizerError, type ClipTokenizer } from "../server/model/tokenizer.ts";
import { REPO_ROOT, testBundleOrSkip } from "./helpers/bundle.ts";
import { countBenchCaptions, laionCaptions, pythonUnavailableReason, runPythonJson } from "./helpers/python-ref.ts";

interface VectorCase { text: string; context_length: number; ids: number[] }

const BPE_DIR = path.join(REPO_ROOT, "training", "countclip", "assets", "clip-bpe");
const VECTORS = JSON.parse(readFileSync(path.join(REPO_ROOT, "test", "vectors", "tokenizer.json"), "utf8")) as { cases: VectorCase[] };
const VOCAB = path.join(BPE_DIR, "vocab.json");
const MERGES = path.join(BPE_DIR, "merges.txt");
const LAION_SAMPLE = 4000;

function fromAssets(contextLength: number): Promise<ClipTokenizer> {
  return loadTokenizer({ vocabJson: VOCAB, mergesTxt: MERGES }, contextLength);
}

function checkVectors(byLength: Map<number, ClipTokenizer>): void {
  const failures: string[] = [];
  for (const c of VECTORS.cases) {
    const got = byLength.get(c.context_length)!.encode(c.text).ids;
    if (JSON.stringify(got) !== JSON.stringify(c.ids)) {
      failures.push(`${JSON.stringify(c.text).slice(0, 60)} @${c.context_length}: expected ${c.ids.join(" ")}, got ${got.join(" ")}`);
    }
  }
  assert.deepEqual(failures, []);
}

describe("tokenizer edge-case vectors", () => {
  test("vectors cover what the issue lists", () => {
    const texts = VECTORS.cases.map((c) => c.text);
    assert.ok(texts.includes(""), "empty string");
    assert.ok(texts.some((t) => /\p{Extended_Pictographic}/u.test(t)), "emoji");
    assert.ok(texts.some((t) => t.length > 300), "very long text");
    assert.ok(VECTORS.cases.some((c) => c.ids.length === c.context_length), "truncated to the context length");
    assert.ok(VECTORS.cases.length >= 150);
  });

  test("vocab.json + merges.txt reproduce every vector", async () => {
    checkVectors(new Map([[77, await fromAssets(77)], [32, await fromAssets(32)]]));
  });

  test("a bundle's tokenizer.json reproduces every vector", async (t) => {
    const dir = await testBundleOrSkip(t);
    if (!dir) return;
    const json: unknown = JSON.parse(readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
    const config: unknown = JSON.parse(readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
    checkVectors(new Map([77, 32].map((n) => [n, tokenizerFromJson(json, config, n)])));
  });
});

describe("tokenizer behaviour", () => {
  let tok: ClipTokenizer;
  before(async () => { tok = await fromAssets(77); });

  test("bos/eos wrap and truncation keeps eos", () => {
    assert.deepEqual(tok.encode("").ids, [49406, 49407]);
    const long = tok.encode("cat ".repeat(500)).ids;
    assert.equal(long.length, 77);
    assert.equal(long[0], 49406);
    assert.equal(long[76], 49407);
  });

  test("encodeBatch pads to the longest with pad id and a 0 mask", () => {
    const enc = tok.encodeBatch(["three cats", "a photo of two dogs on a bench"]);
    const short = tok.encode("three cats").ids;
    const long = tok.encode("a photo of two dogs on a bench").ids;
    assert.equal(enc.batch, 2);
    assert.equal(enc.seqLen, long.length);
    const row0 = Array.from(enc.inputIds.subarray(0, enc.seqLen), Number);
    const mask0 = Array.from(enc.attentionMask.subarray(0, enc.seqLen), Number);
    assert.deepEqual(row0.slice(0, short.length), short);
    assert.ok(row0.slice(short.length).every((id) => id === tok.padId));
    assert.deepEqual(mask0, short.map(() => 1).concat(Array(enc.seqLen - short.length).fill(0)));
    assert.deepEqual(Array.from(enc.inputIds.subarray(enc.seqLen), Number), long);
  });

  test("lone surrogates (possible in JSON strings) encode as U+FFFD instead of throwing", () => {
    assert.deepEqual(tok.encode("\ud800 cat").ids, tok.encode("\ufffd cat").ids);
  });

  test("the per-word cache returns the same ids on repeat calls", () => {
    const text = "Seven balloons floating over a café 🎈";
    assert.deepEqual(tok.encode(text).ids, tok.encode(text).ids);
  });

  test("refuses tokenizer.json pipelines it does not implement", () => {
    const base = {
      normalizer: { type: "Sequence", normalizers: [{ type: "NFC" }, { type: "Lowercase" }] },
      pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "Split", pattern: { Regex: "[\\p{L}]+" } }, { type: "ByteLevel" }] },
      model: { type: "BPE", end_of_word_suffix: "</w>", vocab: { "<|startoftext|>": 0, "<|endoftext|>": 1 }, merges: [] },
      added_tokens: [],
    };
    assert.ok(tokenizerFromJson(base, {}, 77));
    assert.throws(() => tokenizerFromJson({ ...base, model: { ...base.model, type: "WordPiece" } }, {}, 77), TokenizerError);
    assert.throws(() => tokenizerFromJson({ ...base, model: { ...base.model, end_of_word_suffix: null } }, {}, 77), TokenizerError);
    assert.throws(() => tokenizerFromJson({ ...base, normalizer: null }, {}, 77), TokenizerError);
    assert.throws(() => tokenizerFromJson({ ...base, added_tokens: [{ id: 0, content: "<|startoftext|>", lstrip: true }] }, {}, 77), /lstrip/);
    assert.throws(() => tokenizerFromJson({ ...base, model: { ...base.model, vocab: {} } }, {}, 77), /bos_token/);
  });
});

describe("tokenizer against Python on real captions", () => {
  const reason = pythonUnavailableReason();
  const countbench = countBenchCaptions() ?? [];
  // An even spread of the 22k LAION captions keeps the test fast; set COUNTCLIP_FULL_LAION=1 for all.
  const allLaion = laionCaptions() ?? [];
  const step = process.env["COUNTCLIP_FULL_LAION"] ? 1 : Math.max(1, Math.floor(allLaion.length / LAION_SAMPLE));
  const laion = allLaion.filter((_, i) => i % step === 0);
  let reference: Promise<number[][]> | undefined;

  // One Python process for both corpora: importing transformers dominates its run time.
  function referenceIds(): Promise<number[][]> {
    reference ??= runPythonJson(["scripts/generators/make_tokenizer_vectors.py", "--encode"],
      { texts: [...countbench, ...laion], context_length: 77 }).then((r) => (r as { ids: number[][] }).ids);
    return reference;
  }

  async function compare(texts: string[], offset: number): Promise<void> {
    const ids = (await referenceIds()).slice(offset, offset + texts.length);
    const tok = await fromAssets(77);
    const failures: string[] = [];
    texts.forEach((text, i) => {
      const got = tok.encode(text).ids;
      if (JSON.stringify(got) !== JSON.stringify(ids[i])) failures.push(`${JSON.stringify(text)}: expected ${ids[i]!.join(" ")}, got ${got.join(" ")}`);
    });
    assert.equal(ids.length, texts.length);
    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of ${texts.length} captions differ`);
  }

  test("540 CountBench captions, token for token", { skip: reason ?? (countbench.length ? false : "../shared/countbench absent") }, async () => {
    assert.equal(countbench.length, 540);
    await compare(countbench, 0);
  });

  test("LAION captions, token for token", { skip: reason ?? (laion.length ? false : "../shared/captions absent") }, async () => {
    await compare(laion, countbench.length);
  });
});
