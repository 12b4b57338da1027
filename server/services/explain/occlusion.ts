/**
 * Sliding-window occlusion (Zeiler & Fergus, 2014), pure of images and models: where the
 * occluder goes, and how per-window score drops become per-cell weights. Gradient-free, so it
 * runs on the same ONNX vision encoder the service serves with.
 */

export interface OcclusionPlan {
  /** Cells per side of the map. */
  grid: number;
  /** Occluder side, in cells. */
  window: number;
}

/** One occluder position, in cells: it covers rows row..row+window-1, cols col..col+window-1. */
export interface WindowPosition {
  row: number;
  col: number;
}

/** Every position of a `window`-cell occluder sliding one cell at a time, row-major. */
export function windowPositions({ grid, window }: OcclusionPlan): WindowPosition[] {
  const steps = grid - window + 1;
  const positions: WindowPosition[] = [];
  for (let row = 0; row < steps; row++) for (let col = 0; col < steps; col++) positions.push({ row, col });
  return positions;
}

/** Pixel span [start, end) of cells [first, first + n) when `side` pixels hold `grid` cells. */
export function cellSpan(first: number, n: number, grid: number, side: number): [number, number] {
  return [Math.round((first * side) / grid), Math.round(((first + n) * side) / grid)];
}

/**
 * Per-cell weight: the mean drop of the windows covering the cell. `drops[i]` belongs to
 * `windowPositions(plan)[i]`. Returns `grid` rows of `grid` numbers.
 */
export function cellWeights(plan: OcclusionPlan, drops: readonly number[]): number[][] {
  const { grid, window } = plan;
  const sum = Array.from({ length: grid }, () => new Array<number>(grid).fill(0));
  const hits = Array.from({ length: grid }, () => new Array<number>(grid).fill(0));
  windowPositions(plan).forEach(({ row, col }, i) => {
    for (let r = row; r < row + window; r++) {
      for (let c = col; c < col + window; c++) {
        sum[r]![c]! += drops[i]!;
        hits[r]![c]!++;
      }
    }
  });
  return sum.map((cells, r) => cells.map((s, c) => s / hits[r]![c]!));
}

/**
 * The count contrast C = s*cos(v, t_c) - logsumexp_{n != c} s*cos(v, t_n): the log-odds of
 * count c against all the others. Log-odds rather than P(c) because it does not saturate when
 * the model is already sure, so a region's effect stays visible.
 */
export function countContrast(image: Float32Array, prompts: readonly Float32Array[], logitScale: number, count: number): number {
  const logits = prompts.map((t) => {
    let dot = 0;
    for (let i = 0; i < image.length; i++) dot += image[i]! * t[i]!;
    return logitScale * dot;
  });
  const others = logits.filter((_, i) => i !== count - 1);
  const max = Math.max(...others);
  const lse = max + Math.log(others.reduce((acc, x) => acc + Math.exp(x - max), 0));
  return logits[count - 1]! - lse;
}
