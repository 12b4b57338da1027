/**
 * UTF-16 <-> Unicode code points. The count core reports offsets in code points, as Python
 * does, while JavaScript strings index UTF-16 units; a lone surrogate is one code point in
 * both languages.
 */

const SURROGATE_RE = /[\ud800-\udfff]/;

/** The UTF-16 index `n` code points before `i` (not before 0). */
export function backCodePoints(text: string, i: number, n: number): number {
  for (let k = 0; k < n && i > 0; k++) {
    i -= isPairEnd(text, i - 1) ? 2 : 1;
  }
  return i;
}

/** The UTF-16 index `n` code points after `i` (not past the end). */
export function forwardCodePoints(text: string, i: number, n: number): number {
  for (let k = 0; k < n && i < text.length; k++) {
    i += isPairStart(text, i) ? 2 : 1;
  }
  return i;
}

export function isPairStart(text: string, i: number): boolean {
  const hi = text.charCodeAt(i);
  const lo = text.charCodeAt(i + 1);
  return hi >= 0xd800 && hi <= 0xdbff && lo >= 0xdc00 && lo <= 0xdfff;
}

export function isPairEnd(text: string, i: number): boolean {
  return i > 0 && isPairStart(text, i - 1);
}

export function codePoints(text: string, from: number, to: number): string[] {
  const out: string[] = [];
  for (let i = from; i < to; ) {
    const step = isPairStart(text, i) ? 2 : 1;
    out.push(text.slice(i, i + step));
    i += step;
  }
  return out;
}

/** UTF-16 index -> code-point offset. */
export function unitToCodePoint(text: string, unit: number): number {
  if (!SURROGATE_RE.test(text)) return unit;
  let cp = 0;
  for (let i = 0; i < unit; i += isPairStart(text, i) ? 2 : 1) cp++;
  return cp;
}

/** Code-point offset -> UTF-16 index (-1 when past the end). */
export function codePointToUnit(text: string, cp: number): number {
  if (!SURROGATE_RE.test(text)) return cp <= text.length ? cp : -1;
  let i = 0;
  for (let k = 0; k < cp; k++) {
    if (i >= text.length) return -1;
    i += isPairStart(text, i) ? 2 : 1;
  }
  return i;
}

export function codePointLength(text: string): number {
  return unitToCodePoint(text, text.length);
}
