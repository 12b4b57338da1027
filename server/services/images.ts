/** Decoding client-supplied image payloads and embedding them with errors that name the image. */
import type { Embedder } from "../model/types.ts";
import { ImageInputError } from "../model/image-input.ts";
import { Problem, toProblem } from "../lib/problem.ts";

/** base64 (already pattern-checked by the schema) to bytes, within the configured size. */
export function decodeBase64Image(data: string, maxBytes: number, what = "image"): Buffer {
  const bytes = Buffer.from(data, "base64");
  // The schema's pattern admits no string that decodes to nothing; this guards callers that skip it.
  if (bytes.length === 0) throw new ImageInputError("empty", `${what} is empty`);
  if (bytes.length > maxBytes) {
    throw new ImageInputError("too_large", `${what} has ${bytes.length} bytes, more than the limit of ${maxBytes} (MAX_IMAGE_BYTES)`);
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
        throw new Problem(p.status, p.title, `image ${image.id}: ${p.detail ?? p.title}`);
      }
    }
    throw err;
  }
}
