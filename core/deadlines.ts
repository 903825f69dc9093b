/**
 * Items ordered by a deadline in a binary heap, so that the nearest one is
 * known in O(1) and one timer can serve them all. An item whose deadline
 * changes or that goes away is not taken out: its owner checks, when it
 * comes due, whether it still counts.
 */
export class Deadlines<T> {
  readonly #at: number[] = [];
  readonly #items: T[] = [];

  /** How many items are queued. */
  get size(): number {
    return this.#at.length;
  }

  /** The nearest deadline, or undefined when none is queued. */
  get next(): number | undefined {
    return this.#at[0];
  }

  /** Queues `item` to come due at `at`. */
  add(at: number, item: T): void {
    const times = this.#at;
    const items = this.#items;
    let i = times.length;
    times.push(at);
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (times[parent]! <= at) break;
      times[i] = times[parent]!;
      items[i] = items[parent]!;
      i = parent;
    }
    times[i] = at;
    items[i] = item;
  }

  /** Takes out and returns every item due at or before `now`, nearest first. */
  due(now: number): T[] {
    const due: T[] = [];
    while (this.#at.length > 0 && this.#at[0]! <= now) due.push(this.#pop());
    return due;
  }

  /** Empties the queue. */
  clear(): void {
    this.#at.length = 0;
    this.#items.length = 0;
  }

  #pop(): T {
    const times = this.#at;
    const items = this.#items;
    const top = items[0]!;
    const lastAt = times.pop()!;
    const lastItem = items.pop()!;
    const n = times.length;
    if (n === 0) return top;
    let i = 0;
    while (true) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && times[child + 1]! < times[child]!) child++;
      if (times[child]! >= lastAt) break;
      times[i] = times[child]!;
      items[i] = items[child]!;
      i = child;
    }
    times[i] = lastAt;
    items[i] = lastItem;
    return top;
  }
}
