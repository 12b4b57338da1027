/**
 * Confinement of client-named server-local paths to configured roots. The check runs on
 * realpaths, so neither `..` segments nor symlinks (anywhere along the path) can escape a root.
 */
import { promises as fs, realpathSync } from "node:fs";
import path from "node:path";
import { forbidden, notFound, Problem } from "./problem.ts";

/** True when `child` is `parent` or lies below it (both already resolved). */
export function isWithin(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === "" || (!rel.startsWith(`..${path.sep}`) && rel !== ".." && !path.isAbsolute(rel));
}

/**
 * Resolve `requested` (absolute, or relative to the first root) to a real path inside one of
 * `roots`. Throws 403 when it escapes them and 404 when it does not exist.
 */
export async function confine(requested: string, roots: string[], what = "path"): Promise<string> {
  if (roots.length === 0) throw forbidden(`server-local ${what}s are disabled (no roots configured)`);
  if (requested.includes("\0")) throw forbidden(`${what} contains a NUL byte`);
  const candidate = path.resolve(roots[0]!, requested);
  let real: string;
  try {
    real = await fs.realpath(candidate);
  } catch {
    // Report a missing path as 404 only when its lexical form is inside a root; otherwise the
    // answer would reveal which paths exist outside the roots.
    const lexicallyInside = roots.some((r) => isWithin(path.resolve(r), candidate));
    throw lexicallyInside ? notFound(`${what} ${requested} does not exist`) : forbidden(`${what} ${requested} is outside the configured roots`);
  }
  for (const root of roots) {
    const realRoot = await fs.realpath(root).catch(() => undefined);
    if (realRoot && isWithin(realRoot, real)) return real;
  }
  throw forbidden(`${what} ${requested} is outside the configured roots`);
}

/**
 * How a response names a server-local path: relative to the first root holding it (lexically
 * or after resolving the root's symlinks), so responses never show the server's layout above
 * its roots; a path outside every root shows as its base name. A client may send a relative
 * path back: requests resolve relative paths against the first root.
 */
export function displayPath(absolute: string, roots: string[]): string {
  for (const root of roots) {
    for (const base of [path.resolve(root), realOrUndefined(root)]) {
      if (base !== undefined && isWithin(base, absolute)) return path.relative(base, absolute) || ".";
    }
  }
  return path.basename(absolute);
}

/**
 * An image record's `source` as responses show it. Records added before sources were stored
 * root-relative hold the absolute path; they are shown as new ones are ("path:<relative>").
 */
export function displaySource(source: string, roots: string[]): string {
  return path.isAbsolute(source) ? `path:${displayPath(source, roots)}` : source;
}

/** `text` (an error message) with every root's absolute prefix cut, as `displayPath` shows paths. */
export function redactRoots(text: string, roots: string[]): string {
  let out = text;
  for (const root of roots) {
    for (const base of [realOrUndefined(root), path.resolve(root)]) {
      if (base !== undefined && base !== path.sep) out = out.split(`${base}${path.sep}`).join("");
    }
  }
  return out;
}

function realOrUndefined(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}

/** Read a regular file inside the roots, refusing anything larger than `maxBytes`. */
export async function readConfinedFile(requested: string, roots: string[], maxBytes: number): Promise<{ real: string; bytes: Buffer }> {
  const real = await confine(requested, roots);
  const info = await fs.stat(real);
  if (!info.isFile()) throw forbidden(`path ${requested} is not a regular file`);
  // The same answer as for uploaded bytes over the limit (image-input.ts): a size, not a permission.
  if (info.size > maxBytes) throw new Problem(413, "Image Too Large", `file ${requested} has ${info.size} bytes, more than the limit of ${maxBytes} (MAX_IMAGE_BYTES)`);
  return { real, bytes: await fs.readFile(real) };
}
