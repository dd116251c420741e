// node:zlib, loaded at the first gzip or gunzip rather than at start. The default configuration
// (Loki, protobuf + snappy) never compresses with zlib; loading it anyway costs ≈ 0.4–0.9 MiB of
// resident memory on Node 24 (its module, stream glue and the binding's pages), in a sidecar whose
// budget is 64 MiB. process.getBuiltinModule returns the one cached module after the first call.
import type * as Zlib from "node:zlib";

export function zlib(): typeof Zlib {
  return process.getBuiltinModule("node:zlib");
}
