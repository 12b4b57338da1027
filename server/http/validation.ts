/**
 * Run-time enforcement of openapi.yaml: every request body is validated against its
 * operation's schema before a handler sees it (unknown fields rejected: the spec says
 * `additionalProperties: false`), and every JSON response is validated before it is sent,
 * so the service cannot drift from its contract unnoticed.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ErrorObject, ValidateFunction } from "ajv";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule, { type FormatsPlugin } from "ajv-formats";
import type { RequestHandler, Response } from "express";
import { parse as parseYaml } from "yaml";
import { badRequest, type FieldError, Problem } from "../lib/problem.ts";

// ajv-formats is CommonJS: under ESM interop the default import is the plugin itself at run
// time, while its typings describe the `exports.default` alias.
const addFormats = ((addFormatsModule as unknown as { default?: FormatsPlugin }).default ?? addFormatsModule) as FormatsPlugin;

export const SPEC_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "openapi.yaml");

const METHODS = ["get", "post", "put", "delete", "patch"] as const;
const SPEC_ID = "countclip-openapi";

interface Operation {
  request?: ValidateFunction;
  requestRequired: boolean;
  responses: Map<number, ValidateFunction>;
}

type Json = Record<string, unknown>;

/** Point `#/components/schemas/X` refs at the registered components schema. */
function rewriteRefs(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(rewriteRefs);
  if (node === null || typeof node !== "object") return node;
  const out: Json = {};
  for (const [key, value] of Object.entries(node)) {
    out[key] = key === "$ref" && typeof value === "string" && value.startsWith("#/components/schemas/")
      ? `${SPEC_ID}#/$defs/${value.slice("#/components/schemas/".length)}`
      : rewriteRefs(value);
  }
  return out;
}

function resolveResponse(spec: Json, response: Json): Json {
  const ref = response["$ref"];
  if (typeof ref !== "string") return response;
  const name = ref.replace("#/components/responses/", "");
  return ((spec["components"] as Json)["responses"] as Json)[name] as Json;
}

function jsonSchemaOf(content: unknown): unknown {
  const media = (content as Json | undefined)?.["application/json"] as Json | undefined;
  return media?.["schema"];
}

export class ApiValidator {
  private readonly operations = new Map<string, Operation>();

  constructor(specPath = SPEC_PATH) {
    const spec = parseYaml(readFileSync(specPath, "utf8")) as Json;
    const ajv = new Ajv2020({ allErrors: true, useDefaults: true, allowUnionTypes: true, strict: true, strictRequired: false });
    addFormats(ajv);
    const schemas = (spec["components"] as Json)["schemas"] as Json;
    ajv.addSchema({ $id: SPEC_ID, $defs: rewriteRefs(schemas) as Json });
    for (const item of Object.values(spec["paths"] as Json)) {
      for (const method of METHODS) {
        const op = (item as Json)[method] as Json | undefined;
        if (op) this.operations.set(op["operationId"] as string, this.compile(ajv, spec, op));
      }
    }
  }

  private compile(ajv: Ajv2020, spec: Json, op: Json): Operation {
    const body = op["requestBody"] as Json | undefined;
    const requestSchema = jsonSchemaOf(body?.["content"]);
    const responses = new Map<number, ValidateFunction>();
    for (const [status, response] of Object.entries((op["responses"] as Json) ?? {})) {
      const schema = jsonSchemaOf(resolveResponse(spec, response as Json)["content"]);
      if (schema) responses.set(Number(status), ajv.compile(rewriteRefs(schema) as Json));
    }
    return {
      request: requestSchema ? ajv.compile(rewriteRefs(requestSchema) as Json) : undefined,
      requestRequired: body?.["required"] === true,
      responses,
    };
  }

  private op(operationId: string): Operation {
    const op = this.operations.get(operationId);
    if (!op) throw new Error(`openapi.yaml has no operation ${operationId}`);
    return op;
  }

  /** Middleware: 415 for non-JSON bodies, 400 with per-field errors for invalid ones. */
  body(operationId: string): RequestHandler {
    const op = this.op(operationId);
    return (req, _res, next) => {
      if (!op.request) return next();
      const hasBody = req.body !== undefined;
      if (!hasBody && req.headers["content-length"] !== undefined && req.headers["content-length"] !== "0") {
        return next(new Problem(415, "Unsupported Media Type", "request body must be application/json"));
      }
      if (!hasBody && req.headers["transfer-encoding"] !== undefined) {
        return next(new Problem(415, "Unsupported Media Type", "request body must be application/json"));
      }
      if (!hasBody && op.requestRequired) return next(badRequest("request body required (application/json)"));
      if (!hasBody) req.body = {};
      if (!op.request(req.body)) return next(badRequest("request body does not match the API schema", fieldErrors(op.request.errors)));
      next();
    };
  }

  /** Validate a JSON response against the spec, then send it. A mismatch is a server bug: 500. */
  send(res: Response, operationId: string, status: number, body: unknown): void {
    const validate = this.op(operationId).responses.get(status);
    if (!validate) throw new Error(`openapi.yaml declares no JSON ${status} response for ${operationId}`);
    if (!validate(body)) {
      const detail = fieldErrors(validate.errors).map((e) => `${e.path}: ${e.message}`).join("; ");
      throw new Error(`response of ${operationId} violates openapi.yaml: ${detail}`);
    }
    res.status(status).json(body);
  }
}

export function fieldErrors(errors: ErrorObject[] | null | undefined): FieldError[] {
  return (errors ?? []).map((e) => {
    const params = e.params as Record<string, unknown>;
    const extra = params["additionalProperty"];
    const where = e.instancePath || "/";
    return { path: where, message: extra === undefined ? e.message ?? "invalid" : `${e.message}: ${String(extra)}` };
  });
}
