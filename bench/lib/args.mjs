// The benches' command line: `--key=value` → { key: "value" }, a bare `--flag` → { flag: "true" }.
export function benchArgs(argv = process.argv.slice(2)) {
  return Object.fromEntries(
    argv.map((a) => {
      const a2 = a.replace(/^--/, "");
      const eq = a2.indexOf("=");
      return eq === -1 ? [a2, "true"] : [a2.slice(0, eq), a2.slice(eq + 1)];
    }),
  );
}
