/**
 * Refuses a gossip message whose id was already seen, within a bounded
 * memory of recent ids. A replay older than that memory is still harmless:
 * every change carries an incarnation, and one no newer than what a member
 * knows is ignored.
 *
 * @module
 */
import { ProtocolError } from "../../core/errors.ts";

/** The ids of recent messages. */
export class ReplayGuard {
  readonly #capacity: number;
  readonly #seen = new Set<string>();

  /** @param capacity How many recent ids to remember. */
  constructor(capacity = 65_536) {
    this.#capacity = capacity;
  }

  /**
   * Records `id` as seen.
   *
   * @throws {ProtocolError} When it was seen before.
   */
  check(from: string, id: string): void {
    const key = `${from}\n${id}`;
    if (this.#seen.has(key)) {
      throw new ProtocolError(`Replayed gossip message: ${id} from ${from} was already received`);
    }
    this.#seen.add(key);
    if (this.#seen.size > this.#capacity) {
      this.#seen.delete(this.#seen.values().next().value!);
    }
  }
}
