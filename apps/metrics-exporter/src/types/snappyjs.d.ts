// snappyjs ships no type declarations; these are the two functions of its API.
declare module "snappyjs" {
  /** Snappy block-format compression (what remote-write's `Content-Encoding: snappy` means). */
  export function compress<T extends Uint8Array | ArrayBuffer>(input: T): T;
  export function uncompress<T extends Uint8Array | ArrayBuffer>(input: T, maxLength?: number): T;
}
