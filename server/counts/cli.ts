/**
 * `npm run --silent counts -- parse|variants`: the count core over JSON lines, stdin to stdout.
 *
 *   parse:     one caption a line -> {"text","count","start","end","noun"} (count null: abstained)
 *   variants:  {"text","number",...} a line -> the same object + "variants" (CountBench, 2..10)
 *   explain:   one caption a line -> {"text","numerals":[...]} with each numeral's reason
 *
 * Same contract and same bytes as Python's `countclip counts`. Input is decoded as UTF-8
 * with replacement characters, so no input crashes it; each input line gives one output
 * line (blank `variants` lines excepted). A `variants` line that cannot be processed gives
 * `"variants": null` and an `"error"`, and the exit status is 1 after all lines.
 */
import { pathToFileURL } from "node:url";
import { countVariants, explain, findCount } from "./counts.ts";

const ERR_JSON = "invalid JSON";
const ERR_OBJECT = 'expected a JSON object with "text" and "number"';
const ERR_TEXT = '"text" must be a string';
const ERR_NUMBER = '"number" must be an integer from 1 to 20';
const MAX_DEPTH = 100;
const ERR_DEPTH = `JSON nested deeper than ${MAX_DEPTH} levels`;
// Strings (skipped whole) and brackets: enough to measure nesting without parsing.
const JSON_NESTING_RE = /"(?:[^"\\]|\\[\s\S])*"|[[\]{}]/g;
const BLANK_RE = /^[ \t\r\n]*$/;
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true }); // keep a BOM, as Python does

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Command = "parse" | "variants" | "explain";
const COMMANDS: readonly string[] = ["parse", "variants", "explain"];

export function parseRecord(text: string): Record<string, Json> {
  const m = findCount(text);
  if (m === null) return { text, count: null, start: null, end: null, noun: null };
  return { text, count: m.count, start: m.start, end: m.end, noun: m.noun };
}

/** An integer 1..20 from JSON, or null. */
function asNumber(value: Json | undefined): number | null {
  return typeof value === "number" && Number.isInteger(value) && value >= 1 && value <= 20 ? value : null;
}

/** Deeper than MAX_DEPTH: Python's parser would recurse out of stack (and JSON.stringify
 * here), so both CLIs refuse such lines the same way before parsing. */
function tooDeep(line: string): boolean {
  let depth = 0;
  for (const m of line.matchAll(JSON_NESTING_RE)) {
    const bracket = m[0];
    if (bracket === "[" || bracket === "{") {
      if (++depth > MAX_DEPTH) return true;
    } else if (bracket === "]" || bracket === "}") {
      depth--;
    }
  }
  return false;
}

/** [output object, error or null] for one JSON line. */
export function variantsRecord(line: string): [Record<string, Json>, string | null] {
  if (tooDeep(line)) return [{ text: null, number: null, variants: null, error: ERR_DEPTH }, ERR_DEPTH];
  let obj: Json;
  try {
    obj = JSON.parse(line) as Json;
  } catch {
    return [{ text: null, number: null, variants: null, error: ERR_JSON }, ERR_JSON];
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    return [{ text: null, number: null, variants: null, error: ERR_OBJECT }, ERR_OBJECT];
  }
  let error: string | null = null;
  const number = asNumber(obj.number);
  if (typeof obj.text !== "string") error = ERR_TEXT;
  else if (number === null) error = ERR_NUMBER;
  else {
    try {
      obj.number = number;
      obj.variants = countVariants(obj.text, number);
    } catch (e) {
      error = (e as Error).message;
    }
  }
  if (error) {
    obj.variants = null;
    obj.error = error;
  }
  return [obj, error];
}

/** Lines of a byte stream, split on \n (a trailing \r dropped), decoded with replacement. */
async function* readLines(stream: AsyncIterable<Buffer>): AsyncGenerator<string> {
  let pending: Buffer[] = [];
  for await (const chunk of stream) {
    let from = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, from)) {
      pending.push(chunk.subarray(from, nl));
      yield decodeLine(Buffer.concat(pending));
      pending = [];
      from = nl + 1;
    }
    if (from < chunk.length) pending.push(chunk.subarray(from));
  }
  if (pending.length > 0) yield decodeLine(Buffer.concat(pending));
}

function decodeLine(bytes: Buffer): string {
  const end = bytes.length > 0 && bytes[bytes.length - 1] === 13 ? bytes.length - 1 : bytes.length;
  return decoder.decode(bytes.subarray(0, end));
}

/** Writes with back-pressure; a closed pipe (`| head`) ends the run quietly. */
function writer(out: NodeJS.WritableStream): (text: string) => Promise<void> {
  return (text) =>
    new Promise((resolve) => {
      if (out.write(text)) resolve();
      else out.once("drain", resolve);
    });
}

export async function run(command: Command, input: AsyncIterable<Buffer>, out: NodeJS.WritableStream): Promise<number> {
  const write = writer(out);
  let failures = 0;
  let lineno = 0;
  let batch = "";
  for await (const line of readLines(input)) {
    lineno++;
    let record: Record<string, Json>;
    let error: string | null = null;
    if (command === "parse") record = parseRecord(line);
    else if (command === "explain") record = { text: line, numerals: explain(line) as unknown as Json[] };
    else if (BLANK_RE.test(line)) continue; // a blank line carries nothing
    else [record, error] = variantsRecord(line);
    if (error) {
      failures++;
      process.stderr.write(`counts variants: line ${lineno}: ${error}\n`);
    }
    batch += `${JSON.stringify(record)}\n`;
    if (batch.length >= 1 << 16) {
      await write(batch);
      batch = "";
    }
  }
  if (batch.length > 0) await write(batch);
  return failures > 0 ? 1 : 0;
}

const USAGE = "usage: npm run --silent counts -- parse|variants|explain  (JSON lines: stdin -> stdout)";

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "-h" || command === "--help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command === undefined || !COMMANDS.includes(command) || rest.length > 0) {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(0); // the reader has gone, nothing left to say
    throw e;
  });
  return run(command as Command, process.stdin, process.stdout);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
