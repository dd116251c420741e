// Program entry helpers shared by the three apps' main.ts: turn a configuration error into one
// clear message and exit code 2, and refuse to start on a directory that cannot be written.
import { constants, type Stats } from "node:fs";
import { ConfigError } from "./env.js";
import { access, mkdirRecursive, stat } from "./fs-async.js";
import { fileKind } from "./regular-file.js";

export const EXIT_CONFIG = 2;

/** Run `main`; a ConfigError (or StartupError) prints one line to stderr and exits 2. */
export function runMain(service: string, main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    if (err instanceof ConfigError || err instanceof StartupError) {
      process.stderr.write(`${service}: ${err.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    process.stderr.write(
      `${service}: fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    process.exit(1);
  });
}

/** A start-up problem the user must fix (not a bug): printed without a stack trace. */
export class StartupError extends Error {
  readonly code = "ERR_STARTUP";
  constructor(message: string) {
    super(message);
    this.name = "StartupError";
  }
}

/** Create `dir` if needed and check that this process can write it; else a StartupError naming `variable`. */
export async function ensureWritableDir(dir: string, variable: string): Promise<void> {
  try {
    await mkdirRecursive(dir);
    await access(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    throw new StartupError(
      `${variable}=${JSON.stringify(dir)} is not a writable directory (${code}); ` +
        `check the volume mount and that it is writable by uid ${process.getuid?.() ?? "?"}`,
    );
  }
}

/**
 * `path` must be a regular file (symlinks followed) or not exist; else a StartupError naming
 * `variable`. A FIFO would block the first read for good (open() waits for a writer, on a
 * threadpool thread that even process.exit() then waits for), a device would hand out endless
 * bytes. stat() itself never blocks on them.
 */
export async function ensureRegularFileOrAbsent(
  path: string,
  variable: string,
  opts: { allowDirectory?: boolean } = {},
): Promise<void> {
  let st: Stats;
  try {
    st = await stat(path);
  } catch {
    return; // absent (or unreadable: the reader reports that itself)
  }
  if (st.isFile() || (opts.allowDirectory === true && st.isDirectory())) return;
  throw new StartupError(`${variable}=${JSON.stringify(path)} is ${fileKind(st)}, not a regular file`);
}
