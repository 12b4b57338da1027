/**
 * Crash-safe persistence of a VectorIndex under `<dataDir>/index/`:
 *
 *   CURRENT                  {"generation": 7}      (atomically replaced, the commit point)
 *   gen-00000007/graph.hnsw  hnswlib graph (its first segment)
 *   gen-00000007/graph-1.hnsw further graph segments, if a bulk import built several (format 2)
 *   gen-00000007/vectors.f32 unit vectors, row = label (float32, little-endian)
 *   gen-00000007/meta.json   ids, labels, model id, sha256 of graph.hnsw and vectors.f32
 *
 * A save writes a complete generation directory under a temp name, fsyncs it, renames it into
 * place and only then flips CURRENT. A kill at any instant therefore leaves CURRENT naming a
 * complete, checksummed generation; temp directories left behind are removed on the next open.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { fsyncDir, fsyncFile, sha256 as sha256Of, sha256File, tempSibling, writeFileAtomic } from "../shared/fsutil.ts";
import type { IndexOrigin, IndexParams, ItemMeta } from "../backend.ts";
import { VectorIndex } from "./vector-index.ts";

export type { IndexOrigin } from "../backend.ts";

export const META_FORMAT = "countclip-index";
/** 1: one graph. 2: graph segments besides graph.hnsw (written only when there are some). */
export const META_VERSION = 2;

export interface IndexMeta extends IndexOrigin {
  format: typeof META_FORMAT;
  formatVersion: number;
  generation: number;
  createdAt: string;
  dim: number;
  params: IndexParams;
  graphSha256: string;
  /** sha256 of graph-1.hnsw, graph-2.hnsw, ... (format 2). */
  segmentSha256?: string[];
  /** Absent in indexes saved before vectors.f32 existed; then vectors come from the graph. */
  vectorsSha256?: string;
  nextLabel: number;
  items: Array<{ label: number; meta: ItemMeta }>;
}

export interface LoadedIndex {
  index: VectorIndex;
  meta: IndexMeta;
}

const GRAPH = "graph.hnsw";

function graphName(segment: number): string {
  return segment === 0 ? GRAPH : `graph-${segment}.hnsw`;
}
const VECTORS = "vectors.f32";
const META = "meta.json";
const CURRENT = "CURRENT";
/** Generations kept besides the current one, for forensics after a bad save. */
const KEEP_PREVIOUS = 1;

function genName(generation: number): string {
  return `gen-${String(generation).padStart(8, "0")}`;
}

