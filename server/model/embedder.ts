/**
 * `loadEmbedder`: a verified bundle -> an `Embedder` (types.ts) backed by two onnxruntime-node
 * sessions (runtime.ts).
 *
 * Loading verifies every file's sha256 (bundle.ts), builds the tokenizer and preprocessing from
 * the bundle's own files, creates the sessions, checks their input/output names against the
 * bundle contract and runs one warm-up batch through each to check the embedding size, so a
 * bundle that loads is a bundle that serves. Texts and images are embedded in batches; each
 * batch's tensor is allocated once at its final size and filled in place. Each tower runs the
 * fp32 or int8 file the manifest (or the operator) chooses (precision.ts).
 */
import sharp from "sharp";
import { BundleError, openBundle, readBundleJson, type Bundle } from "./bundle.ts";
import { DEFAULT_LIMITS, ImageInputError, type ImageLimits } from "./image-input.ts";
import { chooseTower, visionIdSuffix } from "./precision.ts";
import { createRunner, type OnnxRunner, type OutputData, type SessionSettings } from "./runtime.ts";
import { normalizeTable, parsePreprocessConfig, preprocessInto, PreprocessConfigError, type NormalizeTable, type PreprocessConfig } from "./preprocess.ts";
import { loadTokenizer, TokenizerError, type ClipTokenizer } from "./tokenizer.ts";
import type { Embedder, EmbedderOptions, ModelInfo } from "./types.ts";

const TEXT_INPUTS = ["input_ids", "attention_mask"];
const TEXT_OUTPUT = "text_embeds";
const VISION_INPUT = "pixel_values";
const VISION_OUTPUT = "image_embeds";
const DEFAULT_TEXT_BATCH = 64;
const DEFAULT_IMAGE_BATCH = 16;
const TEXT_CACHE_LIMIT = 4096;
const TEXT_CACHE_MAX_CHARS = 512;

function bundleFail(err: unknown, file: string): never {
  if (err instanceof BundleError) throw err;
  if (err instanceof TokenizerError || err instanceof PreprocessConfigError) throw new BundleError("invalid_file", err.message, file);
  throw new BundleError("invalid_file", `${file}: ${err instanceof Error ? err.message : String(err)}`, file);
}

async function createSession(bundle: Bundle, name: string, settings: SessionSettings, inputs: string[], output: string): Promise<OnnxRunner> {
  let session: OnnxRunner;
  try {
    session = await createRunner(bundle.file(name), settings);
  } catch (err) {
    bundleFail(err, name);
  }
  const missing = inputs.filter((n) => !session.inputNames.includes(n));
  if (missing.length > 0 || !session.outputNames.includes(output)) {
    await session.release();
    throw new BundleError("invalid_file",
      `${name}: expected inputs [${inputs.join(", ")}] and output ${output}, found inputs [${session.inputNames.join(", ")}] and outputs [${session.outputNames.join(", ")}]`, name);
  }
  return session;
}

/** Copies row `row` of a [batch, dim] output and L2-normalises it (the contract says it already is; this guards drift). */
function row(data: Float32Array, rowIndex: number, dim: number): Float32Array {
  const vec = data.slice(rowIndex * dim, (rowIndex + 1) * dim);
  let norm = 0;
  for (let i = 0; i < dim; i++) norm += vec[i]! * vec[i]!;
  norm = Math.sqrt(norm);
  if (norm > 0) for (let i = 0; i < dim; i++) vec[i]! /= norm;
  return vec;
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function positiveInt(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`${what} must be a positive integer, got ${value}`);
  return value;
}

/** The identity an embedder over `bundle` reports (types.ts ModelInfo). */
function modelInfo(bundle: Bundle, tokenizer: ClipTokenizer, precision: ModelInfo["precision"]): ModelInfo {
  return {
    modelId: `${bundle.manifest.model_name}@${bundle.contentHash.slice(0, 12)}${visionIdSuffix(precision.vision)}`,
    dim: bundle.manifest.embed_dim,
    logitScale: bundle.manifest.logit_scale,
    contextLength: tokenizer.contextLength,
    manifest: bundle.manifest,
    bundleDir: bundle.dir,
    precision,
  };
}

/**
 * The work behind an Embedder: tokenising, preprocessing and the two towers' sessions. Its
 * identity is the ModelInfo it was built with, so the fields are declared once (types.ts).
 */
