/** Decoding client-supplied image payloads and embedding them with errors that name the image. */
import type { Embedder } from "./model/embedder.ts";
import { Problem, toProblem } from "./problem.ts";

/** base64 (already pattern-checked by the schema) to bytes, within the configured size. */
export function decodeBase64Image(data: string, maxBytes: number, what = "image"): Buffer {
  const bytes = Buffer.from(data, "base64");
  if (bytes.length === 0) throw new Problem(422, "Unprocessable Content", `${what} is empty`, undefined, "not-an-image");
  if (bytes.length > maxBytes) {
    throw new Problem(413, "Payload Too Large", `${what} has ${bytes.length} bytes, more than the limit of ${maxBytes}`);
  }
  return bytes;
}

/**
 * Embed images in one batch; when the batch fails on bad input, find the offending image so
 * the client learns which one it was.
 */
export async function embedNamedImages(embedder: Embedder, images: Array<{ id: string; bytes: Buffer }>): Promise<Float32Array[]> {
  try {
    return await embedder.embedImages(images.map((i) => i.bytes));
  } catch (err) {
    const problem = toProblem(err);
    if (problem.status >= 500) throw err;
    for (const image of images) {
      try {
        await embedder.embedImages([image.bytes]);
      } catch (single) {
        const p = toProblem(single);
        throw new Problem(p.status, p.title, `image ${image.id}: ${p.detail ?? p.title}`, undefined, p.slug);
      }
    }
    throw err;
  }
}
