/**
 * Worker-thread side of runtime.ts: owns one onnxruntime session and runs the batches posted
 * to it, one at a time, in the order they came.
 */
import { parentPort, workerData } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import { runSession, type TensorData, type WorkerReply } from "./runtime.ts";

interface RunMessage {
  kind: "run";
  id: number;
  feeds: Record<string, TensorData>;
  output: string;
}

const port = parentPort!;
const { file, options } = workerData as { file: string; options: ort.InferenceSession.SessionOptions };
const reply = (message: WorkerReply) => port.postMessage(message);

try {
  const session = await ort.InferenceSession.create(file, options);
  port.on("message", (message: RunMessage) => {
    runSession(session, message.feeds, message.output).then(
      (output) => reply({ kind: "result", id: message.id, output }),
      (err: unknown) => reply({ kind: "error", id: message.id, message: err instanceof Error ? err.message : String(err) }),
    );
  });
  reply({ kind: "ready", inputNames: [...session.inputNames], outputNames: [...session.outputNames] });
} catch (err) {
  reply({ kind: "failed", message: err instanceof Error ? err.message : String(err) });
}
