import type { BlobStore } from "../../../core/blob_store.ts";
import {
  AlreadySealedError,
  CapacityExceededError,
  ClosedError,
  InvalidArgumentError,
  PackiceError,
  WrongAccessError,
} from "../../../core/errors.ts";
import type { ObjectInfo } from "../../../core/object.ts";
import {
  createMemoryBlobStore,
  HeapBlob,
  HeapBlobStore,
  MemfdBlob,
  MemfdBlobStore,
} from "../../../backends/memory/mod.ts";
import { FdCloser } from "../../../backends/memory/closer.ts";
import { LARGE_BLOB, MemfdPool, sizeClass } from "../../../native/memfd_pool.ts";
import { PooledMemfdBlob } from "../../../backends/memory/pooled_blob.ts";
import { Tasks } from "../../../native/tasks.ts";
import { Errno, SystemError } from "../../../native/errno.ts";
import { Linux } from "../../../native/ffi.ts";
import { loadNative } from "../../../native/load.ts";
import type { Native } from "../../../native/load.ts";
import { Mapping } from "../../../native/mapping.ts";
import { openNative } from "../../helpers/native.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../../helpers/assert.ts";
import { eventually } from "../../helpers/eventually.ts";

const native = openNative();
const MiB = 1024 * 1024;

function info(id: string, blobSizes: number[]): ObjectInfo {
  const size = blobSizes.reduce((sum, blob) => sum + blob, 0);
  return { id, state: "CREATING", size, blobSizes, meta: {}, createdAt: 0 };
}

const stores: { name: string; ignore: boolean; make: (capacity: number) => BlobStore }[] = [
  { name: "HeapBlobStore", ignore: false, make: (capacity) => new HeapBlobStore({ capacity }) },
  {
    name: "MemfdBlobStore",
    ignore: native === undefined,
    make: (capacity) => new MemfdBlobStore(native!, { capacity }),
  },
];

