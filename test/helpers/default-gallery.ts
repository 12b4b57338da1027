/**
 * The embedded default model and a few images of the default gallery, copied with their
 * labels into a temp dir: a real model and real kinds (cats, dogs...) without re-exporting a
 * bundle or indexing all 500 images.
 */
import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { REPO_ROOT } from "./bundle.ts";
import { tempDir } from "./service-app.ts";

export const DEFAULT_MODEL = path.join(REPO_ROOT, "server/assets/default-model");
export const DEFAULT_GALLERY = path.join(REPO_ROOT, "server/assets/gallery");

/** `n` entries of the default gallery (the first of each of `kinds`, then the first others), in a gallery dir of their own. */
export async function smallDefaultGallery(n: number, kinds: string[] = ["cat"]): Promise<string> {
  const dir = await tempDir("small-gallery");
  await mkdir(dir, { recursive: true });
  const all = (await readFile(path.join(DEFAULT_GALLERY, "gallery.jsonl"), "utf8")).split("\n").filter((l) => l.trim() !== "");
  const kindOf = (line: string) => (JSON.parse(line) as { kind?: string }).kind;
  const wanted = kinds.map((k) => all.find((l) => kindOf(l) === k)).filter((l): l is string => l !== undefined);
  const lines = [...wanted, ...all.filter((l) => !wanted.includes(l))].slice(0, n);
  for (const line of lines) {
    const { file } = JSON.parse(line) as { file: string };
    await copyFile(path.join(DEFAULT_GALLERY, file), path.join(dir, file));
  }
  await writeFile(path.join(dir, "gallery.jsonl"), `${lines.join("\n")}\n`);
  return dir;
}
