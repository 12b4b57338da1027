/**
 * Every limit and location the service uses, read once from the environment with safe
 * defaults. Nothing else in server/ reads process.env, so a test builds a Config directly.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export interface Config {
  port: number;
  /** Interface to bind; loopback unless told otherwise. */
  host: string;
  /** Index, blobs and state live here. */
  dataDir: string;
  /** Bundle of the model to serve at start. */
  modelDir: string;
  /** Directories a rebuild's `modelDir` must lie in. */
  modelRoots: string[];
  /** Default gallery indexed on first start (gallery.jsonl + images); optional. */
  galleryDir: string;
  /** Directories server-local image paths must lie in (after resolving symlinks). */
  imageRoots: string[];
  /** When set, mutating endpoints require it (Authorization: Bearer, or X-API-Key). */
  apiKey: string | undefined;
  /** Largest accepted request body, bytes. */
  bodyLimitBytes: number;
  /** Largest decoded image, pixels (decompression-bomb guard). */
  maxPixels: number;
  /** Largest encoded image, bytes. */
  maxImageBytes: number;
  /** Largest k a search may ask for. */
  maxK: number;
  /** Most candidates a count-aware search reranks. */
  maxCandidates: number;
  /** Most images in one rerank request. */
  maxRerankImages: number;
  /** Images per embedding batch (rebuild, gallery, rerank). */
  batchSize: number;
  /** Nouns whose count-prompt embeddings are cached. */
  countCacheSize: number;
  /** onnxruntime intra-op threads per session. */
  threads: number;
  /** HNSW parameters. */
  hnswM: number;
  hnswEfConstruction: number;
  hnswEfSearch: number;
}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`config: ${name}=${raw} must be an integer in [${min}, ${max}]`);
  }
  return value;
}

function dirs(raw: string | undefined, fallback: string[]): string[] {
  if (raw === undefined) return fallback;
  return raw.split(path.delimiter).filter((p) => p !== "").map((p) => path.resolve(p));
}

export function loadConfig(env: Env = process.env): Config {
  const modelDir = path.resolve(env["MODEL_DIR"] ?? path.join(REPO_ROOT, "server/assets/default-model"));
  const galleryDir = path.resolve(env["GALLERY_DIR"] ?? path.join(REPO_ROOT, "server/assets/gallery"));
  return {
    port: int(env, "PORT", 8080, 0, 65535),
    host: env["HOST"] ?? "127.0.0.1",
    dataDir: path.resolve(env["DATA_DIR"] ?? path.join(REPO_ROOT, "data")),
    modelDir,
    modelRoots: dirs(env["MODEL_ROOTS"], [path.dirname(modelDir)]),
    galleryDir,
    imageRoots: dirs(env["IMAGE_ROOTS"], [galleryDir]),
    apiKey: env["API_KEY"] || undefined,
    bodyLimitBytes: int(env, "BODY_LIMIT_BYTES", 32 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    maxPixels: int(env, "MAX_PIXELS", 40_000_000, 1, 1_000_000_000),
    maxImageBytes: int(env, "MAX_IMAGE_BYTES", 20 * 1024 * 1024, 1, 1024 * 1024 * 1024),
    maxK: int(env, "MAX_K", 100, 1, 1000),
    maxCandidates: int(env, "MAX_CANDIDATES", 500, 1, 1000),
    maxRerankImages: int(env, "MAX_RERANK_IMAGES", 32, 1, 64),
    batchSize: int(env, "BATCH_SIZE", 16, 1, 256),
    countCacheSize: int(env, "COUNT_CACHE_SIZE", 1024, 1, 1_000_000),
    threads: int(env, "THREADS", 1, 1, 64),
    hnswM: int(env, "HNSW_M", 16, 2, 128),
    hnswEfConstruction: int(env, "HNSW_EF_CONSTRUCTION", 200, 8, 4096),
    hnswEfSearch: int(env, "HNSW_EF_SEARCH", 128, 8, 4096),
  };
}
