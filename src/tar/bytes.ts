/**
 * Pulls exact byte counts out of a chunk stream: `read(n)` returns n bytes (fewer only at the end), `stream(n)` yields
 * the next n bytes as they arrive. Shared by the tar and ar readers.
 */
export class ByteSource {
  readonly #it: AsyncIterator<Uint8Array>;
  #buf: Uint8Array = new Uint8Array(0);
  #done = false;
  /** Bytes consumed so far. */
  offset = 0;
  constructor(src: AsyncIterable<Uint8Array>) {
    this.#it = src[Symbol.asyncIterator]();
  }
  async #fill(): Promise<boolean> {
    if (this.#done) return false;
    const r = await this.#it.next();
    if (r.done) {
      this.#done = true;
      return false;
    }
    const v = r.value instanceof Uint8Array ? r.value : new Uint8Array(r.value as ArrayBuffer);
    this.#buf = this.#buf.length === 0 ? v : Buffer.concat([this.#buf, v]);
    return true;
  }
  /** Returns exactly n bytes, or fewer only at end of stream. */
  async read(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n) if (!(await this.#fill())) break;
    const out = this.#buf.subarray(0, Math.min(n, this.#buf.length));
    this.#buf = this.#buf.subarray(out.length);
    this.offset += out.length;
    return out;
  }
  /** Yields up to n bytes in chunks as they arrive. */
  async *stream(n: number): AsyncGenerator<Uint8Array> {
    let left = n;
    while (left > 0) {
      if (this.#buf.length === 0 && !(await this.#fill())) return;
      const take = this.#buf.subarray(0, Math.min(left, this.#buf.length));
      this.#buf = this.#buf.subarray(take.length);
      this.offset += take.length;
      left -= take.length;
      yield take;
    }
  }
  async close(): Promise<void> {
    await this.#it.return?.();
  }
}
