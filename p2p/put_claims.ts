/**
 * One id, one content in a cluster without a shared lease store: a daemon
 * creating an object under a given id first claims the id in the directory
 * (the claim a read-through downloads under), and refuses the create when
 * another daemon claims it or holds it. The claim is renewed until the
 * object is sealed and announced, or abandoned.
 *
 * @module
 */
import { AlreadyExistsError } from "../core/errors.ts";
import type { Directory, Holder } from "./directory.ts";

/** How long a create's claim lasts without renewal, in ms; renewed every third of it. */
const CLAIM_TTL = 10_000;

/** Claims of the creates under way on one daemon. */
export class PutClaims {
  readonly #directory: Directory;
  readonly #self: () => Holder | undefined;

  /**
   * @param directory A directory with claims.
   * @param self This daemon as others reach it; no claims before it is known.
   */
  constructor(directory: Directory, self: () => Holder | undefined) {
    this.#directory = directory;
    this.#self = self;
  }

  /**
   * Claims `id` for a create, renewed until the returned release is called.
   *
   * @throws {AlreadyExistsError} When another daemon claims or holds `id`.
   */
  async claim(id: string): Promise<() => Promise<void>> {
    const self = this.#self();
    const directory = this.#directory;
    if (self === undefined || directory.claim === undefined) return () => Promise.resolve();
    const holder = await directory.claim(id, self, CLAIM_TTL);
    if (holder.node !== self.node) {
      throw new AlreadyExistsError(
        `Cannot create object ${id}: daemon ${holder.node} is creating it: choose another id`,
      );
    }
    const release = async () => {
      clearInterval(timer);
      await directory.unclaim?.(id, self.node).catch(() => {});
    };
    const timer = setInterval(() => {
      directory.claim!(id, self, CLAIM_TTL).catch(() => {});
    }, CLAIM_TTL / 3);
    try {
      const entry = await directory.lookup(id);
      const others = entry?.holders.filter((other) => other.node !== self.node) ?? [];
      if (others.length > 0) {
        throw new AlreadyExistsError(
          `Cannot create object ${id}: daemon ${others[0]!.node} holds it: choose another id`,
        );
      }
    } catch (error) {
      await release();
      throw error;
    }
    return release;
  }
}
