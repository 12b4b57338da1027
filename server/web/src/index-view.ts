/**
 * Index: status, adding images by upload, and a rebuild with a live progress bar (done/total,
 * rate, ETA) polled from GET /v1/index until the new index swaps in.
 */
import { apiKey, getJson, postJson, setApiKey, type Schemas } from "./api.ts";
import { byId, h, showError } from "./dom.ts";
import { imagesOf, toBase64 } from "./files.ts";

const POLL_MS = 200;
let polling: ReturnType<typeof setTimeout> | undefined;

function row(term: string, value: string): Node[] {
  return [h("dt", {}, term), h("dd", {}, value)];
}

function showStatus(status: Schemas["IndexStatus"]): void {
  byId("index-status").replaceChildren(
    ...row("Ready", status.ready ? "yes" : "loading…"),
    ...row("Model", status.modelId ?? "—"),
    ...row("Images", String(status.size)),
    ...row("Index build", status.indexBuild === undefined ? "—" : String(status.indexBuild)),
    ...row("Backend", status.backend ?? "—"),
    ...row("Dimensions", status.dim === undefined ? "—" : String(status.dim)),
  );
  showRebuild(status.rebuild);
}

function seconds(s: number): string {
  return s < 90 ? `${Math.ceil(s)} s` : `${Math.ceil(s / 60)} min`;
}

function showRebuild(r: Schemas["RebuildState"]): void {
  const bar = byId<HTMLProgressElement>("rebuild-progress");
  const fraction = r.progress ?? (r.total > 0 ? r.done / r.total : 0);
  bar.max = 1;
  bar.value = fraction;
  bar.dataset["state"] = r.state;
  const pct = `${Math.floor(100 * fraction)}%`;
  byId("rebuild-percent").textContent = pct;
  bar.setAttribute("aria-valuetext", `${pct}, ${r.done} of ${r.total} images`);
  const text = byId("rebuild-text");
  const started = r.startedAt ? Date.parse(r.startedAt) : NaN;
  const elapsed = ((r.finishedAt ? Date.parse(r.finishedAt) : Date.now()) - started) / 1000;
  const rate = elapsed > 0 && r.done > 0 ? r.done / elapsed : 0;
  switch (r.state) {
    case "idle":
      text.textContent = "No rebuild has run since the server started.";
      break;
    case "running":
      text.textContent = `Rebuilding: ${r.done} / ${r.total} images` +
        (rate > 0 ? `, ${rate.toFixed(1)} images/s, about ${seconds((r.total - r.done) / rate)} left.` : ".");
      break;
    case "succeeded":
      text.textContent = `Rebuild finished: ${r.done} / ${r.total} images${rate > 0 ? ` at ${rate.toFixed(1)} images/s` : ""}; the new index is serving.`;
      break;
    case "failed":
      text.textContent = `Rebuild failed: ${r.error ?? "unknown error"}. The previous index is still serving.`;
      break;
  }
  byId<HTMLButtonElement>("rebuild-start").disabled = r.state === "running";
}

export async function refreshIndex(): Promise<Schemas["IndexStatus"] | undefined> {
  try {
    const status = await getJson<Schemas["IndexStatus"]>("/v1/index");
    showStatus(status);
    showError(byId("index-error"), undefined);
    return status;
  } catch (err) {
    showError(byId("index-error"), `Could not read the index status: ${(err as Error).message}`);
    return undefined;
  }
}

/** Poll while a rebuild runs; stops on its own when it ends. */
function poll(): void {
  clearTimeout(polling);
  polling = setTimeout(async () => {
    const status = await refreshIndex();
    if (!status || status.rebuild.state === "running") poll();
  }, POLL_MS);
}

async function rebuild(): Promise<void> {
  try {
    const status = await postJson<Schemas["IndexStatus"]>("/v1/index/rebuild", {}, { auth: true });
    showStatus(status);
    showError(byId("index-error"), undefined);
    poll();
  } catch (err) {
    showError(byId("index-error"), `Could not start a rebuild: ${(err as Error).message}`);
  }
}

async function add(files: File[]): Promise<void> {
  const log = byId("add-log");
  log.replaceChildren();
  for (const file of files) {
    try {
      const record = await postJson<Schemas["ImageRecord"]>("/v1/images", { data: await toBase64(file) } satisfies Schemas["AddImageRequest"], { auth: true });
      log.append(h("li", {}, `Added ${file.name} as ${record.id}.`));
    } catch (err) {
      log.append(h("li", { class: "error" }, `${file.name}: ${(err as Error).message}`));
    }
  }
  await refreshIndex();
}

export function setupIndex(): void {
  const key = byId<HTMLInputElement>("api-key");
  key.value = apiKey();
  key.addEventListener("change", () => setApiKey(key.value.trim()));
  byId("key-form").addEventListener("submit", (e) => e.preventDefault());
  byId("add-form").addEventListener("submit", (e) => {
    e.preventDefault();
    void add(imagesOf(byId<HTMLInputElement>("add-files").files));
  });
  byId("rebuild-form").addEventListener("submit", (e) => {
    e.preventDefault();
    void rebuild();
  });
}

/** Opening the view: current status, and follow a rebuild already running. */
export async function showIndexView(): Promise<void> {
  const status = await refreshIndex();
  if (status?.rebuild.state === "running") poll();
}
