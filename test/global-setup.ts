// Vitest global setup: the whole run's temporary files under one directory, removed at the end.
// Tests make their directories with mkdtemp in os.tmpdir() (hundreds per run: logs, positions,
// spools, fake receivers' data) and most leave them behind; os.tmpdir() follows TMPDIR, which the
// test workers and the programs they spawn inherit from here.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export default function setup(): () => void {
  const before = process.env.TMPDIR;
  const dir = mkdtempSync(join(tmpdir(), "sidecar-tests-"));
  process.env.TMPDIR = dir;
  return () => {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch (err) {
      // A mount a failed test left inside (the ENOSPC tests mount a small tmpfs): say so, go on.
      console.warn(`could not remove the tests' temporary directory ${dir}: ${String(err)}`);
    }
  };
}
