/**
 * A recency order in O(1): the insertion order of a `Set`, where touching an
 * item deletes and re-adds it, so the least recently used item comes first.
 */
export class Lru<T> implements Iterable<T> {
  readonly #order = new Set<T>();

  /** How many items are in the order. */
  get size(): number {
    return this.#order.size;
  }

  /** Makes `item` the most recently used, adding it when absent. */
  touch(item: T): void {
    this.#order.delete(item);
    this.#order.add(item);
  }

  /** Moves `item` to the most recently used end only when it is in the order already. */
  refresh(item: T): void {
    if (this.#order.delete(item)) this.#order.add(item);
  }

  /** Takes `item` out of the order. */
  delete(item: T): void {
    this.#order.delete(item);
  }

  /** Takes every item out of the order. */
  clear(): void {
    this.#order.clear();
  }

  /**
   * The items from least to most recently used. An item touched while
   * iterating is visited again at the end: bound the walk by {@link Lru.size}.
   */
  [Symbol.iterator](): Iterator<T> {
    return this.#order.values();
  }
}
