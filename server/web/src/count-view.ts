/** Count: one image and a noun, and the model's count posterior over 1..10. */
import { postJson, type Schemas } from "./api.ts";
import { countChart } from "./chart.ts";
import { byId, h, percent, showError } from "./dom.ts";
import { openExplain } from "./explain-dialog.ts";
import { toBase64 } from "./files.ts";

let shown: string | undefined;

async function count(): Promise<void> {
  const file = byId<HTMLInputElement>("count-file").files?.[0];
  const noun = byId<HTMLInputElement>("count-noun").value.trim();
  const error = byId("count-error");
  if (!file || !noun) return showError(error, "Choose an image and say what to count.");
  const out = byId("count-result");
  out.setAttribute("aria-busy", "true");
  try {
    const data = await toBase64(file);
    const res = await postJson<Schemas["CountResponse"]>("/v1/count", { image: data, noun } satisfies Schemas["CountRequest"]);
    if (shown) URL.revokeObjectURL(shown);
    shown = URL.createObjectURL(file);
    const explain = h("button", { type: "button", class: "secondary" }, "Explain this count");
    const src = shown;
    explain.addEventListener("click", () => void openExplain({ kind: "upload", data, src, label: file.name, noun, count: res.estimatedCount }, explain));
    out.replaceChildren(h("div", { class: "count-result" },
      h("img", { src, alt: file.name }),
      h("div", {},
        h("p", { class: "card-count" }, `Most likely ${res.estimatedCount} ${res.noun} (${percent(res.probability)}); mean ${res.meanCount.toFixed(2)}.`),
        countChart(res.distribution, res.noun, res.estimatedCount),
        explain)));
    showError(error, undefined);
  } catch (err) {
    showError(error, `Could not count: ${(err as Error).message}`);
  } finally {
    out.removeAttribute("aria-busy");
  }
}

export function setupCount(): void {
  byId("count-form").addEventListener("submit", (e) => {
    e.preventDefault();
    void count();
  });
}
