/**
 * Write-ahead log of the embedded index: one file per snapshot generation, records appended
 * after the snapshot was taken, replayed on open.
 *
 *   frame   = u32 payload length | u32 CRC-32 of payload | payload      (little-endian)
 *   payload = u8 type | body
 *     0 header  JSON {format, version, generation, modelId, dim}
 *     1 add     u32 JSON length | JSON ItemMeta | dim float32 (the unit vector)
 *     2 delete  JSON {id}
 *
 * Appends are group-committed: records appended while a write + fdatasync is in flight go out
 * together in the next one, so an acknowledged record costs one share of one fsync, whatever
 * the index size. A crash mid-write leaves a torn or checksum-failing tail; the reader stops at
 * the first bad frame, so nothing half-written is ever applied, and the writer truncates the
 * tail before appending again.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { promises as fs } from "node:fs";
import path from "node:path";
import { crc32 } from "node:zlib";
import { fsyncDir } from "../shared/fsutil.ts";
import type { ItemMeta } from "../backend.ts";

export const WAL_FORMAT = "countclip-wal";
export const WAL_VERSION = 1;
const FRAME_HEAD = 8;
/** No record is near this; a larger length is a torn or corrupt frame, not an allocation. */
const MAX_PAYLOAD = 64 * 1024 * 1024;

export interface WalHeader {
  format: typeof WAL_FORMAT;
  version: number;
  generation: number;
  modelId: string;
  dim: number;
}

export type WalRecord = { type: "add"; meta: ItemMeta; vector: Float32Array } | { type: "delete"; id: string };

export function walName(generation: number): string {
  return `wal-${String(generation).padStart(8, "0")}.log`;
}

export function parseWalName(name: string): number | undefined {
  const m = /^wal-(\d{8})\.log$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

function frame(payload: Buffer): Buffer {
  const head = Buffer.alloc(FRAME_HEAD);
  head.writeUInt32LE(payload.length, 0);
  head.writeUInt32LE(crc32(payload), 4);
  return Buffer.concat([head, payload]);
}

function encodeHeader(header: WalHeader): Buffer {
  return frame(Buffer.concat([Buffer.from([0]), Buffer.from(JSON.stringify(header))]));
}

export function encodeRecord(record: WalRecord): Buffer {
  if (record.type === "delete") return frame(Buffer.concat([Buffer.from([2]), Buffer.from(JSON.stringify({ id: record.id }))]));
  const json = Buffer.from(JSON.stringify(record.meta));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  const v = record.vector;
  return frame(Buffer.concat([Buffer.from([1]), len, json, Buffer.from(v.buffer, v.byteOffset, v.byteLength)]));
}

function decodePayload(payload: Buffer): WalRecord | WalHeader {
  const type = payload[0];
  if (type === 0) return JSON.parse(payload.subarray(1).toString("utf8")) as WalHeader;
  if (type === 2) return { type: "delete", id: (JSON.parse(payload.subarray(1).toString("utf8")) as { id: string }).id };
  if (type !== 1) throw new Error(`unknown WAL record type ${type}`);
  const jsonLen = payload.readUInt32LE(1);
  const meta = JSON.parse(payload.subarray(5, 5 + jsonLen).toString("utf8")) as ItemMeta;
  const bytes = payload.subarray(5 + jsonLen);
  if (bytes.length % 4 !== 0) throw new Error("WAL vector is not float32");
  // Copy: the payload's offset in its buffer need not be 4-aligned.
  const vector = new Float32Array(bytes.length / 4);
  new Uint8Array(vector.buffer).set(bytes);
  return { type: "add", meta, vector };
}

export interface WalContents {
  header: WalHeader | undefined;
  records: WalRecord[];
  /** Bytes up to the end of the last good frame; anything after it is a torn tail. */
  validLength: number;
  tornBytes: number;
}

/** Read every good frame of a WAL file, stopping at the first torn or corrupt one. */
export function readWal(file: string): WalContents {
  const fd = openSync(file, "r");
  try {
    const records: WalRecord[] = [];
    let header: WalHeader | undefined;
    let pos = 0;
    const head = Buffer.alloc(FRAME_HEAD);
    for (;;) {
      if (readSync(fd, head, 0, FRAME_HEAD, pos) < FRAME_HEAD) break;
      const length = head.readUInt32LE(0);
      if (length === 0 || length > MAX_PAYLOAD) break;
      const payload = Buffer.alloc(length);
      if (readSync(fd, payload, 0, length, pos + FRAME_HEAD) < length || crc32(payload) !== head.readUInt32LE(4)) break;
      let decoded: WalRecord | WalHeader;
      try {
        decoded = decodePayload(payload);
      } catch {
        break;
      }
      if ("format" in decoded) {
        if (pos !== 0 || decoded.format !== WAL_FORMAT || decoded.version !== WAL_VERSION) break;
        header = decoded;
      } else if (header) {
        records.push(decoded);
      } else {
        break;
      }
      pos += FRAME_HEAD + length;
    }
    return { header, records, validLength: pos, tornBytes: fstatSync(fd).size - pos };
  } finally {
    closeSync(fd);
  }
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Appends records to one WAL file with group commit. */
export class WalWriter {
  private pending: Buffer[] = [];
  private waiters: Waiter[] = [];
  private flushing: Promise<void> | undefined;
  private failed: Error | undefined;
  private count: number;

  private constructor(readonly file: string, private readonly handle: fs.FileHandle, records: number) {
    this.count = records;
  }

  /** A new log starting with `header`; the file and its directory entry are durable on return. */
  static async create(file: string, header: WalHeader): Promise<WalWriter> {
    const handle = await fs.open(file, "wx", 0o644);
    await handle.write(encodeHeader(header));
    await handle.sync();
    await fsyncDir(path.dirname(file));
    return new WalWriter(file, handle, 0);
  }

  /** Continue an existing log after replay, cutting off a torn tail first. */
  static async resume(file: string, contents: WalContents): Promise<WalWriter> {
    const handle = await fs.open(file, "r+");
    if (contents.tornBytes > 0) {
      await handle.truncate(contents.validLength);
      await handle.sync();
    }
    const writer = new WalWriter(file, handle, contents.records.length);
    writer.position = contents.validLength;
    return writer;
  }

  private position = -1;

  /** Records in this log (replayed plus appended). */
  get records(): number {
    return this.count;
  }

  /**
   * Queue a record; the order of calls is the order in the file. Resolves once the record is
   * on disk (fdatasync'd), together with every record queued alongside it.
   */
  append(record: WalRecord): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    this.pending.push(encodeRecord(record));
    this.count++;
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!this.flushing) this.flushing = this.flushLoop();
    return done;
  }

  /** Wait until every record appended so far is durable. */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.failed) throw this.failed;
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = Buffer.concat(this.pending.splice(0));
        const waiters = this.waiters.splice(0);
        try {
          if (this.position < 0) this.position = (await this.handle.stat()).size;
          await this.handle.write(batch, 0, batch.length, this.position);
          this.position += batch.length;
          await this.handle.datasync();
          waiters.forEach((w) => w.resolve());
        } catch (err) {
          // After a failed fsync the page cache state is unknown (fsyncgate): refuse every
          // later write rather than acknowledge one that may not be on disk.
          this.failed = new Error(`write-ahead log ${this.file} failed: ${(err as Error).message}`);
          waiters.forEach((w) => w.reject(this.failed!));
          this.waiters.splice(0).forEach((w) => w.reject(this.failed!));
          this.pending = [];
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }

  async close(): Promise<void> {
    await this.drain().catch(() => undefined);
    await this.handle.close();
  }
}
