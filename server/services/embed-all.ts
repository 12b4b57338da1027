/**
 * Embedding stored images with a model, in batches: the work of a rebuild, of the first start
 * after the model changed, and of a rebuild's catch-up. Reports progress per batch and yields
 * to the event loop between batches so searches keep flowing.
 */
import type { BlobStore, Entry, IndexBuilder, ItemMeta } from "../../index/backend.ts";
import type { Embedder } from "../model/types.ts";

export interface EmbedAllOptions {
  batchSize: number;
  onProgress?: (done: number) => void;
  /** Checked between batches; a true result aborts with an error. */
  shouldStop?: () => boolean;
}

/** Embed `items` from their stored bytes into `target`, skipping ids it already holds. */
export async function embedInto(
  items: ItemMeta[],
  embedder: Embedder,
  blobs: BlobStore,
  target: IndexBuilder,
  options: EmbedAllOptions,
): Promise<void> {
  const present = await target.ids();
  let done = 0;
  for (let start = 0; start < items.length; start += options.batchSize) {
    if (options.shouldStop?.()) throw new Error("stopped");
    const batch = items.slice(start, start + options.batchSize).filter((m) => !present.has(m.id));
    await target.addBatch(await embedBatch(batch, embedder, blobs));
    batch.forEach((m) => present.add(m.id));
    done += Math.min(options.batchSize, items.length - start);
    options.onProgress?.(done);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Embed `items` from their stored bytes (a rebuild's catch-up). */
export async function embedEntries(items: ItemMeta[], embedder: Embedder, blobs: BlobStore, batchSize: number): Promise<Entry[]> {
  const entries: Entry[] = [];
  for (let start = 0; start < items.length; start += batchSize) entries.push(...(await embedBatch(items.slice(start, start + batchSize), embedder, blobs)));
  return entries;
}

async function embedBatch(batch: ItemMeta[], embedder: Embedder, blobs: BlobStore): Promise<Entry[]> {
  if (batch.length === 0) return [];
  const bytes = await Promise.all(batch.map((m) => readBlob(blobs, m)));
  const vectors = await embedder.embedImages(bytes);
  return batch.map((meta, i) => ({ meta, vector: vectors[i]! }));
}

async function readBlob(blobs: BlobStore, meta: ItemMeta): Promise<Buffer> {
  try {
    return await blobs.get(meta.sha256);
  } catch (err) {
    throw new Error(`image ${meta.id}: stored bytes unreadable (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}
