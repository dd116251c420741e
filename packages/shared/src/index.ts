// Public surface of @sidecar/shared.
export * from "./atomic-write.js";
export * from "./backoff.js";
export * from "./env.js";
export * as fsAsync from "./fs-async.js";
export * from "./http-server.js";
export * from "./iso-time.js";
export * from "./lifecycle.js";
export * from "./line-logger.js";
export * from "./log-levels.js";
export * from "./logger.js";
export * from "./main.js";
export * from "./memory-fs.js";
export * from "./prom.js";
export * from "./regular-file.js";
export * from "./sha256.js";
export {
  SNAPPY_FRAGMENT,
  SnappyCompressor,
  uncompress as snappyUncompress,
  writeLiteralTag as snappyLiteralTag,
} from "./snappy.js";
