/**
 * Model-side latency: tokenizer, text embedding (a search query), image preprocessing and image
 * embedding (a rerank of 8 images of 512x512), on one bundle. Prints one JSON object.
 *
 *   npx tsx scripts/benchmarks/bench-model.ts --bundle DIR [--threads 1] [--iterations 50]
 *       [--text-precision auto|fp32|int8] [--vision-precision auto|fp32|int8] [--spinning] [--worker]
 *
 * Numbers are wall-clock on this machine: run it on an idle machine, and compare bundles only
 * within one run of one machine.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { loadEmbedder } from "../../server/model/embedder.ts";
import { normalizeTable, parsePreprocessConfig, preprocessInto } from "../../server/model/preprocess.ts";
import { loadTokenizer } from "../../server/model/tokenizer.ts";

interface Stats { p50: number; p99: number; mean: number; n: number }

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return { p50: round(at(0.5)), p99: round(at(0.99)), mean: round(sorted.reduce((s, x) => s + x, 0) / sorted.length), n: sorted.length };
}

async function time(iterations: number, work: (i: number) => Promise<unknown> | unknown): Promise<Stats> {
  await work(-1); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < iterations; i++) {
    const start = performance.now();
    await work(i);
    samples.push(performance.now() - start);
  }
  return stats(samples);
}

/** A photo-like JPEG: smooth gradients plus noise. */
async function photoJpeg(width: number, height: number, seed: number): Promise<Buffer> {
  const px = Buffer.alloc(width * height * 3);
  let s = seed;
  for (let i = 0; i < px.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    const p = Math.floor(i / 3);
    px[i] = Math.max(0, Math.min(255, Math.round((255 * ((p % width) / width + (i % 3) * 0.2)) % 256 + ((s >>> 16) % 40) - 20)));
  }
  return sharp(px, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

function captions(repo: string): string[] {
  const file = path.join(repo, "..", "shared", "captions", "laion-captions.jsonl");
  if (!existsSync(file)) return Array.from({ length: 5000 }, (_, i) => `a photo of ${i % 10} cats number ${i}`);
  return readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => (JSON.parse(l) as { text: string }).text);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      bundle: { type: "string" }, threads: { type: "string", default: "1" }, iterations: { type: "string", default: "50" },
      "text-precision": { type: "string", default: "auto" }, "vision-precision": { type: "string", default: "auto" }, spinning: { type: "boolean", default: false }, worker: { type: "boolean", default: false },
    },
  });
  if (!values.bundle) throw new Error("usage: tsx scripts/benchmarks/bench-model.ts --bundle DIR [--threads N] [--iterations N]");
  const iterations = Number(values.iterations);
  const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../..");
  const loadStart = performance.now();
  const precision = (v: string | undefined) => (v === "fp32" || v === "int8" ? v : "auto");
  const embedder = await loadEmbedder(values.bundle, {
    intraOpThreads: Number(values.threads), spinning: values.spinning, worker: values.worker,
    textPrecision: precision(values["text-precision"]), visionPrecision: precision(values["vision-precision"]),
  });
  const loadMs = performance.now() - loadStart;

  const texts = captions(repo);
  const bpe = path.join(repo, "training", "countclip", "assets", "clip-bpe");
  const tok = await loadTokenizer({ vocabJson: path.join(bpe, "vocab.json"), mergesTxt: path.join(bpe, "merges.txt") }, embedder.contextLength);
  const coldStart = performance.now();
  for (const t of texts) tok.encode(t);
  const coldMs = performance.now() - coldStart;
  const warmStart = performance.now();
  for (const t of texts) tok.encode(t);
  const warmMs = performance.now() - warmStart;

  // Distinct queries each time so the embedder's text cache does not answer.
  const query = await time(iterations, (i) => embedder.embedTexts([`a photo of ${i + 2} red balloons over a lake ${Math.random()}`]));
  const cached = await time(iterations, () => embedder.embedTexts(["a photo of three cats"]));
  const variants = await time(iterations, (i) => embedder.embedTexts(Array.from({ length: 9 }, (_, n) => `${n + 2} dogs on a beach ${i} ${Math.random()}`)));
  // Query batches as the batcher forms them under load: ms per run of b distinct queries.
  const batches: Record<string, Stats> = {};
  for (const b of [4, 16, 32, 64]) {
    batches[`batch${b}`] = await time(Math.max(5, iterations / 5), (i) => embedder.embedTexts(Array.from({ length: b }, (_, n) => `a photo of ${n} red balloons over a lake ${i} ${Math.random()}`)));
  }

  const rerank = await Promise.all(Array.from({ length: 8 }, (_, i) => photoJpeg(512, 512, i + 1)));
  const large = await photoJpeg(2000, 1500, 99);
  const config = parsePreprocessConfig(JSON.parse(readFileSync(path.join(values.bundle, "preprocess.json"), "utf8")));
  const table = normalizeTable(config);
  const out = new Float32Array(3 * config.cropSize * config.cropSize);
  const pre512 = await time(iterations, (i) => preprocessInto(rerank[Math.max(0, i) % 8]!, config, table, out));
  const pre3mp = await time(Math.max(5, iterations / 5), () => preprocessInto(large, config, table, out));
  const images8 = await time(Math.max(5, iterations / 5), () => embedder.embedImages(rerank));

  console.log(JSON.stringify({
    bundle: path.resolve(values.bundle), model: embedder.modelId, dim: embedder.dim, imageSize: config.cropSize,
    intraOpThreads: Number(values.threads), spinning: values.spinning, precision: embedder.precision, loadMs: Math.round(loadMs),
    tokenizer: { captions: texts.length, coldCaptionsPerSec: Math.round(texts.length / (coldMs / 1000)), warmCaptionsPerSec: Math.round(texts.length / (warmMs / 1000)) },
    embedTextMs: { singleQuery: query, cachedQuery: cached, nineCountVariants: variants, ...batches },
    preprocessMs: { jpeg512: pre512, jpeg2000x1500: pre3mp },
    embedImagesMs: { eightJpeg512: images8 },
  }, null, 2));
  await embedder.close();
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
