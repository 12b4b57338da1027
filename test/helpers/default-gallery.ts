/**
 * The embedded default model and a few images of the default gallery, copied with their
 * labels into a temp dir: a real model and real kinds (cats, dogs...) without re-exporting a
 * bundle or indexing all 1,800 images.
 */
import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { REPO_ROOT } from "./bundle.ts";
import { tempDir } from "./service-app.ts";

export const DEFAULT_MODEL = path.join(REPO_ROOT, "server/assets/default-model");
export const DEFAULT_GALLERY = path.join(REPO_ROOT, "server/assets/gallery");

/**
 * `n` entries of the default gallery, in a gallery dir of their own: for each of `kinds` its first
 * image of three (a count tests can ask for: "three cats"), then images spread over the gallery.
 * The gallery lists every kind at count 1, then every kind at 2 and so on, so its first lines would
 * all be single objects; a stride of 67 lines walks across kinds and counts alike.
 */
export async function smallDefaultGallery(n: number, kinds: string[] = ["cat"]): Promise<string> {
  const dir = await tempDir("small-gallery");
  await mkdir(dir, { recursive: true });
  const all = (await readFile(path.join(DEFAULT_GALLERY, "gallery.jsonl"), "utf8")).split("\n").filter((l) => l.trim() !== "");
  const label = (line: string) => JSON.parse(line) as { kind?: string; count?: number };
  const wanted = kinds
    .map((k) => all.find((l) => label(l).kind === k && label(l).count === 3) ?? all.find((l) => label(l).kind === k))
    .filter((l): l is string => l !== undefined);
  const spread = Array.from({ length: all.length }, (_, j) => all[(j * 67) % all.length]!);
  const lines = [...new Set([...wanted, ...spread, ...all])].slice(0, n);
  for (const line of lines) {
    const { file } = JSON.parse(line) as { file: string };
    await copyFile(path.join(DEFAULT_GALLERY, file), path.join(dir, file));
  }
  await writeFile(path.join(dir, "gallery.jsonl"), `${lines.join("\n")}\n`);
  return dir;
}
