/** Rerank: several picked or dropped images and a prompt, ranked, each with its count posterior. */
import { postJson, type Schemas } from "./api.ts";
import { countChart } from "./chart.ts";
import { bindSlider, byId, fixed, h, percent, showError } from "./dom.ts";
import { openExplain } from "./explain-dialog.ts";
import { dropZone, imagesOf, toBase64 } from "./files.ts";

interface Picked {
  id: string;
  file: File;
  url: string;
  data?: string;
}

let picked: Picked[] = [];

/** Unique, readable ids: the file name, suffixed when two files share one. */
function pick(files: File[]): void {
  for (const p of picked) URL.revokeObjectURL(p.url);
  const seen = new Map<string, number>();
  picked = files.map((file) => {
    const base = file.name.slice(0, 100) || "image";
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return { id: n === 1 ? base : `${base} (${n})`, file, url: URL.createObjectURL(file) };
  });
  byId("rerank-selected").textContent = picked.length === 0 ? "No images chosen." : `${picked.length} image${picked.length === 1 ? "" : "s"} chosen: ${picked.map((p) => p.id).join(", ")}.`;
}

function card(result: Schemas["RankedImage"], rank: number, prompt: string, noun: string): HTMLLIElement {
  const image = picked.find((p) => p.id === result.id)!;
  const details = h("dl", {},
    h("dt", {}, "score"), h("dd", {}, fixed(result.score)),
    h("dt", {}, "similarity"), h("dd", {}, fixed(result.similarity)),
    h("dt", {}, `P(${result.estimatedCount})`), h("dd", {}, percent(result.probability)));
  if (result.expectedCount !== null && result.expectedCountProbability !== undefined) {
    details.prepend(h("dt", {}, `P(${result.expectedCount})`), h("dd", {}, percent(result.expectedCountProbability)));
  }
  const explain = h("button", { type: "button", class: "secondary", "aria-label": `Explain ${result.id}: show its relevancy map` }, "Explain");
  explain.addEventListener("click", () => void openExplain({ kind: "upload", data: image.data!, src: image.url, label: result.id, query: prompt }, explain));
  const chart = result.distribution ? countChart(result.distribution, noun, result.expectedCount ?? result.estimatedCount) : h("span");
  return h("li", { class: "card", "data-id": result.id, "data-rank": rank },
    h("img", { src: image.url, alt: `${result.id}, estimated ${result.estimatedCount} ${noun}` }),
    h("div", { class: "body" },
      h("p", { class: "card-title" }, `#${rank} ${result.id}`),
      h("p", { class: "card-count" }, `≈ ${result.estimatedCount} (mean ${result.meanCount.toFixed(1)})`),
      chart, details, explain));
}

async function rank(): Promise<void> {
  const error = byId("rerank-error");
  const prompt = byId<HTMLInputElement>("rerank-prompt").value.trim();
  if (picked.length === 0) return showError(error, "Choose or drop at least one image first.");
  if (!prompt) return showError(error, "Type the prompt the images were made for.");
  const button = byId<HTMLButtonElement>("rerank-form").querySelector("button")!;
  button.disabled = true;
  const list = byId("rerank-results");
  list.setAttribute("aria-busy", "true");
  try {
    for (const p of picked) p.data ??= await toBase64(p.file);
    const body: Schemas["RerankRequest"] = {
      prompt,
      images: picked.map((p) => ({ id: p.id, data: p.data! })),
      countWeight: Number(byId<HTMLInputElement>("rerank-weight").value),
    };
    const res = await postJson<Schemas["RerankResponse"]>("/v1/rerank", body);
    const noun = res.prompt.noun ?? "objects";
    byId("rerank-parsed").textContent = res.prompt.count === null
      ? "No count found in the prompt: ranked by similarity alone."
      : `Parsed: count ${res.prompt.count}, noun “${noun}”.`;
    list.replaceChildren(...res.results.map((r, i) => card(r, i + 1, prompt, noun)));
    showError(error, undefined);
  } catch (err) {
    showError(error, `Could not rank: ${(err as Error).message}`);
  } finally {
    button.disabled = false;
    list.removeAttribute("aria-busy");
  }
}

export function setupRerank(): void {
  const input = byId<HTMLInputElement>("rerank-files");
  input.addEventListener("change", () => pick(imagesOf(input.files)));
  dropZone(byId("rerank-drop"), pick);
  bindSlider(byId<HTMLInputElement>("rerank-weight"), byId<HTMLOutputElement>("rerank-weight-value"));
  byId("rerank-form").addEventListener("submit", (e) => {
    e.preventDefault();
    void rank();
  });
}
