/**
 * The default gallery: `gallery.jsonl` lines `{id, file, caption?, count?, noun?, kind?}` with
 * `file` relative to the gallery directory (written by `countclip synth gallery`). A missing
 * gallery means an empty index, not a failed start; bad lines are skipped with a warning.
 */
import { promises as fs } from "node:fs";
import path from "node:path";
import { isWithin } from "../lib/paths.ts";

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

/** What gallery.jsonl says an image shows (written by `countclip synth gallery`). */
export interface GalleryLabel {
  file: string;
  kind: string | null;
  noun: string | null;
  count: number | null;
}

const labelCache = new Map<string, Promise<Map<string, GalleryLabel>>>();

/** The labels of a gallery by image id, read once per directory; no gallery, no labels. */
export function galleryLabels(dir: string): Promise<Map<string, GalleryLabel>> {
  let labels = labelCache.get(dir);
  if (!labels) {
    labels = readLabels(dir);
    labelCache.set(dir, labels);
  }
  return labels;
}

async function readLabels(dir: string): Promise<Map<string, GalleryLabel>> {
  const labels = new Map<string, GalleryLabel>();
  const text = await fs.readFile(path.join(dir, "gallery.jsonl"), "utf8").catch(() => "");
  for (const line of text.split("\n")) {
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      continue; // blank or broken lines: readGallery already warned about them
    }
    if (typeof record !== "object" || record === null) continue;
    const { id: named, file, kind, noun, count } = record as Record<string, unknown>;
    if (typeof file !== "string" || file === "") continue;
    const id = typeof named === "string" ? named : path.parse(file).name;
    labels.set(id, {
      file,
      kind: typeof kind === "string" && kind !== "" ? kind : null,
      noun: typeof noun === "string" && noun !== "" ? noun : null,
      count: Number.isInteger(count) ? (count as number) : null,
    });
  }
  return labels;
}

/** Lower-case nouns (plural and kind) of a gallery, the vocabulary of "did you mean" notes. */
export async function galleryNouns(dir: string): Promise<Set<string>> {
  const nouns = new Set<string>();
  for (const label of (await galleryLabels(dir)).values()) {
    for (const word of [label.noun, label.kind]) if (word) nouns.add(word.toLowerCase());
  }
  return nouns;
}