for (const { name, ignore, make } of stores) {
  const test = (what: string, fn: (store: BlobStore) => Promise<void>) =>
    Deno.test({
      name: `${name}: ${what}`,
      ignore,
      async fn() {
        const store = make(64 * MiB);
        try {
          await fn(store);
        } finally {
          await store.close();
        }
      },
    });

  test("allocate(), write(), seal() and read() round-trip blobs of every size", async (store) => {
    const sizes = [0, 1, 4096, 100_000, 3 * MiB];
    const object = info("round-trip", sizes);
    const stored = await store.allocate(object);
    assertEquals(store.used, object.size);
    assertEquals(stored.blobs.map((blob) => blob.size), sizes);
    const contents = sizes.map((size) => new Uint8Array(size).map((_, i) => (i * 31 + size) & 255));
    for (const [i, blob] of stored.blobs.entries()) await blob.write(0, contents[i]!);
    await store.seal(stored, object);
    for (const [i, blob] of stored.blobs.entries()) {
      assertEquals(await blob.read(0, blob.size), contents[i]);
      const view = blob.openView()!;
      assertEquals(view, contents[i]);
      blob.closeView(view);
    }
    const last = stored.blobs.at(-1)!;
    assertEquals(await last.read(MiB, 5), contents.at(-1)!.slice(MiB, MiB + 5));
    await store.free(stored);
    assertEquals(store.used, 0);
  });

  test("writes through a view land in the blob, at any offset", async (store) => {
    const object = info("view", [10, 2 * MiB]);
    const stored = await store.allocate(object);
    for (const blob of stored.blobs) {
      const view = blob.openView()!;
      view.set([1, 2, 3], 5);
      blob.closeView(view);
      await blob.write(8, new Uint8Array([4, 5]));
      assertEquals(await blob.read(4, 6), new Uint8Array([0, 1, 2, 3, 4, 5]));
    }
    await store.seal(stored, object);
    for (const blob of stored.blobs) {
      assertEquals(await blob.read(4, 6), new Uint8Array([0, 1, 2, 3, 4, 5]));
    }
    await store.free(stored);
  });

  test("seal() detaches writable views and free() detaches every view", async (store) => {
    const object = info("views", [4096, 2 * MiB]);
    const stored = await store.allocate(object);
    const writers = stored.blobs.map((blob) => blob.openView()!);
    assertEquals(writers.map((view) => view.length), [4096, 2 * MiB]);
    await store.seal(stored, object);
    assertEquals(writers.map((view) => view.length), [0, 0]);
    const readers = stored.blobs.map((blob) => blob.openView()!);
    assertEquals(readers.map((view) => view.length), [4096, 2 * MiB]);
    await store.free(stored);
    assertEquals(readers.map((view) => view.length), [0, 0]);
    await store.free(stored);
    for (const blob of stored.blobs) {
      assertThrows(() => blob.openView(), ClosedError);
      await assertRejects(() => blob.read(0, 1), ClosedError);
    }
  });

  test("closeView() detaches only that view", async (store) => {
    const object = info("close-view", [100, 2 * MiB]);
    const stored = await store.allocate(object);
    for (const blob of stored.blobs) {
      const [a, b] = [blob.openView()!, blob.openView()!];
      blob.closeView(a);
      assertEquals([a.length, b.length], [0, blob.size]);
      b[1] = 7;
      assertEquals((await blob.read(1, 1))[0], 7);
    }
    await store.free(stored);
  });

  test("read() and write() refuse ranges outside the blob", async (store) => {
    const object = info("bounds", [100, 2 * MiB]);
    const stored = await store.allocate(object);
    for (const blob of stored.blobs) {
      await assertRejects(() => blob.write(blob.size - 2, new Uint8Array(3)), InvalidArgumentError);
      await assertRejects(() => blob.write(-1, new Uint8Array(1)), InvalidArgumentError);
      await assertRejects(() => blob.read(blob.size, 1), InvalidArgumentError);
      await assertRejects(() => blob.read(0.5, 1), InvalidArgumentError);
      await blob.write(blob.size - 3, new Uint8Array(3));
      assertEquals((await blob.read(blob.size, 0)).length, 0);
    }
    await store.free(stored);
  });

  test("writes and a second seal after seal() are refused", async (store) => {
    const object = info("sealed", [16, 2 * MiB]);
    const stored = await store.allocate(object);
    await store.seal(stored, object);
    for (const blob of stored.blobs) {
      await assertRejects(() => blob.write(0, new Uint8Array(1)), AlreadySealedError);
    }
    await assertRejects(() => store.seal(stored, object), AlreadySealedError);
    await store.free(stored);
  });

  test("allocate() beyond capacity says how much was asked and how much is free", async (store) => {
    const first = await store.allocate(info("first", [40 * MiB]));
    const error = await assertRejects(
      () => store.allocate(info("second", [20 * MiB, 5 * MiB])),
      CapacityExceededError,
    );
    assert(error.message.includes(`${25 * MiB} bytes`), error.message);
    assert(error.message.includes(`${24 * MiB} of ${64 * MiB} bytes free`), error.message);
    assertEquals(store.used, 40 * MiB);
    await store.free(first);
    const second = await store.allocate(info("second", [20 * MiB, 5 * MiB]));
    assertEquals(store.used, 25 * MiB);
    await store.free(second);
  });

  test("allocate() refuses invalid sizes, and everything after close()", async (store) => {
    await assertRejects(() => store.allocate(info("bad", [-1])), InvalidArgumentError);
    await assertRejects(() => store.allocate(info("bad", [1.5])), InvalidArgumentError);
    const stored = await store.allocate(info("open", [10]));
    assertEquals(await store.recover(), []);
    const view = stored.blobs[0]!.openView()!;
    await store.close();
    assertEquals(view.length, 0);
    assertEquals(store.used, 0);
    await assertRejects(() => store.allocate(info("late", [1])), ClosedError);
    await store.close();
  });
}

const memfd = { ignore: native === undefined };

const pk = native?.symbols as Native["symbols"];

