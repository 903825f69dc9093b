/** The objects a blob store handed out, so that it takes back only its own. */
import type { StoredObject } from "./blob_store.ts";
import { InvalidArgumentError } from "./errors.ts";

/** The objects a blob store handed out; held weakly. */
export class HandedOut<T extends StoredObject> {
  readonly #objects = new WeakSet<StoredObject>();

  /** Records `object` as handed out; returns it. */
  add(object: T): T {
    this.#objects.add(object);
    return object;
  }

  /**
   * `stored` as one of the objects handed out.
   *
   * @param action What is done with it, for the message.
   * @throws {InvalidArgumentError} When this store did not hand it out.
   */
  own(stored: StoredObject, action: string): T {
    if (!this.#objects.has(stored)) {
      throw new InvalidArgumentError(`Cannot ${action} an object: not from this store`);
    }
    return stored as T;
  }
}