function parseGen(name: string): number | undefined {
  const m = /^gen-(\d{8})$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

async function readVectors(file: string, sha256: string): Promise<Float32Array> {
  const bytes = await fs.readFile(file);
  if (sha256Of(bytes) !== sha256) throw new Error("vectors checksum mismatch");
  if (bytes.byteLength % 4 !== 0) throw new Error("vectors file is not float32");
  // Copy into an aligned buffer: a Buffer may start at an odd offset of the pool.
  const rows = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(rows.buffer).set(bytes);
  return rows;
}

export class IndexStore {
  readonly root: string;
  private lastGeneration = 0;

  constructor(dataDir: string) {
    this.root = path.join(dataDir, "index");
  }

  /** Create the directory, drop temp leftovers of interrupted saves, learn the last generation. */
  async open(): Promise<void> {
    await fs.mkdir(this.root, { recursive: true });
    for (const name of await fs.readdir(this.root)) {
      if (name.endsWith(".tmp")) await fs.rm(path.join(this.root, name), { recursive: true, force: true });
      const gen = parseGen(name);
      if (gen !== undefined) this.lastGeneration = Math.max(this.lastGeneration, gen);
    }
  }

  /** A generation number no save has used (the write-ahead log is named after it first). */
  reserveGeneration(): number {
    return ++this.lastGeneration;
  }

  /** Persist `index` as a new generation and make it current. Returns the generation number. */
  async save(index: VectorIndex, origin: IndexOrigin, generation = this.reserveGeneration()): Promise<number> {
    const finalDir = path.join(this.root, genName(generation));
    const tmpDir = tempSibling(finalDir);
    await fs.mkdir(tmpDir);
    try {
      const graphs: string[] = [];
      for (let segment = 0; segment < index.segmentCount; segment++) {
        const graph = path.join(tmpDir, graphName(segment));
        await index.writeGraph(graph, segment);
        await fsyncFile(graph);
        graphs.push(graph);
      }
      const vectors = path.join(tmpDir, VECTORS);
      const rows = index.vectorRows();
      await writeFileAtomic(vectors, new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength));
      const snapshot = index.snapshot();
      const meta: IndexMeta = {
        format: META_FORMAT,
        // A reader of format 1 would load graph.hnsw alone; say it cannot, rather than fail later.
        formatVersion: graphs.length > 1 ? 2 : 1,
        generation,
        createdAt: new Date().toISOString(),
        ...origin,
        dim: index.dim,
        params: index.params,
        graphSha256: await sha256File(graphs[0]!),
        ...(graphs.length > 1 ? { segmentSha256: await Promise.all(graphs.slice(1).map((g) => sha256File(g))) } : {}),
        vectorsSha256: await sha256File(vectors),
        ...snapshot,
      };
      await writeFileAtomic(path.join(tmpDir, META), JSON.stringify(meta));
      await fsyncDir(tmpDir);
      await fs.rename(tmpDir, finalDir);
      await fsyncDir(this.root);
    } catch (err) {
      await fs.rm(tmpDir, { recursive: true, force: true });
      throw err;
    }
    await writeFileAtomic(path.join(this.root, CURRENT), JSON.stringify({ generation }));
    await this.prune(generation);
    return generation;
  }

  /**
   * Load the current generation. If CURRENT is missing or names a generation that fails its
   * checks (which a correct save never produces, but disks do), fall back to the newest
   * generation that loads. Returns undefined when nothing loads.
   */
  async load(): Promise<LoadedIndex | undefined> {
    const candidates = await this.candidates();
    for (const generation of candidates) {
      try {
        return await this.loadGeneration(generation);
      } catch (err) {
        console.warn(`index: generation ${generation} unusable: ${(err as Error).message}`);
      }
    }
    return undefined;
  }

  async loadGeneration(generation: number): Promise<LoadedIndex> {
    const dir = path.join(this.root, genName(generation));
    const meta = JSON.parse(await fs.readFile(path.join(dir, META), "utf8")) as IndexMeta;
    if (meta.format !== META_FORMAT || !(meta.formatVersion >= 1 && meta.formatVersion <= META_VERSION)) throw new Error("unknown index format");
    if (meta.generation !== generation) throw new Error(`meta names generation ${meta.generation}`);
    const sums = [meta.graphSha256, ...(meta.segmentSha256 ?? [])];
    const graphs = sums.map((_, segment) => path.join(dir, graphName(segment)));
    for (const [segment, graph] of graphs.entries()) {
      if ((await sha256File(graph)) !== sums[segment]) throw new Error(`${path.basename(graph)} checksum mismatch`);
    }
    const rows = meta.vectorsSha256 === undefined ? undefined : await readVectors(path.join(dir, VECTORS), meta.vectorsSha256);
    const index = await VectorIndex.fromFiles(graphs, meta.dim, meta.params, meta, rows);
    return { index, meta };
  }

  /** Generations to try, CURRENT first, then the rest newest first. */
  private async candidates(): Promise<number[]> {
    const gens = (await fs.readdir(this.root))
      .map(parseGen)
      .filter((g): g is number => g !== undefined)
      .sort((a, b) => b - a);
    const current = await this.readCurrent();
    return current !== undefined && gens.includes(current) ? [current, ...gens.filter((g) => g !== current)] : gens;
  }

  private async readCurrent(): Promise<number | undefined> {
    try {
      const parsed = JSON.parse(await fs.readFile(path.join(this.root, CURRENT), "utf8")) as { generation?: unknown };
      return typeof parsed.generation === "number" ? parsed.generation : undefined;
    } catch {
      return undefined;
    }
  }

  /** Generation numbers on disk, oldest first. */
  async generations(): Promise<number[]> {
    return (await fs.readdir(this.root)).map(parseGen).filter((g): g is number => g !== undefined).sort((a, b) => a - b);
  }

  private async prune(current: number): Promise<void> {
    const old = (await fs.readdir(this.root))
      .map(parseGen)
      .filter((g): g is number => g !== undefined && g < current)
      .sort((a, b) => b - a)
      .slice(KEEP_PREVIOUS);
    for (const gen of old) await fs.rm(path.join(this.root, genName(gen)), { recursive: true, force: true });
  }
}
