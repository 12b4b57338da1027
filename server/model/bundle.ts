/**
 * Reading a model bundle written by `countclip export`.
 *
 * A bundle is trusted only after every file listed in manifest.json matches its recorded size
 * and sha256: a half-copied or tampered bundle must fail loudly at load time rather than serve
 * wrong embeddings. Files the service needs must be listed (and therefore verified).
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";

export const BUNDLE_FORMAT = "countclip-bundle";
export const BUNDLE_FORMAT_VERSION = 1;
export const REQUIRED_FILES = ["text.onnx", "vision.onnx", "preprocess.json"] as const;

export type BundleErrorCode =
  | "not_found"
  | "invalid_manifest"
  | "unsupported_format"
  | "missing_file"
  | "size_mismatch"
  | "checksum_mismatch"
  | "invalid_file";

/** Any problem with a bundle on disk. `code` is stable; `message` says which file and why. */
export class BundleError extends Error {
  override readonly name = "BundleError";
  constructor(readonly code: BundleErrorCode, message: string, readonly file?: string) {
    super(message);
  }
}

export interface BundleFileEntry {
  sha256: string;
  bytes: number;
}

export interface BundleManifest {
  format: string;
  format_version: number;
  model_name: string;
  base_model: string;
  embed_dim: number;
  logit_scale: number;
  context_length: number;
  image_size: number;
  created_at: string;
  training: Record<string, unknown>;
  metrics: Record<string, unknown>;
  command: string;
  files: Record<string, BundleFileEntry>;
  /** How the service ranks with this model (tuned per model; absent settings: the service's defaults). */
  search: { hubness?: HubnessManifest };
  [extra: string]: unknown;
}

/** Object prompt banks a manifest may name for the hubness correction (server/services/hubness.ts). */
export const HUBNESS_BANKS = ["coco-80"] as const;

/** `search.hubness`: rank count-aware by cos - beta * h(v), h(v) the mean of the top_k best cosines to the bank. */
export interface HubnessManifest {
  bank: (typeof HUBNESS_BANKS)[number];
  beta: number;
  top_k: number;
}

export interface Bundle {
  /** Absolute directory path. */
  dir: string;
  manifest: BundleManifest;
  /** Hash over all verified file hashes: changes whenever anything that affects embeddings does. */
  contentHash: string;
  /** Absolute path of a listed (hence verified) file; throws `missing_file` when not listed. */
  file(name: string): string;
  has(name: string): boolean;
}

const HEX64 = /^[0-9a-f]{64}$/;

export async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function need<T>(ok: boolean, field: string, expected: string, value: T): T {
  if (!ok) throw new BundleError("invalid_manifest", `manifest.json: "${field}" must be ${expected}`);
  return value;
}

/** A listed name must be a plain file name inside the bundle: no separators, no "..". */
function checkFileName(name: string): void {
  if (name === "" || name === "." || name === ".." || /[\\/\0]/.test(name)) {
    throw new BundleError("invalid_manifest", `manifest.json: file name ${JSON.stringify(name)} is not a plain file name`);
  }
}

function parseFiles(raw: unknown): Record<string, BundleFileEntry> {
  need(isRecord(raw), "files", "an object", raw);
  const files: Record<string, BundleFileEntry> = {};
  for (const [name, entry] of Object.entries(raw as Record<string, unknown>)) {
    checkFileName(name);
    const rec = need(isRecord(entry), `files.${name}`, "an object", entry as Record<string, unknown>);
    const sha = rec["sha256"];
    const bytes = rec["bytes"];
    need(typeof sha === "string" && HEX64.test(sha), `files.${name}.sha256`, "64 lowercase hex digits", sha);
    need(Number.isSafeInteger(bytes) && (bytes as number) >= 0, `files.${name}.bytes`, "a non-negative integer", bytes);
    files[name] = { sha256: sha as string, bytes: bytes as number };
  }
  return files;
}

/** Validates manifest.json's shape; returns it typed. Exported for tests and tooling. */
export function parseManifest(raw: unknown): BundleManifest {
  need(isRecord(raw), "(root)", "an object", raw);
  const m = raw as Record<string, unknown>;
  if (m["format"] !== BUNDLE_FORMAT) {
    throw new BundleError("unsupported_format", `manifest.json: format is ${JSON.stringify(m["format"])}, expected "${BUNDLE_FORMAT}"`);
  }
  if (m["format_version"] !== BUNDLE_FORMAT_VERSION) {
    throw new BundleError("unsupported_format",
      `manifest.json: format_version ${JSON.stringify(m["format_version"])} is not supported (this service reads ${BUNDLE_FORMAT_VERSION})`);
  }
  const posInt = (k: string) => need(Number.isSafeInteger(m[k]) && (m[k] as number) > 0, k, "a positive integer", m[k]);
  posInt("embed_dim");
  posInt("context_length");
  posInt("image_size");
  const scale = m["logit_scale"];
  need(typeof scale === "number" && Number.isFinite(scale) && scale > 0, "logit_scale", "a positive number (exp()'d)", scale);
  need(typeof m["model_name"] === "string" && m["model_name"] !== "", "model_name", "a non-empty string", m["model_name"]);
  const files = parseFiles(m["files"]);
  const search = parseSearch(m["search"]);
  return {
    ...m,
    base_model: typeof m["base_model"] === "string" ? m["base_model"] : "",
    created_at: typeof m["created_at"] === "string" ? m["created_at"] : "",
    command: typeof m["command"] === "string" ? m["command"] : "",
    training: isRecord(m["training"]) ? m["training"] : {},
    metrics: isRecord(m["metrics"]) ? m["metrics"] : {},
    files,
    search,
  } as BundleManifest;
}

