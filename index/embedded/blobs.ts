/**
 * Content-addressed store of original image bytes under `<dataDir>/blobs/`. A rebuild with a
 * new model re-embeds from these bytes, so it never depends on uploads being re-sent or on
 * server-local files still existing.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { sha256, writeFileAtomic } from "../shared/fsutil.ts";

export class BlobStore {
  readonly root: string;

  constructor(dataDir: string) {
    this.root = path.join(dataDir, "blobs");
  }

  async open(): Promise<void> {
    await fs.mkdir(this.root, { recursive: true });
  }

  private file(digest: string): string {
    if (!/^[0-9a-f]{64}$/.test(digest)) throw new Error(`invalid blob key ${digest}`);
    return path.join(this.root, digest.slice(0, 2), digest);
  }

  /** Store bytes (idempotent) and return their SHA-256. */
  async put(data: Uint8Array): Promise<string> {
    const digest = sha256(data);
    const file = this.file(digest);
    try {
      await fs.access(file);
      return digest;
    } catch {
      await fs.mkdir(path.dirname(file), { recursive: true });
      await writeFileAtomic(file, data);
      return digest;
    }
  }

  async get(digest: string): Promise<Buffer> {
    return fs.readFile(this.file(digest));
  }

  async delete(digest: string): Promise<void> {
    await fs.rm(this.file(digest), { force: true });
  }

  /** Remove every blob not in `keep` (and temp leftovers); run only when no write is in flight. */
  async collect(keep: Set<string>): Promise<number> {
    let removed = 0;
    for (const shard of await fs.readdir(this.root)) {
      const dir = path.join(this.root, shard);
      if (!(await fs.stat(dir)).isDirectory()) continue;
      for (const name of await fs.readdir(dir)) {
        if (keep.has(name)) continue;
        await fs.rm(path.join(dir, name), { force: true });
        removed++;
      }
    }
    return removed;
  }
}
