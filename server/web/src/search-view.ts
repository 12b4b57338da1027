/**
 * Search: a query box with debounced live results, count-aware toggle and count weight, the
 * parsed query, and a grid of cards. The URL holds the query and settings, so a search can be
 * shared and reloaded. Timings are recorded with the User Timing API (`search` from the end of
 * the debounce to the rendered grid, `search:after-typing` from the last keystroke).
 */
import { imageUrl, isAbort, postJson, type Schemas } from "./api.ts";
import { bindSlider, byId, fixed, h, percent, showError } from "./dom.ts";
import { openExplain } from "./explain-dialog.ts";

const DEBOUNCE_MS = 120;
const K = 24;

let controller: AbortController | undefined;
let timer: ReturnType<typeof setTimeout> | undefined;

interface SearchState {
  query: string;
  countAware: boolean;
  countWeight: number;
}

function state(): SearchState {
  return {
    query: byId<HTMLInputElement>("search-query").value.trim(),
    countAware: byId<HTMLInputElement>("search-aware").checked,
    countWeight: Number(byId<HTMLInputElement>("search-weight").value),
  };
}

/** Search settings into the URL (replaceState: typing must not flood the history). */
function writeUrl(s: SearchState): void {
  const url = new URL(location.href);
  if (s.query) url.searchParams.set("q", s.query);
  else url.searchParams.delete("q");
  if (s.countAware) url.searchParams.delete("aware");
  else url.searchParams.set("aware", "0");
  if (s.countWeight === 1) url.searchParams.delete("w");
  else url.searchParams.set("w", String(s.countWeight));
  history.replaceState(null, "", url);
}

export function readSearchUrl(params: URLSearchParams): void {
  byId<HTMLInputElement>("search-query").value = params.get("q") ?? "";
  byId<HTMLInputElement>("search-aware").checked = params.get("aware") !== "0";
  const w = Number(params.get("w") ?? "1");
  byId<HTMLInputElement>("search-weight").value = String(Number.isFinite(w) ? w : 1);
  byId<HTMLOutputElement>("search-weight-value").value = Number(byId<HTMLInputElement>("search-weight").value).toFixed(1);
}

function parsedText(res: Schemas["SearchResponse"], asked: boolean): string {
  const { count, noun } = res.query;
  if (count === null) return "No count found in the query: ranked by similarity alone.";
  const what = `Parsed: count ${count}, noun ${noun === null ? "(none: counting “objects”)" : `“${noun}”`}.`;
  if (count > 10) return `${what} Counts above ten cannot be scored: ranked by similarity alone.`;
  if (!asked) return `${what} Plain ranking (count-aware is off); cards still show the count posterior.`;
  return `${what} Count-aware ranking.`;
}

function card(hit: Schemas["SearchHit"], rank: number, res: Schemas["SearchResponse"]): HTMLLIElement {
  const noun = res.query.noun ?? "objects";
  const stated = res.query.count;
  const details = h("dl", {},
    h("dt", {}, "similarity"), h("dd", {}, fixed(hit.similarity)),
    h("dt", {}, "score"), h("dd", {}, fixed(hit.score)));
  if (hit.probability !== undefined) details.prepend(h("dt", {}, `P(${hit.estimatedCount})`), h("dd", {}, percent(hit.probability)));
  if (hit.queryCountProbability !== undefined && stated !== null && stated !== hit.estimatedCount) {
    details.prepend(h("dt", {}, `P(${stated})`), h("dd", {}, percent(hit.queryCountProbability)));
  }
  const countLine = hit.estimatedCount !== undefined
    ? h("p", { class: "card-count" }, `≈ ${hit.estimatedCount} ${hit.estimatedCount === 1 ? "" : noun}`.trim())
    : h("p", { class: "card-count" }, "");
  const explain = h("button", { type: "button", class: "secondary", "aria-label": `Explain ${hit.id}: show its relevancy map` }, "Explain");
  explain.addEventListener("click", () => void openExplain({ kind: "indexed", id: hit.id, src: imageUrl(hit.id), query: res.query.count !== null ? state().query : undefined }, explain));
  return h("li", { class: "card", "data-id": hit.id, "data-rank": rank },
    h("img", { src: imageUrl(hit.id), alt: hit.estimatedCount !== undefined ? `${hit.id}, estimated ${hit.estimatedCount} ${noun}` : hit.id, loading: rank <= 8 ? "eager" : "lazy", width: 170, height: 170 }),
    h("div", { class: "body" }, h("p", { class: "card-title" }, `#${rank} ${hit.id}`), countLine, details, explain));
}

/** The server's notes on how it read the query, with a one-click "did you mean". */
function notes(res: Schemas["SearchResponse"]): HTMLLIElement[] {
  return (res.notes ?? []).map((note) => {
    const item = h("li", { "data-code": note.code }, note.message);
    const suggestion = note.suggestion;
    if (suggestion) {
      const button = h("button", { type: "button", class: "secondary" }, `Search “${suggestion}”`);
      button.addEventListener("click", () => {
        byId<HTMLInputElement>("search-query").value = suggestion;
        void run();
      });
      item.append(button);
    }
    return item;
  });
}

function render(res: Schemas["SearchResponse"], query: string, asked: boolean): void {
  byId("search-parsed").textContent = parsedText(res, asked);
  byId("search-notes").replaceChildren(...notes(res));
  const list = byId("search-results");
  list.replaceChildren(...res.hits.map((hit, i) => card(hit, i + 1, res)));
  list.dataset["build"] = String(res.indexBuild);
  list.dataset["model"] = res.modelId;
  // What the grid shows now, so a reader (or a test) can tell a fresh grid from a stale one.
  list.dataset["query"] = query;
  list.dataset["aware"] = String(res.countAware);
  if (res.hits.length === 0) list.append(h("li", { class: "hint" }, "No images in the index yet."));
}

async function run(): Promise<void> {
  const s = state();
  writeUrl(s);
  controller?.abort();
  const list = byId("search-results");
  if (!s.query) {
    list.replaceChildren();
    byId("search-notes").replaceChildren();
    list.removeAttribute("aria-busy");
    return;
  }
  controller = new AbortController();
  const signal = controller.signal;
  performance.mark("search:start");
  list.setAttribute("aria-busy", "true");
  try {
    const body: Schemas["SearchRequest"] = { query: s.query, k: K, countAware: s.countAware, countWeight: s.countWeight };
    const res = await postJson<Schemas["SearchResponse"]>("/v1/search", body, { signal });
    render(res, s.query, s.countAware);
    showError(byId("search-error"), undefined);
    performance.measure("search", "search:start");
    if (performance.getEntriesByName("search:input").length > 0) performance.measure("search:after-typing", "search:input");
  } catch (err) {
    if (isAbort(err)) return;
    showError(byId("search-error"), `Could not search: ${(err as Error).message}`);
  } finally {
    if (!signal.aborted) list.removeAttribute("aria-busy");
  }
}

function schedule(): void {
  performance.mark("search:input");
  clearTimeout(timer);
  timer = setTimeout(() => void run(), DEBOUNCE_MS);
}

export function setupSearch(): void {
  const form = byId<HTMLFormElement>("search-form");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    clearTimeout(timer);
    void run();
  });
  byId("search-query").addEventListener("input", schedule);
  byId("search-aware").addEventListener("change", () => void run());
  bindSlider(byId<HTMLInputElement>("search-weight"), byId<HTMLOutputElement>("search-weight-value"), schedule);
}

/** First load with ?q=…: search at once. */
export function searchNow(): void {
  if (state().query) void run();
}
