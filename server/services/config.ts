/**
 * Every limit and location the service uses, read once from the environment with safe
 * defaults. Nothing else in server/ reads process.env, so a test builds a Config directly.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { PrecisionChoice } from "../model/precision.ts";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export interface Config {
  port: number;
  /** Interface to bind; loopback unless told otherwise. */
  host: string;
  /** Index, blobs and state live here. */
  dataDir: string;
  /** Where the index lives: "embedded" (this process, under dataDir) or "pgvector" (databaseUrl). */
  indexBackend: "embedded" | "pgvector";
  /** postgres://user:password@host:port/db, for the pgvector backend. */
  databaseUrl: string | undefined;
  /** Connections per process to the database. */
  pgPoolSize: number;
  /** maintenance_work_mem for HNSW index builds in PostgreSQL (e.g. "2GB"); server default if unset. */
  pgMaintenanceWorkMem: string | undefined;
  /** How often a pgvector process checks whether another one switched the active build, ms. */
  followMs: number;
  /** Embedded backend: write-ahead log records before a background snapshot is considered. */
  snapshotMinRecords: number;
  /** Directories `POST /v1/index/import` may read vector bundles from. */
  importRoots: string[];
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
  /** ALLOW_UNAUTHENTICATED=1: serve open mutations on a non-loopback HOST (refused otherwise). */
  allowUnauthenticated: boolean;
  /** Slow-client limits (server/http/connections.ts): request headers must arrive within this. */
  headersTimeoutMs: number;
  /** Whole request (headers and body) must arrive within this. */
  requestTimeoutMs: number;
  /** Idle keep-alive connections are closed after this. */
  keepAliveTimeoutMs: number;
  /** Open connections at most; past it the longest-idle one that has no request in flight goes. */
  maxConnections: number;
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
  /** Hubness correction weight for count-aware ranking; null: the bundle manifest's (search.hubness), 0: off. */
  hubnessBeta: number | null;
  /** Indexed images whose hub score h(v) is cached. */
  hubnessCacheSize: number;
  /** onnxruntime intra-op threads per session. */
  threads: number;
  /** Let idle onnxruntime threads spin for work (ORT_SPINNING=1); they sleep by default. */
  ortSpinning: boolean;
  /** Run the model's sessions in worker threads, off the event loop (ORT_WORKER=0: in it). */
  ortWorker: boolean;
  /** fp32 or int8 per tower, or "auto": as the bundle's manifest chooses. */
  textPrecision: PrecisionChoice;
  visionPrecision: PrecisionChoice;
  /** Queries per text-encoder run. */
  textBatchMax: number;
  /** An idle query batcher waits this long for company before a run (0: none). */
  batchWindowMs: number;
  /** Back-pressure: refuse (503, Retry-After) a query that would wait longer than this for its embedding (0: never). */
  maxQueueWaitMs: number;
  /** HNSW parameters. */
  hnswM: number;
  hnswEfConstruction: number;
  hnswEfSearch: number;
  /** Worker threads (one graph segment each) a bulk import into an empty index builds its graph with; 0: the event loop's thread. */
  hnswBuildThreads: number;
  /** Fewest vectors per graph segment of a bulk import (smaller imports get fewer segments). */
  hnswSegmentMin: number;
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

function precision(env: Env, name: string): PrecisionChoice {
  const raw = env[name];
  if (raw === undefined || raw === "" || raw === "auto") return "auto";
  if (raw === "fp32" || raw === "int8") return raw;
  throw new Error(`config: ${name}=${raw} must be "auto", "fp32" or "int8"`);
}

/** A number in [min, max], or null for "auto" / unset. */
function optionalNumber(env: Env, name: string, min: number, max: number): number | null {
  const raw = env[name];
  if (raw === undefined || raw === "" || raw === "auto") return null;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new Error(`config: ${name}=${raw} must be "auto" or a number in [${min}, ${max}]`);
  }
  return value;
}

function backend(raw: string | undefined): Config["indexBackend"] {
  if (raw === undefined || raw === "" || raw === "embedded") return "embedded";
  if (raw === "pgvector") return "pgvector";
  throw new Error(`config: INDEX_BACKEND=${raw} must be "embedded" or "pgvector"`);
}

