/**
 * Fixtures for the service tests: a generated gallery, crafted bad images, and an app built on
 * the real IndexService with a real (random, small) exported bundle and a temp data dir.
 */
import { deflateSync } from "node:zlib";
import { crc32 } from "node:zlib";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Express } from "express";
import sharp from "sharp";
import { createApp } from "../../server/http/app.ts";
import { type Config, loadConfig } from "../../server/services/config.ts";
import { loadEmbedder } from "../../server/model/embedder.ts";
import { IndexService } from "../../server/services/index-service.ts";

const created: string[] = [];

/** A fresh temp directory, removed by `removeTempDirs` (call it from `after`). */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `countclip-${prefix}-`));
  created.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  for (const dir of created.splice(0)) await rm(dir, { recursive: true, force: true });
}

/** A PNG of `count` dots of one colour on a plain background, `size` pixels square. */
export async function dotsImage(count: number, size = 64, colour = "#d22"): Promise<Buffer> {
  const r = Math.max(2, Math.floor(size / 12));
  const dots = Array.from({ length: count }, (_, i) => {
    const x = r + ((i * 37) % (size - 2 * r));
    const y = r + ((i * 53 + 11) % (size - 2 * r));
    return `<circle cx="${x}" cy="${y}" r="${r}" fill="${colour}"/>`;
  }).join("");
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}"><rect width="100%" height="100%" fill="#eee"/>${dots}</svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** A gallery directory in the layout `countclip synth gallery` writes. */
export async function makeGallery(n: number): Promise<string> {
  const dir = await tempDir("gallery");
  await mkdir(path.join(dir, "images"));
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const count = (i % 10) + 1;
    const file = `images/g${i}.png`;
    await writeFile(path.join(dir, file), await dotsImage(count, 48, i % 2 ? "#22d" : "#d22"));
    lines.push(JSON.stringify({ id: `g${i}`, file, caption: `${count} dots`, count, noun: "dots", kind: "dot" }));
  }
  lines.push("{not json", JSON.stringify({ id: "escape", file: "../../etc/passwd" }));
  await writeFile(path.join(dir, "gallery.jsonl"), `${lines.join("\n")}\n`);
  return dir;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A 100 kB PNG whose header claims 50000 x 50000 pixels: a decompression bomb. */
export function bombPng(): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(50_000, 0);
  ihdr.writeUInt32BE(50_000, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // greyscale
  const row = Buffer.alloc(50_001);
  const idat = deflateSync(Buffer.concat(Array.from({ length: 200 }, () => row)));
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IDAT", idat), chunk("IEND", Buffer.alloc(0))]);
}

export async function animatedGif(): Promise<Buffer> {
  const frames = await Promise.all(["red", "blue"].map((c) => sharp({ create: { width: 16, height: 16, channels: 3, background: c } }).png().toBuffer()));
  return sharp(frames, { join: { animated: true } }).gif().toBuffer();
}

export async function truncatedJpeg(): Promise<Buffer> {
  const full = await sharp({ create: { width: 128, height: 128, channels: 3, background: "green" } }).jpeg().toBuffer();
  return full.subarray(0, Math.floor(full.length / 2));
}

export interface TestService {
  config: Config;
  service: IndexService;
  app: Express;
  close(): Promise<void>;
}

/** Start the real service on `modelDir` with a temp data dir (unless given) and test limits. */
export async function startTestService(modelDir: string, env: Record<string, string> = {}): Promise<TestService> {
  const dataDir = env["DATA_DIR"] ?? (await tempDir("data"));
  const config = loadConfig({
    MODEL_DIR: modelDir,
    MODEL_ROOTS: [path.dirname(modelDir), os.tmpdir()].join(path.delimiter),
    GALLERY_DIR: path.join(dataDir, "no-gallery"),
    BODY_LIMIT_BYTES: String(2 * 1024 * 1024),
    BATCH_SIZE: "8",
    HNSW_EF_CONSTRUCTION: "64",
    ...env,
    DATA_DIR: dataDir,
  });
  const service = new IndexService(config, loadEmbedder);
  await service.start();
  const app = createApp({ config, service, defaultMetrics: false });
  return {
    config,
    service,
    app,
    async close() {
      await service.close();
    },
  };
}