/** Asserts that writing a sealed memfd fails every way a process could try. */
function assertWriteSealed(fd: number, size: number): void {
  const refused = assertThrows(
    () => Mapping.map(native!, fd, size, { writable: true }),
    PackiceError,
  );
  assert(refused.cause instanceof SystemError);
  assertEquals(refused.cause.errno, Errno.EPERM);
  assertEquals(Number(pk.pk_pwrite_all(fd, new Uint8Array(1), 1n, 0n)), -Errno.EPERM);
  assertEquals(pk.pk_ftruncate(fd, 0n), -Errno.EPERM);
}

Deno.test({
  name: "MemfdBlobStore: a sealed memfd refuses new writable mappings, pwrite and truncation",
  ...memfd,
  async fn() {
    const store = new MemfdBlobStore(native!, { capacity: 64 * MiB });
    const object = info("sealed-fd", [4096, 4 * MiB]);
    const stored = await store.allocate(object);
    const blobs = stored.blobs as MemfdBlob[];
    for (const blob of blobs) assert(blob instanceof MemfdBlob && !blob.sealed);
    // The size is sealed before the fd is handed out, the bytes are not.
    assertEquals(pk.pk_ftruncate(blobs[0]!.fd, 0n), -Errno.EPERM);
    assertEquals(Number(pk.pk_pwrite_all(blobs[0]!.fd, new Uint8Array([9]), 1n, 0n)), 1);
    await store.seal(stored, object);
    const full = Linux.F_SEAL_WRITE | Linux.F_SEAL_GROW | Linux.F_SEAL_SHRINK | Linux.F_SEAL_SEAL;
    for (const blob of blobs) {
      assert(blob.sealed);
      // Handing out the fd of the large blob, which stayed private until
      // now, seals it against writes at once, and fully once its writable
      // mapping is unmapped on another thread.
      assertWriteSealed(blob.fd, blob.size);
      await blob.settled();
      assertEquals(blob.seals & full, full);
      using reader = Mapping.map(native!, blob.fd, blob.size);
      assertEquals(reader.openView()[0], blob.size === 4096 ? 9 : 0);
    }
    await store.close();
    assertThrows(() => blobs[0]!.fd, ClosedError);
  },
});

Deno.test({
  name: "MemfdBlobStore: seal is refused while another process maps the blob writable",
  ...memfd,
  async fn() {
    const store = new MemfdBlobStore(native!, { capacity: 64 * MiB });
    for (const size of [4096, 2 * MiB]) {
      const object = info(`held-${size}`, [size]);
      const stored = await store.allocate(object);
      const blob = stored.blobs[0] as MemfdBlob;
      // Stands for a client that mapped the blob while creating and did not unmap.
      const other = Mapping.map(native!, blob.fd, size, { writable: true });
      await assertRejects(() => store.seal(stored, object), WrongAccessError);
      assertEquals(blob.sealed, false);
      assertEquals(blob.seals & Linux.F_SEAL_WRITE, 0);
      other.close();
      await store.seal(stored, object);
      assert(blob.seals & Linux.F_SEAL_WRITE);
      assertWriteSealed(blob.fd, size);
      await store.free(stored);
    }
    await store.close();
  },
});

