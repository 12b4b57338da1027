/**
 * `npm run --silent counts -- parse|variants|explain`: the contract and bad input, in-process
 * (run() over byte streams) and once as a real subprocess.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { Readable, Writable } from "node:stream";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { run } from "../server/counts/cli.ts";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

async function runCli(command: "parse" | "variants" | "explain", data: Buffer): Promise<[number, Array<Record<string, unknown>>]> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(Buffer.from(chunk));
      done();
    },
  });
  // Feed in small chunks so lines and multi-byte characters straddle chunk boundaries.
  const pieces: Buffer[] = [];
  for (let i = 0; i < data.length; i += 7) pieces.push(data.subarray(i, i + 7));
  const code = await run(command, Readable.from(pieces), sink);
  const lines = Buffer.concat(chunks).toString("utf8").split("\n").filter((l) => l.length > 0);
  return [code, lines.map((l) => JSON.parse(l) as Record<string, unknown>)];
}

test("parse: one JSON line per input line", async () => {
  const [code, rows] = await runCli("parse", Buffer.from("three cats\r\nTwo cucumbers and three tomatoes\n\nSet of 8"));
  assert.equal(code, 0);
  assert.deepEqual(rows, [
    { text: "three cats", count: 3, start: 0, end: 5, noun: "cats" },
    { text: "Two cucumbers and three tomatoes", count: null, start: null, end: null, noun: null },
    { text: "", count: null, start: null, end: null, noun: null },
    { text: "Set of 8", count: 8, start: 7, end: 8, noun: null },
  ]);
});

test("parse: invalid UTF-8, 100 KB lines, emoji and RTL do not crash it", async () => {
  const data = Buffer.concat([
    Buffer.from([0xff, 0xfe]), Buffer.from(" three cats\n"),
    Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(" five dogs\n"),
    Buffer.from(`${"a".repeat(100_000)} two dogs\n😀 six 🐈 cats\nثلاث قطط two cats\n`),
  ]);
  const [code, rows] = await runCli("parse", data);
  assert.equal(code, 0);
  assert.equal(rows.length, 5);
  assert.deepEqual([rows[0]!.text, rows[0]!.start], ["\ufffd\ufffd three cats", 3]);
  assert.deepEqual([rows[1]!.text, rows[1]!.start], ["\ufffd\ufffd\ufffd five dogs", 4]);
  assert.deepEqual([rows[2]!.count, rows[2]!.start], [2, 100_001]);
  assert.deepEqual([rows[3]!.count, rows[3]!.start], [6, 2]);
  assert.deepEqual([rows[4]!.count, rows[4]!.start], [2, 9]);
});

test("parse: empty input gives nothing", async () => {
  assert.deepEqual(await runCli("parse", Buffer.alloc(0)), [0, []]);
});

test("variants: keeps other fields, skips blank lines", async () => {
  const line = JSON.stringify({ image_url: "u", text: "Three pigs - three pigs", number: 3 });
  const [code, rows] = await runCli("variants", Buffer.from(`${line}\n\n`));
  assert.equal(code, 0);
  assert.equal(rows.length, 1);
  const variants = rows[0]!.variants as string[];
  assert.equal(rows[0]!.image_url, "u");
  assert.deepEqual(variants.slice(0, 2), ["Two pigs - two pigs", "Three pigs - three pigs"]);
  assert.equal(variants.length, 9);
});

test("variants: bad lines give an error each, exit status 1, nothing lost", async () => {
  const lines = [
    "not json",
    "[1, 2]",
    '{"text": 5, "number": 3}',
    '{"text": "three cats", "number": "3"}',
    '{"text": "three cats", "number": true}',
    '{"text": "three cats", "number": NaN}',
    '{"text": "three cats", "number": 3.5}',
    '{"text": "three cats", "number": 4}',
    '{"text": "three cats", "number": 3.0}',
  ];
  const [code, rows] = await runCli("variants", Buffer.from(lines.join("\n")));
  assert.equal(code, 1);
  assert.equal(rows.length, 9);
  assert.deepEqual(rows.map((r) => r.error ?? null), [
    "invalid JSON",
    'expected a JSON object with "text" and "number"',
    '"text" must be a string',
    '"number" must be an integer from 1 to 20',
    '"number" must be an integer from 1 to 20',
    "invalid JSON",
    '"number" must be an integer from 1 to 20',
    "4 (four) does not occur in the caption",
    null,
  ]);
  assert.equal((rows[8]!.variants as string[])[1], "three cats");
});

test("variants: refuses deep nesting without crashing", async () => {
  const deep = "[".repeat(100_000);
  const nested = `{"text": "two cats", "number": 2, "x": ${"[".repeat(5000)}${"]".repeat(5000)}}`;
  const ok = `{"text": "two cats", "number": 2, "x": "${"[".repeat(500)}"}`; // brackets in a string are text
  const [code, rows] = await runCli("variants", Buffer.from([deep, nested, ok].join("\n")));
  assert.equal(code, 1);
  const depthError = "JSON nested deeper than 100 levels";
  assert.deepEqual(rows.map((r) => r.error ?? null), [depthError, depthError, null]);
});

test("explain: every numeral with its reason", async () => {
  const [, rows] = await runCli("explain", Buffer.from("a 5-year-old boy with two dogs\n"));
  const numerals = rows[0]!.numerals as Array<{ text: string; reason: string | null }>;
  assert.deepEqual(numerals.map((n) => [n.text, n.reason]), [["5", "age"], ["two", null]]);
});

test("the npm script runs as a process and rejects unknown commands", () => {
  const ok = spawnSync("node", ["--import", "tsx", "server/counts/cli.ts", "parse"], {
    cwd: REPO,
    input: Buffer.from([0xc3, 0x20, 0x74, 0x77, 0x6f, 0x20, 0x63, 0x61, 0x74, 0x73, 0x0a]), // "\xc3 two cats\n"
  });
  assert.equal(ok.status, 0, ok.stderr.toString());
  assert.deepEqual(JSON.parse(ok.stdout.toString()), { text: "\ufffd two cats", count: 2, start: 2, end: 5, noun: "cats" });
  const bad = spawnSync("node", ["--import", "tsx", "server/counts/cli.ts", "frobnicate"], { cwd: REPO });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr.toString(), /usage/);
});
