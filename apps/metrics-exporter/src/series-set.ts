// Duplicate-series detection for the parser without one string per series: series keys are the
// normalised bytes already written into the families' line buffers, and this set stores only
// where they are (holder, start, end) and a 32-bit FNV-1a hash, in an open-addressing table of
// typed arrays. A hash match is confirmed by comparing the bytes, so collisions cost a compare,
// never a wrong answer. Keeping tens of thousands of key strings alive during a parse is what made
// V8 grow its young generation (and the sidecar's RSS); this keeps them off the JS heap.

/** Something whose byte buffer holds keys; the buffer may be replaced as it grows (offsets stay). */
export interface KeyHolder {
  readonly bytes: Buffer;
}

export class SeriesSet {
  private slots = new Int32Array(1024); // entry index + 1; 0 = empty
  private hashes = new Uint32Array(512);
  private starts = new Uint32Array(512);
  private ends = new Uint32Array(512);
  private readonly holders: KeyHolder[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Add the key `holder.bytes[start, end)`; false when an equal key is already present. */
  add(holder: KeyHolder, start: number, end: number): boolean {
    const buf = holder.bytes;
    let h = 0x811c9dc5;
    for (let i = start; i < end; i++) {
      h ^= buf[i] as number;
      h = Math.imul(h, 0x01000193);
    }
    h >>>= 0;
    const len = end - start;
    let mask = this.slots.length - 1;
    let slot = h & mask;
    for (;;) {
      const e = this.slots[slot] as number;
      if (e === 0) break;
      const idx = e - 1;
      if (this.hashes[idx] === h) {
        const s = this.starts[idx] as number;
        const t = this.ends[idx] as number;
        if (t - s === len && (this.holders[idx] as KeyHolder).bytes.compare(buf, start, end, s, t) === 0)
          return false;
      }
      slot = (slot + 1) & mask;
    }
    if (this.count === this.hashes.length) this.growEntries();
    if ((this.count + 1) * 2 > this.slots.length) {
      this.rehash(this.slots.length * 2);
      mask = this.slots.length - 1;
      slot = h & mask;
      while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    }
    const idx = this.count++;
    this.hashes[idx] = h;
    this.starts[idx] = start;
    this.ends[idx] = end;
    this.holders[idx] = holder;
    this.slots[slot] = idx + 1;
    return true;
  }

  private growEntries(): void {
    const n = this.hashes.length * 2;
    const grow = (a: Uint32Array) => {
      const b = new Uint32Array(n);
      b.set(a);
      return b;
    };
    this.hashes = grow(this.hashes);
    this.starts = grow(this.starts);
    this.ends = grow(this.ends);
  }

  private rehash(size: number): void {
    const slots = new Int32Array(size);
    const mask = size - 1;
    for (let idx = 0; idx < this.count; idx++) {
      let slot = (this.hashes[idx] as number) & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = idx + 1;
    }
    this.slots = slots;
  }
}