class OnnxTowers {
  private readonly table: NormalizeTable;
  private readonly textCache = new Map<string, Float32Array>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private closed = false;

  constructor(
    private readonly info: ModelInfo,
    private readonly tokenizer: ClipTokenizer,
    private readonly preprocess: PreprocessConfig,
    private readonly text: OnnxRunner,
    private readonly vision: OnnxRunner,
    private readonly limits: ImageLimits,
    private readonly textBatch: number,
    private readonly imageBatch: number,
  ) {
    this.table = normalizeTable(preprocess);
  }

  /** Runs `work` unless closed, and lets close() wait for it. */
  private track<T>(work: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error(`embedder ${this.info.modelId} is closed`));
    const promise = work();
    this.inFlight.add(promise);
    const done = () => this.inFlight.delete(promise);
    promise.then(done, done);
    return promise;
  }

  embedTexts(texts: string[]): Promise<Float32Array[]> {
    return this.track(async () => {
      // Count-variant prompts ("two cats" .. "ten cats") repeat across requests: cache them.
      const found = new Map<string, Float32Array>();
      for (const t of texts) {
        const hit = this.textCache.get(t);
        if (hit) found.set(t, hit);
      }
      const missing = [...new Set(texts.filter((t) => !found.has(t)))];
      for (const batch of chunks(missing, this.textBatch)) {
        const vectors = await this.runText(batch);
        batch.forEach((t, i) => {
          found.set(t, vectors[i]!);
          this.remember(t, vectors[i]!);
        });
      }
      // Copies: callers may mutate what they get without corrupting the cache.
      return texts.map((t) => found.get(t)!.slice());
    });
  }

  private remember(text: string, vec: Float32Array): void {
    if (text.length > TEXT_CACHE_MAX_CHARS) return; // bounded memory: long texts are rarely repeated
    if (this.textCache.size >= TEXT_CACHE_LIMIT) this.textCache.delete(this.textCache.keys().next().value!);
    this.textCache.set(text, vec);
  }

  private async runText(texts: string[]): Promise<Float32Array[]> {
    const enc = this.tokenizer.encodeBatch(texts);
    const dims = [enc.batch, enc.seqLen];
    const output = await this.text.run({
      input_ids: { type: "int64", data: enc.inputIds, dims },
      attention_mask: { type: "int64", data: enc.attentionMask, dims },
    }, TEXT_OUTPUT);
    return this.rows(output, enc.batch, "text.onnx");
  }

  /**
   * Every image of a batch is decoded and resized at once (sharp's thread pool), and batch b+1's
   * while batch b runs through the vision tower, so decoding hides behind encoding.
   */
  embedImages(images: Buffer[]): Promise<Float32Array[]> {
    return this.track(async () => {
      const batches = chunks(images, this.imageBatch);
      const out: Float32Array[] = [];
      let next = batches.length > 0 ? this.pixels(batches[0]!, 0) : undefined;
      for (let b = 0; b < batches.length; b++) {
        const pixels = await next!;
        next = b + 1 < batches.length ? this.pixels(batches[b + 1]!, (b + 1) * this.imageBatch) : undefined;
        // A later batch's bad image must not go unobserved while this one runs.
        next?.catch(() => undefined);
        out.push(...(await this.runImages(pixels, batches[b]!.length)));
      }
      return out;
    });
  }

  private async pixels(images: Buffer[], firstIndex: number): Promise<Float32Array> {
    const per = 3 * this.preprocess.cropSize * this.preprocess.cropSize;
    const pixels = new Float32Array(images.length * per);
    await Promise.all(images.map(async (bytes, i) => {
      try {
        await preprocessInto(bytes, this.preprocess, this.table, pixels, i * per, this.limits);
      } catch (err) {
        if (err instanceof ImageInputError) err.index = firstIndex + i;
        throw err;
      }
    }));
    return pixels;
  }

  private async runImages(pixels: Float32Array, count: number): Promise<Float32Array[]> {
    const crop = this.preprocess.cropSize;
    const output = await this.vision.run({ [VISION_INPUT]: { type: "float32", data: pixels, dims: [count, 3, crop, crop] } }, VISION_OUTPUT);
    return this.rows(output, count, "vision.onnx");
  }

  private rows(tensor: OutputData | undefined, batch: number, file: string): Float32Array[] {
    if (!tensor || tensor.type !== "float32" || !(tensor.data instanceof Float32Array) || tensor.dims.length !== 2 || tensor.dims[0] !== batch || tensor.dims[1] !== this.info.dim) {
      throw new BundleError("invalid_file", `${file} returned ${tensor ? `${tensor.type} [${tensor.dims.join(", ")}]` : "no output"}, expected float32 [${batch}, ${this.info.dim}]`, file);
    }
    const data = tensor.data as Float32Array;
    return Array.from({ length: batch }, (_, i) => row(data, i, this.info.dim));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled([...this.inFlight]);
    this.textCache.clear();
    await Promise.all([this.text.release(), this.vision.release()]);
  }
}

