/**
 * The query batcher's window and back-pressure (server/lib/text-batcher.ts), with a fake encoder
 * whose runs end when the test says and a fake clock, so nothing depends on this machine's load.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { OverloadedError, TextBatcher } from "../server/lib/text-batcher.ts";

/** An encoder whose every run waits for `finish()`; `now` is the batcher's clock. */
function controlled() {
  const state = { now: 0, runs: [] as string[][], pending: [] as Array<() => void> };
  const embed = (texts: string[]) => new Promise<Float32Array[]>((resolve) => {
    state.runs.push(texts);
    state.pending.push(() => resolve(texts.map((t) => Float32Array.of(t.length))));
  });
  /** Ends the oldest run after `ms` of clock time; resolves once its callers have their vectors. */
  const finish = async (ms: number) => {
    state.now += ms;
    state.pending.shift()!();
    await new Promise((r) => setImmediate(r));
  };
  return { state, embed, finish, clock: () => state.now };
}

test("a window gathers texts that arrive within it into one run; without one a lone text runs at once", async () => {
  const c = controlled();
  const windowed = new TextBatcher(c.embed, { windowMs: 20, maxBatch: 8 }, c.clock);
  const both = Promise.all([windowed.embed("a"), windowed.embed("bb")]);
  await new Promise((r) => setTimeout(r, 40));
  assert.deepEqual(c.state.runs, [["a", "bb"]]);
  await c.finish(1);
  assert.deepEqual((await both).map((v) => v[0]), [1, 2]);

  const d = controlled();
  const eager = new TextBatcher(d.embed, {}, d.clock);
  const lone = eager.embed("a");
  const next = eager.embed("bb");
  assert.deepEqual(d.state.runs, [["a"]], "ran at once, no timer");
  await d.finish(1);
  await lone;
  assert.deepEqual(d.state.runs, [["a"], ["bb"]]);
  await d.finish(1);
  await next;
});

test("a full batch does not wait for the window", async () => {
  const c = controlled();
  const batcher = new TextBatcher(c.embed, { windowMs: 600_000, maxBatch: 3 }, c.clock);
  const all = Promise.all(["x", "y", "z"].map((t) => batcher.embed(t)));
  assert.deepEqual(c.state.runs, [["x", "y", "z"]]);
  await c.finish(1);
  await all;
});

test("back-pressure: the wait estimate is the rest of the run in flight plus one run per full batch ahead", async () => {
  const c = controlled();
  const batcher = new TextBatcher(c.embed, { maxBatch: 2, maxWaitMs: 1000 }, c.clock);
  assert.equal(batcher.estimatedWaitMs(), 0, "nothing known before a first run");
  const learn = batcher.embed("learn");
  await c.finish(40);
  await learn;
  assert.equal(batcher.estimatedWaitMs(), 0, "idle: no wait, whatever the last run cost");
  const inFlight = batcher.embed("r");
  const queued = ["q1", "q2", "q3"].map((t) => batcher.embed(t));
  c.state.now += 10;
  // 30 ms left of the run in flight + floor(3 queued / 2) = 1 full batch of 40 ahead.
  assert.equal(batcher.estimatedWaitMs(), 30 + 40);
  await c.finish(30);
  await c.finish(40);
  await c.finish(40);
  await Promise.all([inFlight, ...queued]);
  assert.deepEqual(c.state.runs.slice(1), [["r"], ["q1", "q2"], ["q3"]]);
});

test("back-pressure: past the budget a text is refused at once (503, Retry-After), counted, and later served", async () => {
  const c = controlled();
  const batcher = new TextBatcher(c.embed, { maxBatch: 1, maxWaitMs: 50 }, c.clock);
  const learn = batcher.embed("learn");
  await c.finish(30);
  await learn;
  const a = batcher.embed("a"); // idle: runs at once
  const b = batcher.embed("b"); // 30 left in flight, nothing queued ahead: 30 <= 50, queued
  await assert.rejects(batcher.embed("c"), // 30 in flight + b's run = 60 > 50
    (e: unknown) => e instanceof OverloadedError && e.status === 503 && e.retryAfterSeconds === 1 && /about 60 ms.*budget of 50 ms/.test(e.message));
  assert.equal(batcher.refused, 1);
  assert.equal(batcher.pending, 1, "the refused text was never queued");
  await c.finish(30);
  await c.finish(30);
  await Promise.all([a, b]);
  const again = batcher.embed("served again once the queue drained");
  await c.finish(30);
  await again;
  assert.deepEqual(c.state.runs.map((r) => r[0]), ["learn", "a", "b", "served again once the queue drained"]);
});

test("OverloadedError asks for whole seconds, at least one", () => {
  assert.equal(new OverloadedError(10, 5).retryAfterSeconds, 1);
  assert.equal(new OverloadedError(2100, 5).retryAfterSeconds, 3);
  assert.equal(new OverloadedError(10, 5).slug, "overloaded");
});
