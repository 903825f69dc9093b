/**
 * A request of one connection while it is served: where its reply goes, and
 * the callbacks its work settles with. Records are pooled per connection and
 * their callbacks made once per record, so a request allocates no closures
 * of its own to settle.
 *
 * @module
 */
import type { Acquired } from "../../core/peer.ts";
import type { OpenCall } from "./serve_open.ts";

/** What settles the requests of a connection. */
export interface ServedBy {
  /** A request's work resolved with its reply body (undefined: it pushed its own). */
  answer(served: Served, reply: Uint8Array | string | undefined): void;
  /** A request's work failed. */
  refuse(served: Served, error: unknown): void;
  /** An OPEN's lease was granted. */
  granted(served: Served, acquired: Acquired): void;
}

/** One request under way, reused for another once it has settled. */
export class Served implements OpenCall {
  op = 0;
  id = 0;
  flags = 0;
  objectId = "";
  known = 0;
  ttl: number | undefined = undefined;
  local = false;
  /** Settles with the work's reply body. */
  readonly answer: (reply: Uint8Array | string | undefined) => void;
  /** Settles with the work's error. */
  readonly refuse: (error: unknown) => void;
  /** Settles an OPEN with its granted lease. */
  readonly granted: (acquired: Acquired) => void;

  constructor(by: ServedBy) {
    this.answer = (reply) => by.answer(this, reply);
    this.refuse = (error) => by.refuse(this, error);
    this.granted = (acquired) => by.granted(this, acquired);
  }
}

/** Records of one connection not in use; bounded by the requests it may have under way. */
export class ServedPool {
  readonly #by: ServedBy;
  readonly #free: Served[] = [];

  constructor(by: ServedBy) {
    this.#by = by;
  }

  /** A record for a new request. */
  take(op: number, id: number, flags: number): Served {
    const served = this.#free.pop() ?? new Served(this.#by);
    served.op = op;
    served.id = id;
    served.flags = flags;
    return served;
  }

  /** Gives back a record whose request has settled. */
  give(served: Served): void {
    served.objectId = "";
    this.#free.push(served);
  }
}
