// File names that are not valid UTF-8 keep their bytes (surrogateescape) and show as \xNN.
import { describe, expect, it } from "vitest";
import { decodeName, displayPath, fsPath } from "../src/source/path-bytes.js";

describe("path bytes", () => {
  it.each([
    ["plain ASCII", Buffer.from("app.log"), "app.log"],
    ["valid UTF-8", Buffer.from("journal-été-💾.log"), "journal-été-💾.log"],
    ["a literal U+FFFD in a valid name", Buffer.from("a\ufffd.log"), "a\ufffd.log"],
    ["Latin-1 é", Buffer.from([0x6c, 0x61, 0x74, 0xe9, 0x2e, 0x6c, 0x6f, 0x67]), "lat\\xe9.log"],
    ["a truncated sequence", Buffer.from([0x61, 0xe2, 0x82, 0x2e]), "a\\xe2\\x82."],
    ["an overlong slash", Buffer.from([0xc0, 0xaf]), "\\xc0\\xaf"],
    ["an encoded surrogate", Buffer.from([0xed, 0xa0, 0x80]), "\\xed\\xa0\\x80"],
    ["past U+10FFFF", Buffer.from([0xf4, 0x90, 0x80, 0x80]), "\\xf4\\x90\\x80\\x80"],
    ["an astral char next to a bad byte", Buffer.concat([Buffer.from("💾"), Buffer.of(0xff)]), "💾\\xff"],
  ])("%s: round-trips to the same bytes, shown as %s", (_what, bytes, shown) => {
    const name = decodeName(bytes);
    const back = fsPath(`/logs/${name}`);
    expect(Buffer.from(back)).toEqual(Buffer.concat([Buffer.from("/logs/"), bytes]));
    expect(displayPath(name)).toBe(shown);
    // A valid name stays an ordinary string for system calls.
    if (Buffer.from(bytes.toString("utf8")).equals(bytes)) expect(typeof back).toBe("string");
  });
});
