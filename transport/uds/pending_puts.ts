/**
 * The objects C stored for small puts that the peer has not taken in yet
 * (`PutsBeside.deferAdoption`): a record each, as `pk_fp_take_puts` writes
 * them, in put order, in one typed-array table, so a put costs no JS object
 * until something of the peer's needs it. This table is the one place an
 * object is C's alone: the server's JS finds every other in the peer.
 *
 * @module
 */

import type { ObjectInfo } from "../../core/object.ts";
import type { WaitingList } from "../../core/peer.ts";
import { putInfo } from "./stored_in_c.ts";

/** Bytes of a record: slot u32, size u32, created f64, id (36 bytes), serial u32. */
export const PUT_RECORD = 56;
/** What a dropped record's slot reads as. */
const DROPPED = 0xffff_ffff;
/** Records left behind by drops are packed away past this many. */
const PACK_AT = 4096;

/** Records of objects stored in C and not taken in by the peer yet. */
export class PendingPuts {
  #records = new Uint8Array(PUT_RECORD * 256);
  #words = new Uint32Array(this.#records.buffer);
  #times = new Float64Array(this.#records.buffer);
  /** Each record's place in the peer's order of puts and reads (`PutsBeside.orderPuts`). */
  #orders = new Float64Array(256);
  /** Records written, in put order, those dropped since included. */
  #length = 0;
  /** Records not dropped. */
  #count = 0;
  /** Their objects' bytes. */
  #bytes = 0;
  /** Each slot's record index + 1 while it is here; 0 otherwise. */
  #at = new Int32Array(1024);

  /** How many objects wait to be taken in. */
  get count(): number {
    return this.#count;
  }

