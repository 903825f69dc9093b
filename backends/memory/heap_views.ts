/** An `ArrayBuffer` where the runtime has immutable ones. */
interface Freezable extends ArrayBuffer {
  transferToImmutable(): ArrayBuffer;
}

/** Whether this runtime has immutable `ArrayBuffer`s: Deno 2.9 only with `--v8-flags=--js-immutable-arraybuffer`. */
const canFreeze = typeof (ArrayBuffer.prototype as Partial<Freezable>).transferToImmutable ===
  "function";

/**
 * Views of an `ArrayBuffer` that can be detached one by one: each is an
 * external buffer over the same memory (which needs FFI permission), so
 * detaching one leaves the bytes and the other views alone. The owner must
 * detach them all before the memory goes (the buffer is transferred or
 * dropped), as they do not keep it alive.
 */
export class HeapViews {
  /** Made for the first view: most blobs never open one, and a set each would outlive them. */
  #views: Set<ArrayBuffer> | undefined;

  /** How many views are open. */
  get size(): number {
    return this.#views?.size ?? 0;
  }

  /**
   * Opens a view of the whole of `buffer`.
   *
   * @param buffer The memory; the caller keeps it alive until {@link HeapViews.closeAll}.
   * @returns A view that {@link HeapViews.close} detaches.
   */
  open(buffer: ArrayBuffer): Uint8Array {
    const pointer = Deno.UnsafePointer.of(buffer);
    const alias = pointer === null
      ? new ArrayBuffer(0)
      : Deno.UnsafePointerView.getArrayBuffer(pointer, buffer.byteLength);
    (this.#views ??= new Set()).add(alias);
    return new Uint8Array(alias);
  }

  /**
   * Opens a view of the whole of `buffer` itself, for memory that nothing
   * else holds (a copy made for this view): the view keeps it alive, where
   * an alias from {@link HeapViews.open} would not, and
   * {@link HeapViews.close} detaches it.
   *
   * @param buffer The memory, the view's from now on.
   * @returns A view that {@link HeapViews.close} detaches.
   */
  adopt(buffer: ArrayBuffer): Uint8Array {
    (this.#views ??= new Set()).add(buffer);
    return new Uint8Array(buffer);
  }

  /**
   * Opens a view of a copy of the whole of `buffer`, for a reader of sealed
   * bytes: nothing written into it reaches `buffer`. Where the runtime has
   * immutable `ArrayBuffer`s (V8's `--js-immutable-arraybuffer`), the copy is
   * one, and a write into it throws a `TypeError`; {@link HeapViews.close}
   * cannot detach such a copy, which the garbage collector frees instead.
   *
   * @param buffer The sealed bytes.
   * @returns A view that {@link HeapViews.close} detaches, where it can.
   */
  openCopy(buffer: ArrayBuffer): Uint8Array {
    const copy = buffer.slice(0);
    if (canFreeze) return new Uint8Array((copy as Freezable).transferToImmutable());
    (this.#views ??= new Set()).add(copy);
    return new Uint8Array(copy);
  }

  /**
   * Detaches a view from {@link HeapViews.open}: it drops to length 0.
   *
   * @param view The view.
   * @returns Whether it was one of these views.
   */
  close(view: Uint8Array): boolean {
    const buffer = view.buffer;
    if (!(buffer instanceof ArrayBuffer) || !this.#views?.delete(buffer)) return false;
    buffer.transfer(0);
    return true;
  }

  /** Detaches every open view. */
  closeAll(): void {
    if (this.#views === undefined) return;
    for (const buffer of this.#views) buffer.transfer(0);
    this.#views.clear();
  }
}
