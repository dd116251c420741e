// What the destinations' HTTP clients (Loki, OTLP, Elasticsearch) share: reading a bounded part of
// an answer, and classifying a request that got no answer at all.
import type { Dispatcher } from "undici";
import type { SendResult } from "./loki/loki-client.js";

/**
 * At most `max` bytes of a response body; the rest is discarded (leaving the loop destroys it,
 * and the socket with it). `cut`: there was more than `max`; `failed`: the body broke off.
 */
export async function readBody(
  body: Dispatcher.ResponseData["body"],
  max: number,
): Promise<{ bytes: Buffer; cut: boolean; failed: boolean }> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      const b = chunk as Buffer;
      chunks.push(b);
      size += b.length;
      if (size > max) break;
    }
  } catch {
    // A body cut off mid-way still leaves us the status; the rest is best effort.
    return { bytes: Buffer.concat(chunks).subarray(0, max), cut: size > max, failed: true };
  }
  return { bytes: Buffer.concat(chunks).subarray(0, max), cut: size > max, failed: false };
}

/** At most `max` bytes of a response body as trimmed text, `…` marking a cut. */
export async function readText(
  body: Dispatcher.ResponseData["body"],
  max: number,
): Promise<{ text: string; truncated: boolean }> {
  const { bytes, cut } = await readBody(body, max);
  const text = bytes.toString("utf8").trim();
  return cut ? { text: `${text}…`, truncated: true } : { text, truncated: false };
}

/** A request that got no answer: timed out, aborted (drain deadline, close) or a network error. */
export function noAnswer(
  err: unknown,
  how: { timedOut: boolean; aborted: boolean; timeoutMs: number },
): Extract<SendResult, { kind: "retryable" }> {
  if (how.timedOut)
    return { kind: "retryable", reason: "timeout", message: `timeout after ${how.timeoutMs} ms` };
  if (how.aborted) return { kind: "retryable", reason: "aborted" };
  const e = err as NodeJS.ErrnoException;
  return { kind: "retryable", reason: "network", message: e.code ? `${e.code}: ${e.message}` : String(e) };
}
