/** The page's only way to the service: typed JSON calls whose failures become readable messages. */
import type { components } from "../../api/types.gen.ts";

export type Schemas = components["schemas"];

/** A failed call, worded for people: "Bad Request: k=500 exceeds ... (400)". */
export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const KEY_STORAGE = "countclip.apiKey";

export function apiKey(): string {
  return sessionStorage.getItem(KEY_STORAGE) ?? "";
}

export function setApiKey(key: string): void {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

async function problemMessage(res: Response): Promise<string> {
  const text = await res.text().catch(() => "");
  try {
    const problem = JSON.parse(text) as { title?: string; detail?: string };
    const head = problem.title ?? res.statusText;
    return `${head}${problem.detail ? `: ${problem.detail}` : ""} (${res.status})`;
  } catch {
    return `${res.statusText || "Error"} (${res.status})`;
  }
}

export interface CallOptions {
  signal?: AbortSignal;
  /** Send the API key (mutating endpoints). */
  auth?: boolean;
}

async function send(method: string, path: string, body: unknown, options: CallOptions): Promise<Response> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const key = apiKey();
  if (options.auth && key) headers["Authorization"] = `Bearer ${key}`;
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: options.signal });
  } catch (err) {
    if ((err as Error).name === "AbortError") throw err;
    throw new ApiError(0, "The service cannot be reached; is it running?");
  }
  if (!res.ok) throw new ApiError(res.status, await problemMessage(res));
  return res;
}

export async function getJson<T>(path: string, options: CallOptions = {}): Promise<T> {
  return (await send("GET", path, undefined, options)).json() as Promise<T>;
}

export async function postJson<T>(path: string, body: unknown, options: CallOptions = {}): Promise<T> {
  return (await send("POST", path, body, options)).json() as Promise<T>;
}

export function imageUrl(id: string): string {
  return `/v1/images/${encodeURIComponent(id)}/content`;
}

/** Whether an error is the page's own cancellation of a superseded request. */
export function isAbort(err: unknown): boolean {
  return err instanceof Error && err.name === "AbortError";
}
