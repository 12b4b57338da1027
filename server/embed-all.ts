/**
 * Embedding stored images into a fresh index in batches: the work of a rebuild, and of the
 * first start after the model changed. Reports progress per batch and yields to the event loop
 * between batches so searches keep flowing.
 */
import type { BlobStore } from "../index/blobs.ts";
import type { ItemMeta, VectorIndex } from "../index/vector-index.ts";
import type { Embedder } from "./model/embedder.ts";

export interface EmbedAllOptions {
  batchSize: number;
  onProgress?: (done: number) => void;
  /** Checked between batches; a true result aborts with an error. */
  shouldStop?: () => boolean;
}

export async function embedInto(
  items: ItemMeta[],
  embedder: Embedder,
  blobs: BlobStore,
  target: VectorIndex,
  options: EmbedAllOptions,
): Promise<void> {
  let done = 0;
  for (let start = 0; start < items.length; start += options.batchSize) {
    if (options.shouldStop?.()) throw new Error("stopped");
    const batch = items.slice(start, start + options.batchSize).filter((m) => !target.has(m.id));
    const bytes = await Promise.all(batch.map((m) => readBlob(blobs, m)));
    const vectors = await embedder.embedImages(bytes);
    batch.forEach((meta, i) => {
      if (!target.has(meta.id)) target.add(meta, vectors[i]!);
    });
    done += Math.min(options.batchSize, items.length - start);
    options.onProgress?.(done);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function readBlob(blobs: BlobStore, meta: ItemMeta): Promise<Buffer> {
  try {
    return await blobs.get(meta.sha256);
  } catch (err) {
    throw new Error(`image ${meta.id}: stored bytes unreadable (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}
