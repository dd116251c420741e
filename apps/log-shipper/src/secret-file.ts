// A credential kept in a file (LOKI_PASSWORD_FILE, LOKI_BEARER_TOKEN_FILE) and followed as the
// file changes. Kubernetes rotates such files under a running container: a projected
// service-account token is replaced about hourly, a mounted Secret is updated in place (both by
// an atomic symlink swap). Reading the file once at start would send a stale credential forever,
// so the Loki client asks `value()` per request: the file is stat'ed at most once per
// `checkIntervalMs` and re-read only when its identity, size or times changed — or read at once
// after `recheck()`, which the client calls on a 401/403.
//
// The value is never printed: `toJSON`, `toString` and `util.inspect` show the path only.
import { statSync } from "node:fs";
import { inspect } from "node:util";
import { readRegularFileSync } from "@sidecar/shared";

/** How often, at most, the file is stat'ed for a change while requests succeed. */
export const SECRET_CHECK_INTERVAL_MS = 5000;

export interface FileSecretOptions {
  checkIntervalMs?: number;
  now?: () => number;
}

export class FileSecret {
  /** The variable that named the file (for messages). */
  readonly variable: string;
  readonly path: string;
  private current: string;
  private signature: string;
  private checkedAt: number;
  private readonly checkIntervalMs: number;
  private readonly now: () => number;
  /** Why the last re-read failed (an errno code), or undefined; the last good value stays in use. */
  private lastError: string | undefined;
  /** Read the file at the next check even if it looks unchanged (timestamps can be coarse). */
  private forceRead = false;

  /** Reads the file now; throws (with an errno code as message) when it cannot be read. */
  constructor(variable: string, path: string, opts: FileSecretOptions = {}) {
    this.variable = variable;
    this.path = path;
    this.checkIntervalMs = opts.checkIntervalMs ?? SECRET_CHECK_INTERVAL_MS;
    this.now = opts.now ?? Date.now;
    try {
      this.signature = fileSignature(path);
      this.current = readSecret(path);
    } catch (err) {
      throw new Error(`cannot read: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
    }
    this.checkedAt = this.now();
  }

  /** The current secret: re-read when the file changed since the last check. */
  value(): string {
    const now = this.now();
    if (now - this.checkedAt < this.checkIntervalMs) return this.current;
    this.checkedAt = now;
    try {
      const sig = fileSignature(this.path);
      if (sig !== this.signature || this.forceRead) {
        this.current = readSecret(this.path);
        this.signature = sig;
        this.forceRead = false;
      }
      this.lastError = undefined;
    } catch (err) {
      // Mid-rotation or briefly missing: keep sending the last value; a wrong one shows as 401.
      this.lastError = (err as NodeJS.ErrnoException).code ?? "error";
    }
    return this.current;
  }

  /** Check the file on the next `value()` regardless of the interval (Loki refused the credential). */
  recheck(): void {
    this.checkedAt = Number.NEGATIVE_INFINITY;
    this.forceRead = true;
  }

  /** Why the file could not be re-read at the last check, if it could not. */
  get error(): string | undefined {
    return this.lastError;
  }

  toJSON(): { variable: string; file: string } {
    return { variable: this.variable, file: this.path };
  }

  toString(): string {
    return `${this.variable}=${this.path}`;
  }

  [inspect.custom](): string {
    return `FileSecret(${this.toString()})`;
  }
}

/**
 * A destination refused the credential (401/403): perhaps a file was rotated since its last check,
 * so each file among `secrets` is looked at again before the retry. Returns `hint` with the files
 * whose last re-read failed named (`VARIABLE: CODE`, never content), or `hint` as it was.
 */
export function recheckCredentials(
  hint: string | undefined,
  secrets: readonly unknown[],
): string | undefined {
  const errors: string[] = [];
  for (const s of secrets) {
    if (!(s instanceof FileSecret)) continue;
    s.recheck();
    if (s.error !== undefined) errors.push(`${s.variable}: ${s.error}`);
  }
  return errors.length > 0
    ? `${hint} (cannot re-read ${errors.join(", ")}; the last value read is used)`
    : hint;
}

/** A credential given directly, or followed in a file. */
export type SecretSource = string | FileSecret;

export function secretValue(s: SecretSource): string {
  return typeof s === "string" ? trimSecret(s) : s.value();
}

/** Secret files usually end with a newline that is not part of the secret. */
export function trimSecret(s: string): string {
  return s.replace(/\r?\n$/, "");
}

/** Never blocks: a FIFO or device in the file's place is an error (the last value stays in use). */
function readSecret(path: string): string {
  return trimSecret(readRegularFileSync(path));
}

/** What changes when the file is replaced or rewritten (stat follows the rotation symlinks). */
function fileSignature(path: string): string {
  const st = statSync(path, { bigint: true });
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}
