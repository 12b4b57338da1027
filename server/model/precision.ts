/**
 * Which ONNX file each tower runs: fp32 (`text.onnx`, `vision.onnx`) or the int8 file that
 * `countclip export --quantize` wrote beside it. The manifest's `precision` names the exporter's
 * choice (int8 only when it passed its parity checks, recorded under `quantization`); an operator
 * overrides it per tower (`TEXT_PRECISION` / `VISION_PRECISION`), so fp32 is always one setting away.
 */
import { type Bundle, BundleError } from "./bundle.ts";

export type Precision = "fp32" | "int8";
/** "auto": as the manifest says (fp32 when it says nothing, as bundles before quantisation). */
export type PrecisionChoice = Precision | "auto";
export type Tower = "text" | "vision";

export const TOWER_FILES: Record<Tower, Record<Precision, string>> = {
  text: { fp32: "text.onnx", int8: "text.int8.onnx" },
  vision: { fp32: "vision.onnx", int8: "vision.int8.onnx" },
};

export interface TowerChoice {
  precision: Precision;
  file: string;
  /** Why an int8 file runs though its parity checks failed (the operator asked), else undefined. */
  warning?: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The manifest's default for a tower ("fp32" when absent); anything but fp32/int8 is refused. */
export function manifestPrecision(bundle: Bundle, tower: Tower): Precision {
  const table = bundle.manifest["precision"];
  if (table === undefined) return "fp32";
  const value = isRecord(table) ? table[tower] ?? "fp32" : table;
  if (value !== "fp32" && value !== "int8") {
    throw new BundleError("invalid_manifest", `manifest.json: "precision.${tower}" must be "fp32" or "int8", got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Parity of a shipped int8 tower as recorded by the exporter (undefined when not recorded). */
function parityPassed(bundle: Bundle, tower: Tower): boolean | undefined {
  const report = bundle.manifest["quantization"];
  const entry = isRecord(report) ? report[tower] : undefined;
  return isRecord(entry) && typeof entry["passed"] === "boolean" ? entry["passed"] : undefined;
}

export function chooseTower(bundle: Bundle, tower: Tower, choice: PrecisionChoice = "auto"): TowerChoice {
  const precision = choice === "auto" ? manifestPrecision(bundle, tower) : choice;
  const file = TOWER_FILES[tower][precision];
  if (!bundle.has(file)) {
    const why = choice === "auto" ? `manifest.json names ${precision} for the ${tower} tower` : `${tower.toUpperCase()}_PRECISION=${choice}`;
    throw new BundleError("missing_file", `${why}, but the bundle lists no ${file} (export with \`countclip export --quantize\`)`, file);
  }
  const result: TowerChoice = { precision, file };
  if (precision === "int8" && parityPassed(bundle, tower) === false) {
    result.warning = `${file} runs though it failed its parity checks at export (manifest.json quantization.${tower}); ${tower.toUpperCase()}_PRECISION=fp32 restores fp32`;
  }
  return result;
}

/**
 * Suffix of the model id for a vision precision: image vectors of int8 and fp32 towers differ,
 * so an index built by one must not be served to queries against the other (the service
 * re-embeds when the id changes). Text precision leaves the index valid, so it is not in the id.
 */
export function visionIdSuffix(precision: Precision): string {
  return precision === "fp32" ? "" : `+vision-${precision}`;
}
