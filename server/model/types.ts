/**
 * The model's types, first: the one interface the services (search, rerank, indexing, rebuild)
 * use to turn text and image bytes into embeddings. The implementation is embedder.ts
 * (onnxruntime-node over a verified bundle); nothing here imports it, so a caller that only
 * holds an Embedder depends on the contract, never on onnxruntime.
 *
 * Contract:
 *  - every returned vector has length `dim` and is L2-normalised (cosine = dot product);
 *  - `embedTexts` / `embedImages` return one vector per input, in input order;
 *  - `embedImages` takes raw encoded bytes (JPEG, PNG, WebP, GIF, TIFF, AVIF ...) and rejects
 *    bad input with an `ImageInputError` (image-input.ts) whose `status` is a 4xx code;
 *  - loading rejects with a `BundleError` (bundle.ts) when the bundle is missing, malformed or
 *    fails its sha256 check, so a bad retrained bundle never replaces a good one.
 */
import type { BundleManifest } from "./bundle.ts";
import type { Precision, PrecisionChoice } from "./precision.ts";

/** What an embedder is: its weights' identity and the shape of its vectors. */
export interface ModelInfo {
  /** Stable identity of the weights (manifest model_name + sha256 of the ONNX files). */
  readonly modelId: string;
  /** Embedding dimension D. */
  readonly dim: number;
  /** exp()'d CLIP temperature from the manifest (e.g. 100): logits = logitScale * cosine. */
  readonly logitScale: number;
  /** Maximum tokens per text including bos/eos; longer texts are truncated, keeping eos. */
  readonly contextLength: number;
  /** The bundle's manifest.json as read (metrics and training info included). */
  readonly manifest: BundleManifest;
  /** Absolute path of the bundle directory this embedder was loaded from. */
  readonly bundleDir: string;
  /** The precision each tower runs at (precision.ts): the manifest's choice unless overridden. */
  readonly precision: { text: Precision; vision: Precision };
}

export interface Embedder extends ModelInfo {
  embedTexts(texts: string[]): Promise<Float32Array[]>;
  embedImages(images: Buffer[]): Promise<Float32Array[]>;
  /** Releases the ONNX sessions; further calls reject. Idempotent. */
  close(): Promise<void>;
}

export interface EmbedderOptions {
  /** onnxruntime intra-op threads per session (default: 1; the service's THREADS). */
  intraOpThreads?: number;
  /** Let idle intra-op threads spin (ORT's own default; default here: false, they sleep). */
  spinning?: boolean;
  /** Run each tower's session in a worker thread, off the event loop (runtime.ts; default false). */
  worker?: boolean;
  /** fp32 or int8 per tower; "auto" (default) follows the manifest's `precision`. */
  textPrecision?: PrecisionChoice;
  visionPrecision?: PrecisionChoice;
  /** Largest batch sent to one ORT run; bigger inputs are split (default 64 texts, 16 images). */
  maxTextBatch?: number;
  maxImageBatch?: number;
  /** Image safety limits (see image-input.ts for defaults). */
  maxPixels?: number;
  maxInputBytes?: number;
  /** Skip sha256 verification (only for bundles already verified by this process). Default false. */
  skipVerify?: boolean;
}

/**
 * Factory signature. The implementation is `loadEmbedder` in ./embedder.ts:
 * opens and verifies the bundle (sha256 of every file), loads tokenizer + preprocess config and
 * creates the two ONNX sessions. Rejects with BundleError / TokenizerError on a bad bundle.
 */
export type LoadEmbedder = (bundleDir: string, options?: EmbedderOptions) => Promise<Embedder>;