Deno.test({
  name: "MemfdBlobStore: the pool fills in the background within capacity and gives room back",
  ...memfd,
  async fn() {
    const capacity = 32 * MiB;
    const store = new MemfdBlobStore(native!, { capacity, poolBytes: 16 * MiB });
    for (let i = 0; i < 20; i++) {
      const object = info(`large-${i}`, [MiB]);
      const stored = await store.allocate(object);
      await store.seal(stored, object);
      await store.free(stored);
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    await eventually(() => store.pooled > 0, "a blob is pooled", { interval: 5 });
    assert(store.pooled <= 16 * MiB);
    // Objects take the pool's room when they need it, also from memfds still being made.
    const whole = await store.allocate(info("whole", [capacity]));
    await eventually(() => store.pooled === 0, "the pool is empty", { interval: 5 });
    await store.free(whole);
    await store.close();
  },
});

Deno.test({
  name: "MemfdBlobStore: large blobs of every size class come back with their exact size",
  ...memfd,
  async fn() {
    const store = new MemfdBlobStore(native!, { capacity: 256 * MiB, poolBytes: 64 * MiB });
    for (const size of [LARGE_BLOB + 1, 3 * MiB - 5, 3 * MiB, 9 * MiB + 4096]) {
      for (let round = 0; round < 3; round++) {
        const object = info(`large-${size}`, [size]);
        const stored = await store.allocate(object);
        const blob = stored.blobs[0] as MemfdBlob;
        assertEquals(Number(pk.pk_fstat_size(blob.fd)), size);
        await blob.write(size - 1, new Uint8Array([round + 1]));
        await store.seal(stored, object);
        assertEquals(await blob.read(size - 1, 1), new Uint8Array([round + 1]));
        await store.free(stored);
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    }
    assertEquals(store.used, 0);
    await store.close();
  },
});

Deno.test({
  name: "MemfdBlobStore: a blob handed out after seal, with views open, is unwritable",
  ...memfd,
  async fn() {
    const store = new MemfdBlobStore(native!, { capacity: 64 * MiB });
    const full = Linux.F_SEAL_WRITE | Linux.F_SEAL_GROW | Linux.F_SEAL_SHRINK | Linux.F_SEAL_SEAL;
    const future = Linux.F_SEAL_FUTURE_WRITE | Linux.F_SEAL_SEAL | Linux.F_SEAL_SHRINK;
    // A small blob's memfd is a sealed copy; a large one keeps the mapping the views use.
    for (const [size, seals] of [[4096, full], [2 * MiB, future]] as const) {
      const object = info(`late-${size}`, [size]);
      const stored = await store.allocate(object);
      const blob = stored.blobs[0] as MemfdBlob;
      await blob.write(0, new Uint8Array([5]));
      await store.seal(stored, object);
      const view = blob.openView();
      assertEquals(blob.seals & seals, seals);
      assertWriteSealed(blob.fd, size);
      assertEquals([view[0], (await blob.read(0, 1))[0]], [5, 5]);
      await store.free(stored);
      assertEquals(view.length, 0);
    }
    await store.close();
  },
});

Deno.test({
  name: "MemfdBlobStore: a freed large blob no other process held is zeroed and reused",
  ...memfd,
  async fn() {
    let recycled = 0;
    let closed = 0;
    const counting: Native = {
      path: native!.path,
      symbols: {
        ...native!.symbols,
        pk_recycle_nb: (...args: Parameters<Native["symbols"]["pk_recycle_nb"]>) => {
          recycled++;
          return native!.symbols.pk_recycle_nb(...args);
        },
        pk_unmap_close_nb: (...args: Parameters<Native["symbols"]["pk_unmap_close_nb"]>) => {
          closed++;
          return native!.symbols.pk_unmap_close_nb(...args);
        },
      },
    };
    const store = new MemfdBlobStore(counting, { capacity: 64 * MiB, poolBytes: 32 * MiB });
    const size = 3 * MiB - 100;
    const full = new Uint8Array(size).fill(0xab);
    const zeroed = (bytes: Uint8Array) => bytes.every((byte) => byte === 0);
    for (let round = 0; round < 8; round++) {
      const object = info(`reused-${round}`, [size]);
      const stored = await store.allocate(object);
      const blob = stored.blobs[0]!;
      if (round % 2 === 0) assert(zeroed(await blob.read(0, size)), `round ${round}`);
      await blob.write(0, full);
      await store.seal(stored, object);
      assertEquals(await blob.read(0, size), full);
      await store.free(stored);
      await eventually(() => store.pooled > 0, "a blob is pooled", { interval: 5 });
    }
    assert(recycled > 0, "nothing was recycled");
    // A blob whose fd went to another process is never reused.
    const shared = info("shared", [size]);
    const stored = await store.allocate(shared);
    assert((stored.blobs[0] as MemfdBlob).fd >= 0);
    const before = closed;
    await store.free(stored);
    assertEquals(closed, before + 1);
    await store.close();
  },
});

Deno.test({
  name: "MemfdBlobStore: a small blob gets its memfd when its fd is first asked for",
  ...memfd,
  async fn() {
    const store = new MemfdBlobStore(native!, { capacity: MiB });
    const object = info("small", [4096]);
    const stored = await store.allocate(object);
    const blob = stored.blobs[0] as MemfdBlob;
    await blob.write(0, new Uint8Array([1, 2, 3]));
    const view = blob.openView();
    // While creating, the memfd takes over and earlier views are detached.
    const fd = blob.fd;
    assertEquals(view.length, 0);
    const read = new Uint8Array(3);
    assertEquals(Number(pk.pk_pread_all(fd, read, 3n, 0n)), 3);
    assertEquals(read, new Uint8Array([1, 2, 3]));
    assertEquals(Number(pk.pk_pwrite_all(fd, new Uint8Array([9]), 1n, 0n)), 1);
    assertEquals(await blob.read(0, 3), new Uint8Array([9, 2, 3]));
    await store.seal(stored, object);
    assertWriteSealed(fd, 4096);
    await store.close();
  },
});

Deno.test({
  name: "MemfdBlobStore: small objects use no file descriptor until shared",
  ...memfd,
  async fn() {
    // More objects than this process may hold open files (20000 here).
    const count = 30_000;
    const store = new MemfdBlobStore(native!, { capacity: count });
    const objects = [];
    for (let i = 0; i < count; i++) {
      const object = info(`tiny-${i}`, [1]);
      const stored = await store.allocate(object);
      await stored.blobs[0]!.write(0, new Uint8Array([i & 255]));
      await store.seal(stored, object);
      objects.push(stored);
    }
    assertEquals(await objects[12_345]!.blobs[0]!.read(0, 1), new Uint8Array([12_345 & 255]));
    await store.close();
  },
});

Deno.test({
  name: "MemfdBlob: a freed object's data left in a recycled memfd is never read",
  ...memfd,
  async fn() {
    const size = 2 * MiB;
    const tasks = new Tasks();
    const context = {
      native: native!,
      tasks,
      closer: new FdCloser(native!, tasks),
      pool: new MemfdPool(native!, 0, () => 0, tasks),
    };
    const zeroed = (bytes: Uint8Array) => bytes.every((byte) => byte === 0);
    const cases: [string, (blob: MemfdBlob) => Promise<Uint8Array>][] = [
      ["read()", (blob) => blob.read(0, size)],
      ["openView()", (blob) => Promise.resolve(blob.openView().slice())],
      ["seal()", async (blob) => {
        blob.seal();
        return await blob.read(0, size);
      }],
      ["fd", (blob) => {
        const bytes = new Uint8Array(size);
        pk.pk_pread_all(blob.fd, bytes, BigInt(size), 0n);
        return Promise.resolve(bytes);
      }],
    ];
    for (const [what, look] of cases) {
      // A memfd full of someone else's bytes, as the pool hands out a recycled one.
      const fd = new Int32Array(1);
      const pointer = new BigUint64Array(1);
      assertEquals(pk.pk_memfd_prepare(BigInt(size), 1, fd, pointer), 0);
      const mapping = new Mapping(native!, Deno.UnsafePointer.create(pointer[0]!), size);
      mapping.openView().fill(0xee);
      mapping.closeViews();
      const blob = new PooledMemfdBlob(context, size, fd[0]!, mapping, size);
      // Writes out of order keep what they wrote and zero the gaps.
      await blob.write(MiB, new Uint8Array([1, 2]));
      await blob.write(10, new Uint8Array([3]));
      const bytes = await look(blob);
      assertEquals([bytes[10], bytes[MiB], bytes[MiB + 1]], [3, 1, 2], what);
      bytes[10] = bytes[MiB] = bytes[MiB + 1] = 0;
      assert(zeroed(bytes), `${what} saw stale bytes`);
      await blob.free();
    }
    context.closer.flush();
    await tasks.drain();
  },
});

Deno.test({
  name: "MemfdBlobStore: writing through a view of a sealed large blob kills the writer",
  ...memfd,
  async fn() {
    const store = new URL("../../../backends/memory/memfd_store.ts", import.meta.url);
    const load = new URL("../../../native/load.ts", import.meta.url);
    const code = `
      import { MemfdBlobStore } from "${store}";
      import { loadNative } from "${load}";
      const store = new MemfdBlobStore(loadNative(), { capacity: 1 << 24 });
      const info = { id: "x", state: "CREATING", size: 1 << 21, blobSizes: [1 << 21], meta: {}, createdAt: 0 };
      const stored = await store.allocate(info);
      await store.seal(stored, info);
      const view = stored.blobs[0].openView();
      console.log("read", view[0]);
      view[0] = 1;
      console.log("wrote");
    `;
    const { signal, stdout } = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--ext=ts", code],
      env: { PACKICE_NATIVE_LIB: native!.path },
      stdout: "piped",
      stderr: "null",
    }).output();
    assertEquals([signal, new TextDecoder().decode(stdout)], ["SIGSEGV", "read 0\n"]);
  },
});

