// node:http loaded with require(), not an ES import. Importing a builtin as an ES module makes Node
// read every one of its exports, and on Node 22+ node:http's include lazy getters (WebSocket,
// CloseEvent, MessageEvent) that load undici and with it crypto, tls and http2: several MiB of
// the image's (Node 24) resident memory for nothing the exporter uses (issue 10.5).
import { createRequire } from "node:module";

export const http: typeof import("node:http") = createRequire(import.meta.url)("node:http");