function parseSearch(raw: unknown): BundleManifest["search"] {
  if (raw === undefined) return {};
  need(isRecord(raw), "search", "an object", raw);
  const hubness = (raw as Record<string, unknown>)["hubness"];
  if (hubness === undefined) return {};
  need(isRecord(hubness), "search.hubness", "an object", hubness);
  const { bank, beta, top_k: topK } = hubness as Record<string, unknown>;
  need(HUBNESS_BANKS.includes(bank as HubnessManifest["bank"]), "search.hubness.bank", `one of ${HUBNESS_BANKS.join(", ")}`, bank);
  need(typeof beta === "number" && Number.isFinite(beta) && beta >= 0 && beta <= 10, "search.hubness.beta", "a number in [0, 10]", beta);
  need(Number.isSafeInteger(topK) && (topK as number) >= 1, "search.hubness.top_k", "a positive integer", topK);
  return { hubness: { bank: bank as HubnessManifest["bank"], beta: beta as number, top_k: topK as number } };
}

async function readManifest(dir: string): Promise<BundleManifest> {
  let text: string;
  try {
    text = await readFile(path.join(dir, "manifest.json"), "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const what = code === "ENOENT" ? "has no manifest.json (is it a bundle from `countclip export`?)" : `manifest.json unreadable (${code})`;
    throw new BundleError("not_found", `bundle ${dir} ${what}`, "manifest.json");
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new BundleError("invalid_manifest", `manifest.json is not valid JSON: ${(err as Error).message}`, "manifest.json");
  }
  return parseManifest(raw);
}

async function verifyFile(dir: string, name: string, entry: BundleFileEntry): Promise<void> {
  const full = path.join(dir, name);
  let size: number;
  try {
    const info = await stat(full);
    if (!info.isFile()) throw new BundleError("missing_file", `bundle file ${name} is not a regular file`, name);
    size = info.size;
  } catch (err) {
    if (err instanceof BundleError) throw err;
    throw new BundleError("missing_file", `bundle file ${name} is listed in manifest.json but missing`, name);
  }
  // Size first: a truncated copy is caught without hashing hundreds of megabytes.
  if (size !== entry.bytes) {
    throw new BundleError("size_mismatch", `bundle file ${name} has ${size} bytes, manifest says ${entry.bytes}`, name);
  }
  const actual = await sha256File(full);
  if (actual !== entry.sha256) {
    throw new BundleError("checksum_mismatch", `bundle file ${name} sha256 ${actual} does not match manifest ${entry.sha256}`, name);
  }
}

function checkRequired(manifest: BundleManifest): void {
  const listed = new Set(Object.keys(manifest.files));
  for (const name of REQUIRED_FILES) {
    if (!listed.has(name)) throw new BundleError("missing_file", `manifest.json does not list required file ${name}`, name);
  }
  const hasTokenizer = listed.has("tokenizer.json") || (listed.has("vocab.json") && listed.has("merges.txt"));
  if (!hasTokenizer) {
    throw new BundleError("missing_file", "manifest.json lists neither tokenizer.json nor vocab.json + merges.txt", "tokenizer.json");
  }
}

function contentHashOf(manifest: BundleManifest): string {
  const hash = createHash("sha256");
  for (const name of Object.keys(manifest.files).sort()) hash.update(`${name}\0${manifest.files[name]!.sha256}\n`);
  return hash.digest("hex");
}

export interface OpenBundleOptions {
  /** Skip the sha256 pass (sizes are still checked). Only for bundles this process verified. */
  skipVerify?: boolean;
}

/** Reads and verifies a bundle directory. Rejects with `BundleError` on any problem. */
export async function openBundle(bundleDir: string, options: OpenBundleOptions = {}): Promise<Bundle> {
  const dir = path.resolve(bundleDir);
  const manifest = await readManifest(dir);
  checkRequired(manifest);
  for (const [name, entry] of Object.entries(manifest.files)) {
    if (options.skipVerify) {
      await verifySize(dir, name, entry);
    } else {
      await verifyFile(dir, name, entry);
    }
  }
  return {
    dir,
    manifest,
    contentHash: contentHashOf(manifest),
    has: (name) => Object.hasOwn(manifest.files, name),
    file: (name) => {
      if (!Object.hasOwn(manifest.files, name)) throw new BundleError("missing_file", `bundle does not list ${name}`, name);
      return path.join(dir, name);
    },
  };
}

async function verifySize(dir: string, name: string, entry: BundleFileEntry): Promise<void> {
  const info = await stat(path.join(dir, name)).catch(() => null);
  if (!info?.isFile()) throw new BundleError("missing_file", `bundle file ${name} is listed in manifest.json but missing`, name);
  if (info.size !== entry.bytes) {
    throw new BundleError("size_mismatch", `bundle file ${name} has ${info.size} bytes, manifest says ${entry.bytes}`, name);
  }
}

/** Reads a verified JSON file of the bundle. */
export async function readBundleJson(bundle: Bundle, name: string): Promise<unknown> {
  const text = await readFile(bundle.file(name), "utf8");
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BundleError("invalid_file", `${name} is not valid JSON: ${(err as Error).message}`, name);
  }
}