Deno.test("sizeClass() rounds up to a page, then to an eighth of a power of two", () => {
  assertEquals(sizeClass(1), 4096);
  assertEquals(sizeClass(8 * 4096), 8 * 4096);
  assertEquals(sizeClass(8 * 4096 + 1), 9 * 4096);
  assertEquals(sizeClass(64 * MiB), 64 * MiB);
  assertEquals(sizeClass(64 * MiB + 1), 72 * MiB);
  for (let size = 1; size < 512 * MiB; size = Math.ceil(size * 1.37)) {
    const capacity = sizeClass(size);
    assert(capacity >= size && capacity % 4096 === 0);
    assert(capacity <= Math.max(size * 1.125, 4096) + 4096, `${size} -> ${capacity}`);
  }
});

Deno.test("createMemoryBlobStore() picks memfds when the native library loads, else the heap", async () => {
  const store = createMemoryBlobStore({ capacity: MiB });
  assert(store instanceof (loadNative() ? MemfdBlobStore : HeapBlobStore));
  const stored = await store.allocate(info("any", [3]));
  assert(stored.blobs[0] instanceof (loadNative() ? MemfdBlob : HeapBlob));
  await store.close();
  assertThrows(() => createMemoryBlobStore({ capacity: -1 }), InvalidArgumentError);
});

