/**
 * The default gallery: `gallery.jsonl` lines `{id, file, caption?, count?, noun?, kind?}` with
 * `file` relative to the gallery directory (written by `countclip synth gallery`). A missing
 * gallery means an empty index, not a failed start; bad lines are skipped with a warning.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { isWithin } from "./paths.ts";

export interface GalleryEntry {
  id: string;
  file: string;
  bytes: Buffer;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

export async function readGallery(dir: string): Promise<GalleryEntry[]> {
  const listing = path.join(dir, "gallery.jsonl");
  let text: string;
  try {
    text = await fs.readFile(listing, "utf8");
  } catch {
    console.log(`gallery: no ${listing}; starting with an empty index`);
    return [];
  }
  const root = await fs.realpath(dir);
  const entries: GalleryEntry[] = [];
  for (const [n, line] of text.split("\n").entries()) {
    if (line.trim() === "") continue;
    try {
      entries.push(await readEntry(root, line));
    } catch (err) {
      console.warn(`gallery: ${listing}:${n + 1} skipped: ${(err as Error).message}`);
    }
  }
  return entries;
}

async function readEntry(root: string, line: string): Promise<GalleryEntry> {
  const record = JSON.parse(line) as { id?: unknown; file?: unknown };
  if (typeof record.file !== "string" || record.file === "") throw new Error('no "file"');
  const id = typeof record.id === "string" ? record.id : path.parse(record.file).name;
  if (!ID.test(id)) throw new Error(`invalid id ${JSON.stringify(id)}`);
  const real = await fs.realpath(path.resolve(root, record.file));
  if (!isWithin(root, real)) throw new Error(`${record.file} lies outside the gallery`);
  return { id, file: record.file, bytes: await fs.readFile(real) };
}
