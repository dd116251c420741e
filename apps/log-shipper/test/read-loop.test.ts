// The read loop's poll timer (fake timers: counts, not timings): every pollIntervalMs while the
// tailer has something to poll, every quietPollIntervalMs while it has nothing, and every
// pollIntervalMs again from pollSoon() on.
import { afterEach, describe, expect, it, vi } from "vitest";
import { ReadLoop } from "../src/source/read-loop.js";
import { silentLogger } from "./support/logger.js";

function loopWithPolls(opts: { pollIntervalMs: number; quietPollIntervalMs?: number }) {
  const state = { polls: 0, needed: false };
  const loop = new ReadLoop({
    sink: { canAccept: () => true, onDrain: () => {} },
    steps: {
      housekeepingDue: () => false,
      housekeep: async () => {},
      poll: async () => {
        state.polls++;
      },
      pollNeeded: () => state.needed,
      finish: async () => {},
      restart: async () => {},
      chunkRead: () => {},
    },
    copies: {
      holding: false,
      isHolding: () => false,
      catchUp: async () => true,
      recheckCopiesOf: async () => {},
    },
    logger: silentLogger(),
    maxLineBytes: 1024,
    chunkBytes: 4096,
    now: Date.now,
    scratch: Buffer.alloc(1024),
    ...opts,
  });
  return { loop, state };
}

describe("ReadLoop poll timer", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("polls every pollIntervalMs while something is to be polled, every quietPollIntervalMs while nothing is, and fast again from pollSoon", async () => {
    vi.useFakeTimers();
    const { loop, state } = loopWithPolls({ pollIntervalMs: 100, quietPollIntervalMs: 5000 });
    state.needed = true;
    loop.start();
    await vi.advanceTimersByTimeAsync(1000);
    expect(state.polls).toBe(10);

    // Nothing left to poll: after the next poll, the period is the quiet one.
    state.needed = false;
    await vi.advanceTimersByTimeAsync(100);
    expect(state.polls).toBe(11);
    await vi.advanceTimersByTimeAsync(4900);
    expect(state.polls).toBe(11);
    await vi.advanceTimersByTimeAsync(100);
    expect(state.polls).toBe(12);

    // A file opened: polled every pollIntervalMs again, counted from now.
    state.needed = true;
    await vi.advanceTimersByTimeAsync(50);
    loop.pollSoon();
    await vi.advanceTimersByTimeAsync(99);
    expect(state.polls).toBe(12);
    await vi.advanceTimersByTimeAsync(1);
    expect(state.polls).toBe(13);
    await vi.advanceTimersByTimeAsync(500);
    expect(state.polls).toBe(18);
    // pollSoon while polling fast changes nothing (the period is not restarted).
    await vi.advanceTimersByTimeAsync(50);
    loop.pollSoon();
    await vi.advanceTimersByTimeAsync(50);
    expect(state.polls).toBe(19);

    await loop.stop();
    expect(vi.getTimerCount()).toBe(0);
  });

  for (const [what, quietPollIntervalMs] of [
    ["without a quiet period", undefined],
    ["with a quiet period shorter than pollIntervalMs (not used)", 10],
  ] as const) {
    it(`${what}, polls every pollIntervalMs whatever the tailer has`, async () => {
      vi.useFakeTimers();
      const { loop, state } = loopWithPolls({
        pollIntervalMs: 100,
        ...(quietPollIntervalMs !== undefined ? { quietPollIntervalMs } : {}),
      });
      loop.start();
      await vi.advanceTimersByTimeAsync(1000);
      expect(state.polls).toBe(10);
      await loop.stop();
    });
  }
});
