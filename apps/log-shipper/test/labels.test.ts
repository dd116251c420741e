// Stream labels: rotation suffix stripping for `filename`, pod labels from the environment,
// label name sanitizing and value escaping in the protobuf label string.
import { describe, expect, it } from "vitest";
import {
  baseLabels,
  escapeLabelValue,
  formatLabels,
  podLabelsFromEnv,
  sanitizeLabelName,
  streamLabels,
  stripRotationSuffix,
} from "../src/labels.js";
import { parseLabels } from "./support/fake-loki.js";

describe("stripRotationSuffix", () => {
  it.each([
    ["/shared/logs/app.log", "/shared/logs/app.log"],
    ["/shared/logs/app.log.1", "/shared/logs/app.log"],
    ["/shared/logs/app.log.3", "/shared/logs/app.log"],
    ["/shared/logs/app.log.12", "/shared/logs/app.log"],
    ["/shared/logs/app.log-20240131", "/shared/logs/app.log"],
    ["/shared/logs/app.log.2024-01-31", "/shared/logs/app.log"],
    ["/shared/logs/app.log.2024-01-31T12-00-00", "/shared/logs/app.log"],
    ["/shared/logs/app.2024-01-31.log", "/shared/logs/app.2024-01-31.log"], // date in the middle: not a suffix
    ["/shared/logs/worker-2.log", "/shared/logs/worker-2.log"],
    ["/shared/logs/1.2", "/shared/logs/1.2"], // nothing would be left of the name
    ["/logs.1/app.log", "/logs.1/app.log"], // directories are never touched
    ["app.log.2", "app.log"],
  ])("%s → %s", (path, expected) => {
    expect(stripRotationSuffix(path)).toBe(expected);
  });
});

describe("labels", () => {
  it("reads pod metadata from the downward-API variables that are set", () => {
    expect(
      podLabelsFromEnv({ POD_NAMESPACE: "prod", POD_NAME: "web-1", CONTAINER_NAME: "", NODE_NAME: "n1" }),
    ).toEqual({ namespace: "prod", pod: "web-1", node: "n1" });
    expect(podLabelsFromEnv({})).toEqual({});
  });

  it("lets STATIC_LABELS win over pod labels, sanitizes names and skips empty values", () => {
    expect(
      baseLabels(
        { job: "sample-app", namespace: "override", "app.kubernetes.io/name": "x", empty: "" },
        { namespace: "prod", pod: "p" },
      ),
    ).toEqual({
      namespace: "override",
      pod: "p",
      job: "sample-app",
      app_kubernetes_io_name: "x",
    });
    expect(sanitizeLabelName("9lives")).toBe("_9lives");
    expect(sanitizeLabelName("ok_name1")).toBe("ok_name1");
  });

  it("adds filename and level per stream", () => {
    expect(streamLabels({ job: "j" }, "/a.log", "info")).toEqual({
      job: "j",
      filename: "/a.log",
      level: "info",
    });
    expect(streamLabels({ job: "j" }, "/a.log", "")).toEqual({ job: "j", filename: "/a.log" });
  });

  it("escapes backslash, quote and line breaks so Loki's parser reads the value back exactly", () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    const tricky = {
      job: 'we"ird\\job',
      filename: "/logs/new\nline.log",
      pod: "tab\there\r",
      plain: "ünïcödé ✓",
    };
    const s = formatLabels(tricky);
    expect(s).not.toContain("\n");
    expect(s.startsWith('{filename="')).toBe(true); // names sorted
    expect(parseLabels(s)).toEqual(tricky);
  });
});