export function loadConfig(env: Env = process.env): Config {
  const modelDir = path.resolve(env["MODEL_DIR"] ?? path.join(REPO_ROOT, "server/assets/default-model"));
  const galleryDir = path.resolve(env["GALLERY_DIR"] ?? path.join(REPO_ROOT, "server/assets/gallery"));
  return {
    port: int(env, "PORT", 8080, 0, 65535),
    host: env["HOST"] ?? "127.0.0.1",
    dataDir: path.resolve(env["DATA_DIR"] ?? path.join(REPO_ROOT, "data")),
    indexBackend: backend(env["INDEX_BACKEND"]),
    databaseUrl: env["DATABASE_URL"] || undefined,
    pgPoolSize: int(env, "PG_POOL_SIZE", 8, 1, 1000),
    pgMaintenanceWorkMem: env["PG_MAINTENANCE_WORK_MEM"] || undefined,
    followMs: int(env, "FOLLOW_MS", 1000, 10, 3_600_000),
    snapshotMinRecords: int(env, "SNAPSHOT_MIN_RECORDS", 10_000, 1, 1_000_000_000),
    importRoots: dirs(env["IMPORT_ROOTS"], [path.resolve(env["DATA_DIR"] ?? path.join(REPO_ROOT, "data"), "imports")]),
    modelDir,
    modelRoots: dirs(env["MODEL_ROOTS"], [path.dirname(modelDir)]),
    galleryDir,
    imageRoots: dirs(env["IMAGE_ROOTS"], [galleryDir]),
    apiKey: env["API_KEY"] || undefined,
    allowUnauthenticated: env["ALLOW_UNAUTHENTICATED"] === "1",
    headersTimeoutMs: int(env, "HEADERS_TIMEOUT_MS", 10_000, 100, 600_000),
    requestTimeoutMs: int(env, "REQUEST_TIMEOUT_MS", 120_000, 100, 3_600_000),
    keepAliveTimeoutMs: int(env, "KEEP_ALIVE_TIMEOUT_MS", 5_000, 100, 600_000),
    maxConnections: int(env, "MAX_CONNECTIONS", 1024, 2, 1_000_000),
    bodyLimitBytes: int(env, "BODY_LIMIT_BYTES", 32 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    maxPixels: int(env, "MAX_PIXELS", 40_000_000, 1, 1_000_000_000),
    maxImageBytes: int(env, "MAX_IMAGE_BYTES", 20 * 1024 * 1024, 1, 1024 * 1024 * 1024),
    // Upper bounds equal openapi.yaml's maxima, so a schema-valid request is never over a default.
    maxK: int(env, "MAX_K", 100, 1, 100),
    maxCandidates: int(env, "MAX_CANDIDATES", 500, 1, 1000),
    maxRerankImages: int(env, "MAX_RERANK_IMAGES", 64, 1, 64),
    batchSize: int(env, "BATCH_SIZE", 16, 1, 256),
    countCacheSize: int(env, "COUNT_CACHE_SIZE", 1024, 1, 1_000_000),
    hubnessBeta: optionalNumber(env, "HUBNESS_BETA", 0, 10),
    hubnessCacheSize: int(env, "HUBNESS_CACHE_SIZE", 200_000, 1, 100_000_000),
    // Measured on 2 cores with a ViT-B/32 bundle (issue 20): 2 intra-op threads in a worker
    // thread serve one client twice as fast as 1 and many clients as well or better.
    threads: int(env, "THREADS", 2, 1, 64),
    ortSpinning: env["ORT_SPINNING"] === "1",
    ortWorker: env["ORT_WORKER"] !== "0",
    textPrecision: precision(env, "TEXT_PRECISION"),
    visionPrecision: precision(env, "VISION_PRECISION"),
    textBatchMax: int(env, "TEXT_BATCH_MAX", 32, 1, 256),
    batchWindowMs: int(env, "BATCH_WINDOW_MS", 0, 0, 1000),
    // A safety net by default (a query already a second late is better refused); a service with
    // a latency target sets its own (the B/32 bench: 150 ms).
    maxQueueWaitMs: int(env, "MAX_QUEUE_WAIT_MS", 1000, 0, 600_000),
    hnswM: int(env, "HNSW_M", 16, 2, 128),
    // Measured (issue 18, scripts/bench-scale.ts): at 100k, 96 builds 1.7x faster than 200 for
    // recall@10 0.98 instead of 0.99 at ef 64; 64 and below lose more than ef can buy back cheaply.
    hnswEfConstruction: int(env, "HNSW_EF_CONSTRUCTION", 96, 8, 4096),
    hnswEfSearch: int(env, "HNSW_EF_SEARCH", 128, 8, 4096),
    hnswBuildThreads: int(env, "HNSW_BUILD_THREADS", 2, 0, 64),
    hnswSegmentMin: int(env, "HNSW_SEGMENT_MIN", 250_000, 1, 1_000_000_000),
  };
}