Deno.test({
  name: "MemfdBlobStore: allocateFilled keeps a whole small buffer, and copies anything else",
  ...memfd,
  async fn() {
    const store = new MemfdBlobStore(native!, { capacity: 64 * MiB });
    const given = new Uint8Array(4096).fill(7);
    const object = info("filled", [4096]);
    const stored = await store.allocateFilled(object, given);
    // Taken over: the caller's array is detached, the blob has the bytes.
    assertEquals(given.length, 0);
    assertEquals(store.used, 4096);
    const blob = stored.blobs[0] as MemfdBlob;
    assertEquals(await blob.read(0, 4096), new Uint8Array(4096).fill(7));
    await store.seal(stored, object);
    using reader = Mapping.map(native!, blob.fd, blob.size);
    assertEquals(reader.openView()[4095], 7);

    // Part of a larger buffer: copied, the caller's bytes stay.
    const larger = new Uint8Array(8192).fill(3);
    const part = larger.subarray(4096);
    const copied = await store.allocateFilled(info("copied", [4096]), part);
    assertEquals(part.length, 4096);
    assertEquals(await copied.blobs[0]!.read(0, 4096), new Uint8Array(4096).fill(3));
    await assertRejects(
      () => store.allocateFilled(info("wrong-size", [100]), new Uint8Array(4096)),
      InvalidArgumentError,
    );
    assertEquals(store.used, 8192);
    await store.close();
  },
});
