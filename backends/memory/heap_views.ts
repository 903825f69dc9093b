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
