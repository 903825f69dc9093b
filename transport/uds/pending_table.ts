/**
 * The requests of one connection under way, by request id: in a ring of
 * slots indexed by the id, as ids are handed out in order and most requests
 * settle before their slot comes round again; a request whose slot is still
 * taken goes to a map. Setting and taking a request so costs no hashing and
 * no allocation, where a map of every request would grow and shrink its
 * table as requests come and go.
 *
 * @module
 */

/** Slots of the ring: more than the requests a client usually has under way. */
const SLOTS = 256;
const MASK = SLOTS - 1;

/** Values by request id, a positive u32. */
export class PendingTable<T> {
  readonly #ids = new Uint32Array(SLOTS);
  readonly #values: (T | undefined)[] = new Array(SLOTS).fill(undefined);
  /** Those whose slot was taken when they came. */
  readonly #overflow = new Map<number, T>();
  #size = 0;

  /** How many are held. */
  get size(): number {
    return this.#size;
  }

  /** Holds `value` under `id`, which is not held. */
  set(id: number, value: T): void {
    const slot = id & MASK;
    if (this.#ids[slot] === 0) {
      this.#ids[slot] = id;
      this.#values[slot] = value;
    } else {
      this.#overflow.set(id, value);
    }
    this.#size++;
  }

  /** The value under `id`, if held. */
  get(id: number): T | undefined {
    const slot = id & MASK;
    if (this.#ids[slot] === id && id !== 0) return this.#values[slot];
    return this.#overflow.size === 0 ? undefined : this.#overflow.get(id);
  }

  /** Stops holding `id`; whether it was held. */
  delete(id: number): boolean {
    const slot = id & MASK;
    if (this.#ids[slot] === id && id !== 0) {
      this.#ids[slot] = 0;
      this.#values[slot] = undefined;
    } else if (!this.#overflow.delete(id)) {
      return false;
    }
    this.#size--;
    return true;
  }

  /** Every id and value held, in no particular order; the table may change meanwhile. */
  *entries(): IterableIterator<[number, T]> {
    for (let slot = 0; slot < SLOTS; slot++) {
      const id = this.#ids[slot]!;
      if (id !== 0) yield [id, this.#values[slot]!];
    }
    yield* [...this.#overflow];
  }

  /**
   * Calls `visit` with each value held and its id, in no particular order,
   * with no pair made for each: the time-out sweep visits every request
   * under way ten times a second. `visit` may delete what it is given.
   */
  forEach(visit: (value: T, id: number) => void): void {
    const ids = this.#ids;
    const values = this.#values;
    for (let slot = 0; slot < SLOTS; slot++) {
      const id = ids[slot]!;
      if (id !== 0) visit(values[slot]!, id);
    }
    if (this.#overflow.size > 0) {
      for (const [id, value] of [...this.#overflow]) {
        visit(value, id);
      }
    }
  }

  /** Holds nothing. */
  clear(): void {
    this.#ids.fill(0);
    this.#values.fill(undefined);
    this.#overflow.clear();
    this.#size = 0;
  }
}
