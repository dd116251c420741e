// Atomic file replacement: write a temporary sibling, fsync it, rename it over the target, fsync
// the directory. Readers see the old file or the new one, never half of either — the textfile
// convention the metrics exporter relies on, and the way positions survive a crash.
import { open, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

let writes = 0;

export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const dir = dirname(path);
  // A leading dot and a .tmp suffix: globs for *.prom / *.log never match the temporary file.
  // pid + a counter: unique within the process; the random part tells two processes with the same
  // pid apart (containers sharing a volume). Not node:crypto's randomBytes, whose module graph costs
  // the log shipper ≈ 1.3 MiB of resident memory (sha256.ts).
  const tmp = join(
    dir,
    `.${basename(path)}.${process.pid}.${(++writes).toString(36)}.${Math.floor(Math.random() * 2 ** 32).toString(16)}.tmp`,
  );
  const fh = await open(tmp, "w", 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  // The rename is durable only once the directory entry is on disk. Some file systems refuse
  // fsync on a directory; the rename has still happened, so that is not an error.
  try {
    const d = await open(dir, "r");
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch {
    /* best effort */
  }
}
