// Loki stream labels: which labels a line gets (static, pod metadata, `filename`, `level`), the
// `filename` value (the path with its rotation suffix stripped, so `app.log` and `app.log.1` stay
// one stream across a rotation, as Promtail's `filename` label does), and the two wire forms —
// the label string protobuf pushes carry and the plain object JSON pushes carry.

/** Environment variables (downward API) that become pod labels when set. */
export const POD_LABEL_ENV = {
  namespace: "POD_NAMESPACE",
  pod: "POD_NAME",
  container: "CONTAINER_NAME",
  node: "NODE_NAME",
} as const;

/** `namespace`/`pod`/`container`/`node` from the environment, each only when set and non-empty. */
export function podLabelsFromEnv(env: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [label, variable] of Object.entries(POD_LABEL_ENV)) {
    const v = env[variable];
    if (v !== undefined && v !== "") out[label] = v;
  }
  return out;
}

/**
 * The path a rotated file was rotated from: `/shared/logs/app.log.3` → `/shared/logs/app.log`.
 * Numbered suffixes (logrotate, pino/rotating-file-stream, our sample app) and dated ones
 * (`app.log-20240131`, `app.log.2024-01-31`) are stripped; the rest of the path is kept whole,
 * because Promtail's `filename` label — which dashboards and queries already use — is the full path.
 */
export function stripRotationSuffix(path: string): string {
  const slash = path.lastIndexOf("/");
  const base = path.slice(slash + 1);
  const m =
    /^(.+?)(?:\.\d{1,6}|[.-]\d{8}(?:[-_]?\d{2,6})?|[.-]\d{4}-\d{2}-\d{2}(?:[T_-]\d{2}(?:[-:]?\d{2}){0,2})?)$/.exec(
      base,
    );
  if (!m?.[1] || !/[^0-9._-]/.test(m[1])) return path;
  return path.slice(0, slash + 1) + m[1];
}

/**
 * A valid Loki/Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`. Invalid characters become `_`
 * (as Prometheus relabelling does) instead of making Loki reject every push with a 400.
 */
export function sanitizeLabelName(name: string): string {
  let out = name.replace(/[^a-zA-Z0-9_]/g, "_");
  if (out === "" || /^[0-9]/.test(out)) out = `_${out}`;
  return out;
}

/**
 * Escape a label value for the `{k="v"}` string: Loki parses it with the PromQL lexer, which
 * unquotes Go-style, so a backslash, a double quote and line breaks must be escaped.
 */
export function escapeLabelValue(value: string): string {
  if (!/[\\"\n\r\t]/.test(value)) return value;
  return value.replace(/[\\"\n\r\t]/g, (c) => {
    switch (c) {
      case "\\":
        return "\\\\";
      case '"':
        return '\\"';
      case "\n":
        return "\\n";
      case "\r":
        return "\\r";
      default:
        return "\\t";
    }
  });
}

/** The protobuf push form of a label set: `{a="x", b="y"}`, names sorted (Loki's canonical order). */
export function formatLabels(labels: Readonly<Record<string, string>>): string {
  const names = Object.keys(labels).sort();
  return `{${names.map((n) => `${n}="${escapeLabelValue(labels[n] as string)}"`).join(", ")}}`;
}

/**
 * The labels every stream of this shipper carries: pod metadata, then static labels (a user's
 * STATIC_LABELS win over the environment). Names are sanitized; empty values are left out —
 * Loki treats an empty label as absent anyway.
 */
export function baseLabels(
  staticLabels: Readonly<Record<string, string>>,
  podLabels: Readonly<Record<string, string>> = {},
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const src of [podLabels, staticLabels]) {
    for (const [k, v] of Object.entries(src)) {
      if (v !== "") out[sanitizeLabelName(k)] = v;
    }
  }
  return out;
}

/** Labels of one stream: base labels + `filename` (+ `level` when the line had one). */
export function streamLabels(
  base: Readonly<Record<string, string>>,
  filename: string,
  level: string,
): Record<string, string> {
  const out: Record<string, string> = { ...base, filename };
  if (level !== "") out.level = level;
  return out;
}
