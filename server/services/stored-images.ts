/** The original bytes of an indexed image, from the blob store. */
import { notFound } from "../lib/problem.ts";
import type { IndexService } from "./index-service.ts";
import type { Serving } from "./serving.ts";

/** 404 when the image is not (or no longer) indexed. */
export async function storedBytes(service: IndexService, serving: Serving, id: string): Promise<{ bytes: Buffer; sha256: string }> {
  const meta = await serving.index.get(id);
  if (!meta) throw notFound(`no image ${id}`);
  const bytes = await service.blobs.get(meta.sha256).catch(() => {
    throw notFound(`image ${id} was removed`);
  });
  return { bytes, sha256: meta.sha256 };
}
