/** A blob as one lease sees it: reads and writes bounded by the lease's access and life. */
import type { Blob } from "./blob.ts";
import { checkRange } from "./range.ts";
import { InvalidArgumentError, UnknownLeaseError } from "./errors.ts";
import type { Holding } from "./holding.ts";
import { checkWrite } from "./lifecycle.ts";
import type { LeaseRecord } from "./lease_store.ts";
import { shown } from "./shown.ts";

/** A blob as one lease sees it: bounded by the lease's access and life. */
export class LeasedBlob implements Blob {
  readonly #blob: Blob;
  readonly #lease: LeaseRecord;
  readonly #holding: Holding;
  /** The peer's live leases, by id: this lease is live while it maps to {@link LeasedBlob.#holding}. */
  readonly #held: ReadonlyMap<string, Holding>;

  constructor(
    blob: Blob,
    lease: LeaseRecord,
    holding: Holding,
    held: ReadonlyMap<string, Holding>,
  ) {
    this.#blob = blob;
    this.#lease = lease;
    this.#holding = holding;
    this.#held = held;
  }

  get size(): number {
    return this.#blob.size;
  }

  /** The backend blob's fd, while the lease lasts; see {@link Blob.fd}. */
  get fd(): number | undefined {
    this.#checkLive();
    return this.#blob.fd;
  }

  /** The backend blob's memfd for this process only, while the lease lasts; see {@link Blob.localFd}. */
  get localFd(): number | undefined {
    this.#checkLive();
    return this.#blob.localFd;
  }

  openView(): Uint8Array | undefined {
    this.#checkLive();
    const view = this.#blob.openView();
    if (view === undefined) return view;
    // Most leases open no view here (a transport hands out the fd): the list starts with the first.
    const views = this.#holding.views ??= new Map();
    let opened = views.get(this.#lease.id);
    if (opened === undefined) views.set(this.#lease.id, opened = []);
    opened.push([this.#blob, view]);
    return view;
  }

  closeView(view: Uint8Array): void {
    const opened = this.#holding.views?.get(this.#lease.id);
    const index = opened?.findIndex(([, open]) => open === view) ?? -1;
    if (index < 0) return;
    opened!.splice(index, 1);
    this.#blob.closeView(view);
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    this.#checkLive();
    checkRange("read", offset, length, this.#blob.size, this.#lease.objectId);
    return this.#blob.read(offset, length);
  }

  write(offset: number, bytes: Uint8Array): Promise<void> {
    this.#checkLive();
    if (!(bytes instanceof Uint8Array)) {
      throw new InvalidArgumentError(`Invalid bytes: expected a Uint8Array, got ${shown(bytes)}`);
    }
    checkWrite(this.#lease, this.#holding.sealed || this.#holding.sealing !== undefined);
    checkRange("write", offset, bytes.length, this.#blob.size, this.#lease.objectId);
    return this.#blob.write(offset, bytes);
  }

  #checkLive(): void {
    if (this.#held.get(this.#lease.id) !== this.#holding) {
      throw new UnknownLeaseError(`Lease ${this.#lease.id} on ${this.#lease.objectId} has ended`);
    }
  }
}
