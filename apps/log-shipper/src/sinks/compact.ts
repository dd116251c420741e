// Shared by the encoders that gzip a batch (Loki JSON, OTLP).

/**
 * A compressed body as a buffer of its own size. zlib's sync API returns a small result as a view
 * of its 16 KiB output chunk: a one-line batch queued during an outage would hold 16 KiB for ~30
 * bytes — thousands of such batches (one per BATCH_WAIT_MS with a trickle of lines) add up to tens
 * of MiB in a 128 MiB container. Big results are already compact (concatenated chunks).
 */
export function compactBody(b: Buffer): Buffer {
  if (b.buffer.byteLength - b.length <= 1024) return b;
  const own = Buffer.allocUnsafeSlow(b.length);
  b.copy(own);
  return own;
}
