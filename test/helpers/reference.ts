/** The Python ONNX/PIL reference (scripts/generators/embed_reference.py) over generated images written to a temp dir. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import type { NamedImage } from "./images.ts";
import { runPythonJson } from "./python-ref.ts";

export interface ReferenceResult {
  pixels: Float32Array[];
  imageEmbeds: number[][];
  textEmbeds: number[][];
}

export interface ReferenceRequest {
  bundle?: string;
  preprocess?: Record<string, unknown>;
  images?: NamedImage[];
  texts?: string[];
}

/** Runs several reference jobs in one Python process (its imports dominate the run time). */
export async function pythonReferences(requests: ReferenceRequest[]): Promise<ReferenceResult[]> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "countclip-ref-"));
  try {
    const jobs = requests.map((request, j) => ({
      bundle: request.bundle ?? null,
      preprocess: request.preprocess ?? null,
      texts: request.texts ?? [],
      images: (request.images ?? []).map((im, i) => {
        const file = path.join(dir, `${j}-${i}-${im.name}`);
        writeFileSync(file, im.bytes);
        return file;
      }),
    }));
    const raw = await runPythonJson(["scripts/generators/embed_reference.py"], { jobs }) as { results: RawResult[] };
    return raw.results.map(decode);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function pythonReference(request: ReferenceRequest): Promise<ReferenceResult> {
  return (await pythonReferences([request]))[0]!;
}

interface RawResult { pixels: string[]; image_embeds?: number[][]; text_embeds?: number[][] }

function decode(raw: RawResult): ReferenceResult {
  return {
    pixels: raw.pixels.map((b64) => {
      const bytes = Buffer.from(b64, "base64");
      return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    }),
    imageEmbeds: raw.image_embeds ?? [],
    textEmbeds: raw.text_embeds ?? [],
  };
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return dot / Math.sqrt(na * nb);
}
