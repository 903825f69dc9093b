import { check } from "./errno.ts";
import type { Native } from "./load.ts";

/** Options of {@link Mapping.map}. */
export interface MapOptions {
  /** Offset into the file, a multiple of the page size. Default 0. */
  readonly offset?: number;
  /** Map read-write; default read-only. */
  readonly writable?: boolean;
  /** Fault every page in now (`MAP_POPULATE`). Default false. */
  readonly populate?: boolean;
}

/**
 * How many spare buffers a mapping keeps for its next views: as many as a
 * client usually has gets of one object in flight on one connection.
 */
const MAX_SPARES = 16;
/** The most open views tracked in a list, not a set. */
const MAX_LISTED = 32;

/**
 * One shared memory mapping (`mmap`) and the JS views of it.
 *
 * Views are external `ArrayBuffer`s over the mapped memory. JS cannot unmap
 * them, so this class keeps every view it opened and detaches each one
 * (`buffer.transfer(0)`: it drops to length 0) before `munmap`: no view
 * outlives its mapping. Unmap only after I/O that uses a view has ended;
 * detaching does not stop a read or write already handed to the runtime.
 *
 * A closed view's memory is moved to a spare buffer (`buffer.transfer()`,
 * zero-copy) that the next view reuses: V8 counts each new external buffer
 * as memory allocated, and a new buffer of a large mapping per view would
 * have it collect garbage every few hundred views.
 *
 * @example
 * ```ts ignore
 * import { loadNative } from "./load.ts";
 * import { Mapping } from "./mapping.ts";
 * const native = loadNative()!;
 * using mapping = Mapping.map(native, fd, 4096, { writable: true });
 * const view = mapping.openView();
 * view[0] = 1;
 * mapping.closeView(view); // view.length === 0 from here on
 * ```
 */
export class Mapping implements Disposable {
  readonly #native: Native;
  #pointer: Deno.PointerValue;
  readonly #mappedLength: number;
  readonly #length: number;
  /**
   * The buffers of the open views: in a list while there are few, as a
   * scan of a few costs less than the hash a set gives each new buffer;
   * in a set once there are more than {@link MAX_LISTED}.
   */
  #views: ArrayBuffer[] = [];
  #manyViews: Set<ArrayBuffer> | undefined;
  /** Buffers over the mapping that no view uses, moved out of closed views. */
  readonly #spares: ArrayBuffer[] = [];
  #done = false;

  /**
   * Maps `length` bytes of `fd`.
   *
   * @param native The native library.
   * @param fd The file to map.
   * @param length Bytes to map; 0 gives a mapping with only empty views.
   * @param options Offset, protection and populate.
   * @returns The mapping.
   * @throws {CapacityExceededError} On ENOMEM.
   * @throws {PackiceError} When mmap fails otherwise, such as EPERM for a writable mapping of a
   * memfd sealed against writes.
   */
  static map(native: Native, fd: number, length: number, options: MapOptions = {}): Mapping {
    if (length === 0) return new Mapping(native, null, 0);
    const out = new BigUint64Array(1);
    check(
      native.symbols.pk_mmap(
        fd,
        BigInt(length),
        BigInt(options.offset ?? 0),
        options.writable ? 1 : 0,
        options.populate ? 1 : 0,
        out,
      ),
      "mmap",
    );
    return new Mapping(native, Deno.UnsafePointer.create(out[0]!), length);
  }

  /**
   * Takes ownership of memory mapped elsewhere, such as by `pk_memfd_prepare`.
   *
   * @param native The native library, to unmap with.
   * @param pointer The start of the mapping; null only when `mappedLength` is 0.
   * @param mappedLength The length that was mapped, which `close()` unmaps.
   * @param length The bytes views cover, at most `mappedLength`; by default all of it.
   */
  constructor(
    native: Native,
    pointer: Deno.PointerValue,
    mappedLength: number,
    length: number = mappedLength,
  ) {
    if (length > mappedLength) {
      throw new RangeError(`View length ${length} exceeds mapped length ${mappedLength}`);
    }
    this.#native = native;
    this.#pointer = pointer;
    this.#mappedLength = mappedLength;
    this.#length = length;
  }

  /** The bytes each view covers. */
  get length(): number {
    return this.#length;
  }

  /** The length that was mapped, which may exceed {@link Mapping.length}. */
  get mappedLength(): number {
    return this.#mappedLength;
  }

  /** The start of the mapping, or null once closed (and for an empty mapping). */
  get pointer(): Deno.PointerValue {
    return this.#pointer;
  }

  /** Whether {@link Mapping.close} has run. */
  get closed(): boolean {
    return this.#done;
  }

  /** How many views are open. */
  get openViews(): number {
    return this.#manyViews?.size ?? this.#views.length;
  }

  /**
   * Opens a zero-copy view of the mapped bytes; it stays valid until
   * {@link Mapping.closeView} or {@link Mapping.close}.
   *
   * @returns A new view.
   * @throws {RangeError} When the mapping is closed.
   */
  openView(): Uint8Array {
    if (this.#done) throw new RangeError("Cannot open a view: mapping is closed");
    const buffer = this.#spares.pop() ??
      (this.#pointer === null
        ? new ArrayBuffer(0)
        : Deno.UnsafePointerView.getArrayBuffer(this.#pointer, this.#length));
    if (this.#manyViews !== undefined) this.#manyViews.add(buffer);
    else if (this.#views.push(buffer) > MAX_LISTED) {
      this.#manyViews = new Set(this.#views);
      this.#views = [];
    }
    return new Uint8Array(buffer);
  }

  /**
   * Detaches a view from {@link Mapping.openView}: it and every array over
   * the same buffer drop to length 0. A view of another mapping, or one
   * already closed, is left alone.
   *
   * @param view The view.
   */
  closeView(view: Uint8Array): void {
    const buffer = view.buffer;
    if (!(buffer instanceof ArrayBuffer) || !this.#forget(buffer) || buffer.detached) return;
    if (this.#spares.length < MAX_SPARES) this.#spares.push(buffer.transfer());
    else buffer.transfer(0);
  }

  /** Stops tracking an open view's buffer; whether it was one. */
  #forget(buffer: ArrayBuffer): boolean {
    if (this.#manyViews !== undefined) return this.#manyViews.delete(buffer);
    const views = this.#views;
    const at = views.indexOf(buffer);
    if (at < 0) return false;
    const last = views.pop()!;
    if (at < views.length) views[at] = last;
    return true;
  }

  /** Detaches every open view and keeps the mapping, for new views. */
  closeViews(): void {
    for (const buffer of this.#manyViews ?? this.#views) if (!buffer.detached) buffer.transfer(0);
    this.#views = [];
    this.#manyViews = undefined;
  }

  /** Detaches every open view, then unmaps. Idempotent. */
  close(): void {
    const range = this.detach();
    if (range) check(this.#native.symbols.pk_munmap(range.pointer, BigInt(range.length)), "munmap");
  }

  /**
   * Detaches every open view and hands the memory over without unmapping it,
   * for a caller that unmaps it elsewhere, such as on another thread.
   *
   * @returns The range to munmap, or undefined when there is none (closed, or empty).
   */
  detach(): { pointer: NonNullable<Deno.PointerValue>; length: number } | undefined {
    if (this.#done) return undefined;
    this.#done = true;
    this.closeViews();
    for (const spare of this.#spares) spare.transfer(0);
    this.#spares.length = 0;
    const pointer = this.#pointer;
    this.#pointer = null;
    return pointer === null ? undefined : { pointer, length: this.#mappedLength };
  }

  /** Same as {@link Mapping.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
