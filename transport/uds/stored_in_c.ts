/**
 * Objects C stored for small PUTs (see `fast_opens.ts`), as the peer holds
 * them once taken in: their bytes (`BesideBytes`) and their info.
 *
 * @module
 */
import { ClosedError } from "../../core/errors.ts";
import type { ObjectInfo } from "../../core/object.ts";
import type { BesideBytes } from "../../core/peer.ts";
import { check } from "../../native/errno.ts";
import type { Native } from "../../native/load.ts";
import type { FastOpens } from "./fast_opens.ts";

/** The bytes of an object C stored for a PUT, the peer's until it lets go (`BesideBytes`). */
export class StoredInC implements BesideBytes {
  readonly #fast: FastOpens;
  readonly #symbols: Native["symbols"];
  /** The table, which C keeps until the last such object is let go. */
  readonly #handle: NonNullable<Deno.PointerValue>;
  readonly #slot: number;
  #released = false;

  constructor(
    fast: FastOpens,
    symbols: Native["symbols"],
    handle: NonNullable<Deno.PointerValue>,
    slot: number,
  ) {
    this.#fast = fast;
    this.#symbols = symbols;
    this.#handle = handle;
    this.#slot = slot;
  }

  copy(offset: number, into: Uint8Array): void {
    this.#live();
    check(
      this.#symbols.pk_fp_copy(this.#handle, this.#slot, BigInt(offset), into, BigInt(into.length)),
      "copy an object stored in C",
    );
  }

  memfd(): number {
    this.#live();
    return check(this.#symbols.pk_fp_memfd(this.#handle, this.#slot), "make a memfd");
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#fast.unheld(this.#slot, this.#symbols.pk_fp_unhold(this.#handle, this.#slot));
  }

  #live(): void {
    if (this.#released) throw new ClosedError("Cannot use an object stored in C: released");
  }
}

/** Metadata of objects stored in C: none, one object for all. */
const NO_META = Object.freeze({});
/** Blob sizes of objects stored in C, one array for each size. */
const blobSizes = new Map<number, readonly number[]>();
const MAX_SIZES = 1024;

/**
 * The info of an object C stored for a PUT: what its reply said, the fields
 * in the order a put's seal leaves them (see `pk_fp_put_info`).
 */
export function putInfo(id: string, size: number, at: number): ObjectInfo {
  let sizes = blobSizes.get(size);
  if (sizes === undefined) {
    sizes = Object.freeze([size]);
    if (blobSizes.size < MAX_SIZES) blobSizes.set(size, sizes);
  }
  return {
    id,
    state: "SEALED",
    size,
    blobSizes: sizes,
    meta: NO_META,
    createdAt: at,
    sealedAt: at,
  };
}