  /** Their bytes in all. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Room for `max` more records at the end, for C to write. */
  room(max: number): Uint8Array {
    const need = (this.#length + max) * PUT_RECORD;
    if (need > this.#records.length) {
      const records = new Uint8Array(Math.max(need, this.#records.length * 2));
      records.set(this.#records.subarray(0, this.#length * PUT_RECORD));
      this.#records = records;
      this.#words = new Uint32Array(records.buffer);
      this.#times = new Float64Array(records.buffer);
      const orders = new Float64Array(records.length / PUT_RECORD);
      orders.set(this.#orders.subarray(0, this.#length));
      this.#orders = orders;
    }
    return this.#records.subarray(this.#length * PUT_RECORD, need);
  }

  /**
   * Keeps the `count` records C wrote into the last {@link PendingPuts.room}.
   *
   * @param order The place of the first in the peer's order; the others follow it.
   * @returns Their objects' bytes in all.
   */
  appended(count: number, order: number): number {
    const words = this.#words;
    const orders = this.#orders;
    let bytes = 0;
    for (let i = this.#length; i < this.#length + count; i++) {
      const slot = words[14 * i]!;
      if (slot >= this.#at.length) this.#growAt(slot);
      this.#at[slot] = i + 1;
      orders[i] = order++;
      bytes += words[14 * i + 1]!;
    }
    this.#length += count;
    this.#count += count;
    this.#bytes += bytes;
    return bytes;
  }

  /** The index of the record of the object in `slot`, or -1 when it is not here. */
  indexOf(slot: number): number {
    return slot < this.#at.length ? this.#at[slot]! - 1 : -1;
  }

  /**
   * The index of the first record after record `i` (from the first when -1),
   * in put order, or -1 when none is left. Indexes hold until a record is
   * dropped or more are appended.
   */
  next(i: number): number {
    const words = this.#words;
    for (let at = i + 1; at < this.#length; at++) if (words[14 * at] !== DROPPED) return at;
    return -1;
  }

  /**
   * The index of the first record placed after `order` in the peer's order
   * (see `next` for what indexes hold), or -1: records keep put order.
   */
  after(order: number): number {
    const orders = this.#orders;
    let low = 0;
    let high = this.#length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (orders[middle]! <= order) low = middle + 1;
      else high = middle;
    }
    return this.next(low - 1);
  }

  /** The place of record `i` in the peer's order of puts and reads. */
  order(i: number): number {
    return this.#orders[i]!;
  }

  /** The slot of record `i`. */
  slot(i: number): number {
    return this.#words[14 * i]!;
  }

  /** The size of record `i`'s object. */
  size(i: number): number {
    return this.#words[14 * i + 1]!;
  }

  /** When record `i`'s object was made, epoch ms. */
  createdAt(i: number): number {
    return this.#times[7 * i + 1]!;
  }

  /** What OPEN replies call record `i`'s object. */
  serial(i: number): number {
    return this.#words[14 * i + 13]!;
  }

  /** The id of record `i`'s object. */
  id(i: number): string {
    const at = PUT_RECORD * i + 16;
    return String.fromCharCode.apply(
      null,
      this.#records.subarray(at, at + 36) as unknown as number[],
    );
  }

  /** The records as they are now, to list their objects a slice at a time. */
  snapshot(): WaitingList {
    const length = this.#length;
    if (this.#count === length) {
      return new PutSnapshot(
        this.#records.slice(0, length * PUT_RECORD),
        this.#orders.slice(0, length),
      );
    }
    const records = new Uint8Array(this.#count * PUT_RECORD);
    const orders = new Float64Array(this.#count);
    let to = 0;
    for (let i = this.next(-1); i >= 0; i = this.next(i)) {
      records.set(this.#records.subarray(i * PUT_RECORD, (i + 1) * PUT_RECORD), to * PUT_RECORD);
      orders[to++] = this.#orders[i]!;
    }
    return new PutSnapshot(records, orders);
  }

  /** Forgets record `i` (its object deleted in C); read what is needed of it first. */
  drop(i: number): void {
    const slot = this.#words[14 * i]!;
    if (slot === DROPPED) return;
    this.#at[slot] = 0;
    this.#words[14 * i] = DROPPED;
    this.#count--;
    this.#bytes -= this.#words[14 * i + 1]!;
    if (this.#count === 0) this.#length = 0;
    else if (this.#length > PACK_AT && this.#count * 2 < this.#length) this.#pack();
  }

  /**
   * Hands each record's index to `visit`, in put order, and forgets them
   * all (the peer let go of them: it closed).
   */
  take(visit: (i: number) => void): void {
    const length = this.#length;
    const words = this.#words;
    this.#length = 0;
    this.#count = 0;
    this.#bytes = 0;
    for (let i = 0; i < length; i++) {
      const slot = words[14 * i]!;
      if (slot === DROPPED) continue;
      this.#at[slot] = 0;
      visit(i);
    }
  }

  /** Moves the records not dropped to the front. */
  #pack(): void {
    const words = this.#words;
    let to = 0;
    for (let i = 0; i < this.#length; i++) {
      const slot = words[14 * i]!;
      if (slot === DROPPED) continue;
      if (to !== i) {
        this.#records.copyWithin(to * PUT_RECORD, i * PUT_RECORD, (i + 1) * PUT_RECORD);
        this.#orders[to] = this.#orders[i]!;
      }
      this.#at[slot] = ++to;
    }
    this.#length = to;
  }

  #growAt(slot: number): void {
    let length = this.#at.length * 2;
    while (length <= slot) length *= 2;
    const at = new Int32Array(length);
    at.set(this.#at);
    this.#at = at;
  }
}

/** Bytes decoded one to one into UTF-16 code units: the ids are ASCII. */
const latin1 = new TextDecoder("latin1");

/** A copy of the records of waiting objects, for a list (see `DeferredAdoption.snapshot`). */
class PutSnapshot implements WaitingList {
  readonly #records: Uint8Array;
  readonly #orders: Float64Array;

  constructor(records: Uint8Array, orders: Float64Array) {
    this.#records = records;
    this.#orders = orders;
  }

  get length(): number {
    return this.#orders.length;
  }

  order(i: number): number {
    return this.#orders[i]!;
  }

  infos(start: number, end: number): ObjectInfo[] {
    // Every id of the slice in one decode: a string each would cost most of a list.
    const text = latin1.decode(this.#records.subarray(start * PUT_RECORD, end * PUT_RECORD));
    const words = new Uint32Array(this.#records.buffer, start * PUT_RECORD, (end - start) * 14);
    const times = new Float64Array(this.#records.buffer, start * PUT_RECORD, (end - start) * 7);
    const infos = new Array<ObjectInfo>(end - start);
    for (let i = 0; i < end - start; i++) {
      const at = PUT_RECORD * i + 16;
      infos[i] = putInfo(text.substring(at, at + 36), words[14 * i + 1]!, times[7 * i + 1]!);
    }
    return infos;
  }
}
