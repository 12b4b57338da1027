/**
 * A bundle of precomputed vectors, as `countclip embed` writes it and POST /v1/index/import
 * reads it:
 *
 *   manifest.json  {"format": "countclip-vectors", "modelId", "dim", "count"}
 *   vectors.npy    float32 little-endian, C order, shape (count, dim); row i is line i below
 *   ids.jsonl      {"id", "source"?, "sha256"?, "addedAt"?} per line
 *
 * npy is NumPy's own format (a magic, a Python-literal header, then raw data), so the bundle
 * is loadable with np.load and needs no library here.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import type { Entry } from "./backend.ts";

export const VECTORS_FORMAT = "countclip-vectors";
const NO_BLOB = "0".repeat(64);

export interface VectorBundleManifest {
  format: typeof VECTORS_FORMAT;
  modelId: string;
  dim: number;
  count: number;
}

export class BundleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BundleError";
  }
}

/** Parse an .npy file of float32 rows; returns the shape and a view on the data. */
export function parseNpy(bytes: Buffer): { shape: number[]; data: Float32Array } {
  if (bytes.length < 10 || bytes.toString("latin1", 0, 6) !== "\x93NUMPY") throw new BundleError("vectors.npy is not an .npy file");
  const major = bytes[6]!;
  const headerLen = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = bytes.toString("latin1", major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr !== "<f4") throw new BundleError(`vectors.npy holds ${descr ?? "?"}, expected little-endian float32 (<f4)`);
  if (fortran !== "False") throw new BundleError("vectors.npy must be in C order");
  const dims = (shape ?? "").split(",").map((d) => d.trim()).filter((d) => d !== "").map(Number);
  if (dims.length !== 2 || dims.some((d) => !Number.isInteger(d) || d < 0)) throw new BundleError(`vectors.npy has shape (${shape}), expected (count, dim)`);
  const expected = dims[0]! * dims[1]! * 4;
  if (bytes.length - start !== expected) throw new BundleError(`vectors.npy holds ${bytes.length - start} data bytes, its shape needs ${expected}`);
  // Copy to an aligned buffer: the data may start at any offset. Shared, so a bulk import's
  // graph-building worker threads read the rows where they are (index/bulk-build.ts).
  const data = new Float32Array(new SharedArrayBuffer(dims[0]! * dims[1]! * 4));
  new Uint8Array(data.buffer).set(bytes.subarray(start));
  return { shape: dims, data };
}

/** The .npy header of a (count, dim) float32 array; the raw rows follow it. */
export function npyHeader(count: number, dim: number): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${count}, ${dim}), }`;
  // NumPy pads the header so the data starts 64-byte aligned, ending it with a newline.
  header += " ".repeat(63 - ((10 + header.length) % 64)) + "\n";
  const head = Buffer.alloc(10);
  head.write("\x93NUMPY", 0, "latin1");
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, "latin1")]);
}

/** The .npy bytes of float32 rows (tests). */
export function encodeNpy(rows: Float32Array, count: number, dim: number): Buffer {
  return Buffer.concat([npyHeader(count, dim), Buffer.from(rows.buffer, rows.byteOffset, rows.byteLength)]);
}

export async function readManifest(dir: string): Promise<VectorBundleManifest> {
  let manifest: VectorBundleManifest;
  try {
    manifest = JSON.parse(await fs.readFile(path.join(dir, "manifest.json"), "utf8")) as VectorBundleManifest;
  } catch (err) {
    throw new BundleError(`manifest.json unreadable: ${(err as Error).message}`);
  }
  if (manifest.format !== VECTORS_FORMAT) throw new BundleError(`manifest.json format is ${JSON.stringify(manifest.format)}, expected "${VECTORS_FORMAT}"`);
  if (typeof manifest.modelId !== "string" || !Number.isInteger(manifest.dim) || !Number.isInteger(manifest.count)) throw new BundleError("manifest.json needs modelId, dim and count");
  return manifest;
}

/** Read a whole bundle into entries, checking every count and shape against the manifest. */
export async function readVectorBundle(dir: string): Promise<{ manifest: VectorBundleManifest; entries: Entry[] }> {
  const manifest = await readManifest(dir);
  const { shape, data } = parseNpy(await fs.readFile(path.join(dir, "vectors.npy")).catch((err: Error) => {
    throw new BundleError(`vectors.npy unreadable: ${err.message}`);
  }));
  if (shape[0] !== manifest.count || shape[1] !== manifest.dim) throw new BundleError(`vectors.npy has shape (${shape.join(", ")}), manifest says (${manifest.count}, ${manifest.dim})`);
  const lines = (await fs.readFile(path.join(dir, "ids.jsonl"), "utf8").catch((err: Error) => {
    throw new BundleError(`ids.jsonl unreadable: ${err.message}`);
  })).split("\n").filter((l) => l.trim() !== "");
  if (lines.length !== manifest.count) throw new BundleError(`ids.jsonl has ${lines.length} lines, manifest says ${manifest.count}`);
  const now = new Date().toISOString();
  const seen = new Set<string>();
  const entries = lines.map((line, i): Entry => {
    let row: { id?: unknown; source?: unknown; sha256?: unknown; addedAt?: unknown };
    try {
      row = JSON.parse(line) as typeof row;
    } catch {
      throw new BundleError(`ids.jsonl line ${i + 1} is not JSON`);
    }
    if (typeof row.id !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(row.id)) throw new BundleError(`ids.jsonl line ${i + 1}: invalid id`);
    if (seen.has(row.id)) throw new BundleError(`ids.jsonl line ${i + 1}: duplicate id ${row.id}`);
    seen.add(row.id);
    const sha256 = typeof row.sha256 === "string" && /^[0-9a-f]{64}$/.test(row.sha256) ? row.sha256 : NO_BLOB;
    const source = typeof row.source === "string" ? row.source : "import";
    const addedAt = typeof row.addedAt === "string" && !Number.isNaN(Date.parse(row.addedAt)) ? new Date(row.addedAt).toISOString() : now;
    return { meta: { id: row.id, source, sha256, addedAt }, vector: data.subarray(i * manifest.dim, (i + 1) * manifest.dim) };
  });
  return { manifest, entries };
}

/** Write a bundle (tests, benchmarks; `countclip embed` writes the same from Python). */
export async function writeVectorBundle(dir: string, modelId: string, dim: number, ids: Array<{ id: string; source?: string }>, rows: Float32Array): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, "vectors.npy"), encodeNpy(rows, ids.length, dim));
  await fs.writeFile(path.join(dir, "ids.jsonl"), ids.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const manifest: VectorBundleManifest = { format: VECTORS_FORMAT, modelId, dim, count: ids.length };
  await fs.writeFile(path.join(dir, "manifest.json"), JSON.stringify(manifest, null, 2));
}
