/**
 * Hubness correction of count-aware ranking (openapi.yaml, "Count-aware scoring").
 *
 * Some images are close to almost every text ("hubs"): for a small CLIP, a crowded scene of
 * balloons scores well on "six cars" because it scores well on everything. The correction
 * subtracts from cos(query, v) beta times h(v), the mean of the top_k highest cosines of the
 * image to a fixed bank of object prompts ("a photo of a cat", ... the 80 COCO categories):
 * an image that matches many kinds equally well gains less from matching this query. It is the
 * CSLS / query-bank normalisation of cross-modal retrieval, with a bank that names objects
 * rather than the gallery's own kinds, so it holds for any gallery.
 *
 * beta and top_k are tuned per model and recorded in its bundle manifest (`search.hubness`);
 * a bundle without them is ranked without the correction (HUBNESS_BETA overrides).
 */
import type { BundleManifest } from "../model/bundle.ts";
import type { Embedder } from "../model/types.ts";
import { Lru } from "../lib/lru.ts";

const COCO_CATEGORIES = [
  "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
  "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
  "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
  "skis", "snowboard", "ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
  "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
  "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
  "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
  "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
  "teddy bear", "hair drier", "toothbrush",
];

/** "a photo of a cat", "a photo of an apple", ... one prompt per bank category. */
export function objectBankPrompts(): string[] {
  return COCO_CATEGORIES.map((noun) => `a photo of ${/^[aeiou]/.test(noun) ? "an" : "a"} ${noun}`);
}

export interface HubnessSettings {
  /** Weight of h(v) in cosine units; 0 turns the correction off. */
  beta: number;
  /** How many of the bank's best cosines h(v) averages. */
  topK: number;
}

/** The settings in force: HUBNESS_BETA when set (with the manifest's top_k, else 10), else the manifest's, else off. */
export function resolveHubness(manifest: BundleManifest, betaOverride: number | null): HubnessSettings | null {
  const tuned = manifest.search.hubness;
  const topK = Math.min(tuned?.top_k ?? 10, COCO_CATEGORIES.length);
  const settings = betaOverride === null ? (tuned ? { beta: tuned.beta, topK } : null) : { beta: betaOverride, topK };
  return settings && settings.beta > 0 ? settings : null;
}

/** h(v): the mean of the `topK` highest dot products of `vector` with the rows of `bank` (row-major, dim columns). */
export function hubScore(vector: Float32Array, bank: Float32Array, topK: number): number {
  const dim = vector.length;
  const rows = bank.length / dim;
  const sims = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    const offset = r * dim;
    for (let i = 0; i < dim; i++) sum += vector[i]! * bank[offset + i]!;
    sims[r] = sum;
  }
  sims.sort();
  let total = 0;
  for (let r = rows - Math.min(topK, rows); r < rows; r++) total += sims[r]!;
  return total / Math.min(topK, rows);
}

/** 32-bit FNV-1a over the float bits: tells a re-upserted item's new vector from its old one. */
function vectorHash(vector: Float32Array): number {
  const words = new Uint32Array(vector.buffer, vector.byteOffset, vector.length);
  let hash = 0x811c9dc5;
  for (let i = 0; i < words.length; i++) hash = Math.imul(hash ^ words[i]!, 0x01000193);
  return hash >>> 0;
}

/**
 * The correction for one model: the bank is embedded once, on first use; h(v) of an indexed
 * image is cached by its id and vector (an upsert that changes the vector misses).
 */
export class HubnessCorrection {
  private bank: Promise<Float32Array> | undefined;
  private readonly cache: Lru<string, number>;
  hits = 0;
  misses = 0;

  constructor(private readonly embedder: Embedder, readonly settings: HubnessSettings, cacheSize: number) {
    this.cache = new Lru(cacheSize);
  }

  /** beta * h(v) per item, in input order. `cache: false` for one-off images (a rerank's). */
  async penalties(items: ReadonlyArray<{ id: string; vector: Float32Array }>, { cache = true } = {}): Promise<number[]> {
    const bank = await this.bankMatrix();
    const { beta, topK } = this.settings;
    return items.map(({ id, vector }) => {
      if (!cache) return beta * hubScore(vector, bank, topK);
      const key = `${id}\u0000${vectorHash(vector)}`;
      const known = this.cache.get(key);
      if (known !== undefined) {
        this.hits++;
        return beta * known;
      }
      this.misses++;
      const h = hubScore(vector, bank, topK);
      this.cache.set(key, h);
      return beta * h;
    });
  }

  private bankMatrix(): Promise<Float32Array> {
    if (!this.bank) {
      this.bank = this.embedder.embedTexts(objectBankPrompts()).then((rows) => {
        const matrix = new Float32Array(rows.length * this.embedder.dim);
        rows.forEach((row, r) => matrix.set(row, r * this.embedder.dim));
        return matrix;
      });
      // A failed embedding (a closing model) must not poison the next request.
      this.bank.catch(() => { this.bank = undefined; });
    }
    return this.bank;
  }
}
