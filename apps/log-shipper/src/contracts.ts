// The seam between the log shipper's source side (discovery → fingerprint → reader → positions)
// and its sink side (entry → batcher → Loki client). Data flows one way through these types; the
// only thing that flows back is the acknowledgement of an offset.
//
// The hot path passes byte ranges, not strings: a reader hands the sink each complete line as a
// slice of its chunk buffer, valid only for the duration of the call, and the sink encodes it
// straight into its batch buffer. No per-line string, JSON.parse or promise.

/** A file being tailed, as the sink sees it. The source side owns and updates it. */
export interface SourceFile {
  /**
   * This reader's key: the file identity (device/inode + fingerprint) plus a generation, so a file
   * truncated and rewritten in place with the same first line gets a new id. Survives renames.
   * Opaque to the sink: used only to acknowledge.
   */
  readonly id: string;
  /** Current path (changes when the file is rotated by rename). */
  readonly path: string;
}

/** What a reader writes lines into. Implemented by the sink side (the pipeline). */
export interface LineSink {
  /**
   * One line without its line terminator: bytes [start, end) of `buf`, which the sink must copy or
   * encode before returning (the reader reuses `buf`). `offset` is the file offset just past this
   * line's terminator — the position to commit once this line is acknowledged. `truncated` is true
   * when the line was longer than MAX_LINE_BYTES and only its head is given. `readTimeMs` is the
   * wall-clock time of the read, used when the line carries no timestamp of its own.
   */
  writeLine(
    file: SourceFile,
    buf: Buffer,
    start: number,
    end: number,
    offset: number,
    truncated: boolean,
    readTimeMs: number,
  ): void;

  /**
   * Bytes read but not yet acknowledged (including bytes of lines still in the open batch).
   * Readers stop reading while `pendingBytes >= maxBufferBytes` and wait for `onDrain`.
   */
  readonly pendingBytes: number;

  /** True while readers may read more (pendingBytes below MAX_BUFFER_BYTES). */
  canAccept(): boolean;

  /** Called (possibly many times) whenever an acknowledgement makes room again. */
  onDrain(listener: () => void): void;

  /** Seal the open batch now (used at shutdown after every file was read to its end). */
  flush(): void;

  /**
   * Optional: a reader of `file` starts; everything before `offset` is acknowledged already. With
   * `ahead` (saved with the position, several destinations) these destinations had acknowledged
   * more of the file: they are not sent those lines again.
   */
  begin?(file: SourceFile, offset: number, ahead?: Readonly<Record<string, number>>): void;

  /**
   * Optional: the reader of `file` is retired — truncated or replaced, deleted and read to its end,
   * or forgotten — and writes no more lines. Lines it wrote are acknowledged as usual.
   */
  end?(file: SourceFile): void;
}

/** What the sink calls when Loki acknowledged (or permanently rejected) everything up to `offset`. */
export interface AckListener {
  /**
   * Every line of `fileId` up to file offset `offset` is done (acknowledged by Loki, or dropped
   * for good after a 4xx — a dropped line is counted, never retried, and must not block commits).
   * Calls for one file arrive in increasing offset order (equal when only `ahead` changed).
   * `ahead` (several destinations only): the destinations that have more of the file than
   * `offset`, with their own offsets — saved with the position, handed back through
   * LineSink.begin after a restart.
   */
  acknowledged(fileId: string, offset: number, ahead?: Readonly<Record<string, number>>): void;
  /**
   * Resolves once every acknowledgement made so far is durable (the positions file written, or
   * the write failed and was reported). The sink sends its next batch only then, so a kill -9
   * re-sends at most the one batch that was in flight (or just acknowledged). The sink asks only
   * when it has a next batch to send; the listener writes acknowledgements that arrive together
   * (several destinations) at once.
   */
  persisted?(): Promise<void>;
}
