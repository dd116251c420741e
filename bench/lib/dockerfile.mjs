// The root Dockerfile's log-shipper stage as the image runs it: its ENV variables and the node
// flags of its CMD. Shared by bench/log-shipper-issue12.mjs and
// apps/log-shipper/test/image-memory.test.ts, so the bench and the test read the image the same way.

/** The log-shipper stage of `dockerfile` (its text): `env` from its ENV lines, `nodeFlags` from its CMD. */
export function imageSettings(dockerfile) {
  const lines = dockerfile.replace(/\\\n/g, " ").split("\n");
  const start = lines.findIndex((l) => /^FROM\s+\S+\s+AS\s+log-shipper\s*$/i.test(l));
  if (start < 0) throw new Error("no `FROM … AS log-shipper` stage in the Dockerfile");
  const env = {};
  let cmd;
  for (const l of lines.slice(start + 1)) {
    if (/^FROM\s/i.test(l)) break;
    const e = /^ENV\s+(.*)$/.exec(l);
    if (e) for (const m of e[1].matchAll(/(\w+)=(\S+)/g)) env[m[1]] = m[2];
    const c = /^CMD\s+(\[.*\])\s*$/.exec(l);
    if (c) cmd = JSON.parse(c[1]);
  }
  if (cmd === undefined || cmd[0] !== "node" || cmd.at(-1) !== "dist/main.js")
    throw new Error(`the log-shipper stage's CMD is not ["node", …flags, "dist/main.js"]: ${String(cmd)}`);
  return { env, nodeFlags: cmd.slice(1, -1) };
}
