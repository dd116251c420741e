// File names are bytes; Node's string paths are Unicode. A name that is not valid UTF-8 (an app
// writing `lat\xe9.log` in Latin-1) decodes lossily — U+FFFD instead of the byte — and that string
// names no file: it was never opened, never shipped. Here such names keep their bytes the way
// Python's `surrogateescape` does: each byte that is not part of valid UTF-8 becomes a lone
// surrogate U+DC80–U+DCFF, which valid UTF-8 can never produce. The path stays a string
// everywhere (maps, positions, logs); `fsPath` turns it back into the exact bytes for a system
// call, and `displayPath` gives the form for labels and metrics (`\xe9`).
import { type BigIntStats, lstatSync, type Stats, statSync } from "node:fs";

/** Decode file-name bytes, keeping invalid UTF-8 bytes as lone surrogates (see above). */
export function decodeName(bytes: Buffer): string {
  const s = bytes.toString("utf8");
  if (!s.includes("\ufffd") || Buffer.from(s, "utf8").equals(bytes)) return s;
  let out = "";
  let i = 0;
  while (i < bytes.length) {
    const n = validSequenceLength(bytes, i);
    if (n === 0) {
      out += String.fromCharCode(0xdc00 + (bytes[i] as number));
      i++;
    } else {
      out += bytes.toString("utf8", i, i + n);
      i += n;
    }
  }
  return out;
}

/** Length of the valid UTF-8 sequence starting at `i` (0: the byte there is not one). */
function validSequenceLength(b: Buffer, i: number): number {
  const c = b[i] as number;
  if (c < 0x80) return 1;
  const cont = (k: number) => {
    const x = b[i + k];
    return x !== undefined && (x & 0xc0) === 0x80;
  };
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    const c1 = b[i + 1] ?? 0;
    if (c === 0xe0 && c1 < 0xa0) return 0; // overlong
    if (c === 0xed && c1 >= 0xa0) return 0; // UTF-16 surrogates
    return cont(1) && cont(2) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    const c1 = b[i + 1] ?? 0;
    if (c === 0xf0 && c1 < 0x90) return 0; // overlong
    if (c === 0xf4 && c1 >= 0x90) return 0; // past U+10FFFF
    return cont(1) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

const ESCAPED = /[\udc80-\udcff]/;

/** Whether `path` holds bytes that are not valid UTF-8 (kept as lone surrogates). */
function hasEscapes(path: string): boolean {
  if (!ESCAPED.test(path)) return false;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c >= 0xdc80 && c <= 0xdcff && !isHigh(path.charCodeAt(i - 1))) return true;
  }
  return false;
}

function isHigh(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

/** The path for a system call: the string itself, or its exact bytes when it holds escaped bytes. */
export function fsPath(path: string): string | Buffer {
  if (!hasEscapes(path)) return path;
  const parts: Buffer[] = [];
  let run = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c >= 0xdc80 && c <= 0xdcff && !isHigh(path.charCodeAt(i - 1))) {
      if (i > run) parts.push(Buffer.from(path.slice(run, i), "utf8"));
      parts.push(Buffer.of(c - 0xdc00));
      run = i + 1;
    }
  }
  if (run < path.length) parts.push(Buffer.from(path.slice(run), "utf8"));
  return Buffer.concat(parts);
}

/** The path as labels, metrics and people see it: each byte that is not valid UTF-8 as `\xNN`. */
export function displayPath(path: string): string {
  if (!hasEscapes(path)) return path;
  let out = "";
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c >= 0xdc80 && c <= 0xdcff && !isHigh(path.charCodeAt(i - 1))) {
      out += `\\x${(c - 0xdc00).toString(16).padStart(2, "0")}`;
    } else {
      out += path[i];
    }
  }
  return out;
}

/**
 * stat() (lstat() with `link`) of a path in this module's string form, synchronously and without
 * throwing (undefined: not there or not reachable now). Discovery lstats a busy directory's
 * entries: like fs.watch, a look sees a symlink created, replaced or removed, not its target
 * written (a target outside the directory, refused by openAllowed, would otherwise be reported —
 * and kept the directory busy — at every look).
 */
export function statQuiet(path: string, link = false): Stats | undefined {
  try {
    return link
      ? lstatSync(fsPath(path), { throwIfNoEntry: false })
      : statSync(fsPath(path), { throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}

/** statQuiet with nanosecond times (a directory's signature: rescans compare mtime and ctime). */
export function statBigintQuiet(path: string): BigIntStats | undefined {
  try {
    return statSync(fsPath(path), { bigint: true, throwIfNoEntry: false });
  } catch {
    return undefined;
  }
}