async function loadParts(bundle: Bundle): Promise<{ tokenizer: ClipTokenizer; preprocess: PreprocessConfig }> {
  const manifest = bundle.manifest;
  let preprocess: PreprocessConfig;
  try {
    preprocess = parsePreprocessConfig(await readBundleJson(bundle, "preprocess.json"));
  } catch (err) {
    bundleFail(err, "preprocess.json");
  }
  if (preprocess.cropSize !== manifest.image_size) {
    throw new BundleError("invalid_file", `preprocess.json crop_size ${preprocess.cropSize} differs from manifest image_size ${manifest.image_size}`, "preprocess.json");
  }
  const optional = (name: string) => (bundle.has(name) ? bundle.file(name) : undefined);
  try {
    const tokenizer = await loadTokenizer({
      tokenizerJson: optional("tokenizer.json"),
      vocabJson: optional("vocab.json"),
      mergesTxt: optional("merges.txt"),
      tokenizerConfig: optional("tokenizer_config.json"),
    }, manifest.context_length);
    return { tokenizer, preprocess };
  } catch (err) {
    bundleFail(err, bundle.has("tokenizer.json") ? "tokenizer.json" : "vocab.json");
  }
}

/** Opens, verifies and warms up a bundle. Rejects with BundleError when anything is wrong. */
export async function loadEmbedder(bundleDir: string, options: EmbedderOptions = {}): Promise<Embedder> {
  const threads = positiveInt(options.intraOpThreads, 1, "intraOpThreads");
  const limits: ImageLimits = {
    maxPixels: positiveInt(options.maxPixels, DEFAULT_LIMITS.maxPixels, "maxPixels"),
    maxInputBytes: positiveInt(options.maxInputBytes, DEFAULT_LIMITS.maxInputBytes, "maxInputBytes"),
  };
  const bundle = await openBundle(bundleDir, { skipVerify: options.skipVerify === true });
  const { tokenizer, preprocess } = await loadParts(bundle);
  const towers = { text: chooseTower(bundle, "text", options.textPrecision), vision: chooseTower(bundle, "vision", options.visionPrecision) };
  for (const t of Object.values(towers)) if (t.warning) console.warn(`model: ${t.warning}`);
  const settings: SessionSettings = { threads, spinning: options.spinning === true, worker: options.worker === true };
  const text = await createSession(bundle, towers.text.file, settings, TEXT_INPUTS, TEXT_OUTPUT);
  const vision = await createSession(bundle, towers.vision.file, settings, [VISION_INPUT], VISION_OUTPUT).catch(async (err: unknown) => {
    await text.release();
    throw err;
  });
  const info = modelInfo(bundle, tokenizer, { text: towers.text.precision, vision: towers.vision.precision });
  const onnx = new OnnxTowers(info, tokenizer, preprocess, text, vision, limits,
    positiveInt(options.maxTextBatch, DEFAULT_TEXT_BATCH, "maxTextBatch"),
    positiveInt(options.maxImageBatch, DEFAULT_IMAGE_BATCH, "maxImageBatch"));
  await warmUp(onnx, preprocess).catch(async (err: unknown) => {
    await onnx.close();
    bundleFail(err, towers.text.file);
  });
  return {
    ...info,
    embedTexts: (texts) => onnx.embedTexts(texts),
    embedImages: (images) => onnx.embedImages(images),
    close: () => onnx.close(),
  };
}

/** One text and one blank image: checks output shapes against embed_dim and primes ORT. */
async function warmUp(embedder: OnnxTowers, preprocess: PreprocessConfig): Promise<void> {
  await embedder.embedTexts(["a photo"]);
  const size = preprocess.cropSize;
  const blank = await sharp({ create: { width: size, height: size, channels: 3, background: { r: 127, g: 127, b: 127 } } }).png().toBuffer();
  await embedder.embedImages([blank]);
}
