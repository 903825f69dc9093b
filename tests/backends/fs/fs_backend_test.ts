import { join } from "node:path";
import {
  AlreadyExistsError,
  AlreadySealedError,
  CapacityExceededError,
  ClosedError,
  InvalidArgumentError,
  NotFoundError,
} from "../../../core/errors.ts";
import type { ObjectInfo } from "../../../core/object.ts";
import { FileBlobStore } from "../../../backends/fs/mod.ts";
import { FileBlob } from "../../../backends/fs/file_blob.ts";
import { Layout } from "../../../backends/fs/layout.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../../helpers/assert.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A temporary data directory, removed on dispose. */
async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "packice_fs_test_" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

function creating(id: string, blobSizes: number[]): ObjectInfo {
  const size = blobSizes.reduce((sum, blobSize) => sum + blobSize, 0);
  return { id, state: "CREATING", size, blobSizes, meta: { kind: "test" }, createdAt: 1000 };
}

function sealed(info: ObjectInfo): ObjectInfo {
  return { ...info, state: "SEALED", sealedAt: 2000 };
}

/** Allocates, writes `contents` one per blob, and seals. */
async function put(store: FileBlobStore, id: string, contents: string[]) {
  const info = creating(id, contents.map((text) => encoder.encode(text).length));
  const stored = await store.allocate(info);
  await Promise.all(
    contents.map((text, index) => stored.blobs[index]!.write(0, encoder.encode(text))),
  );
  await store.seal(stored, sealed(info));
  return stored;
}

async function names(dir: string): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of Deno.readDir(dir)) found.push(entry.name);
  return found.sort();
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

Deno.test("FileBlobStore round-trips bytes through allocate, write, seal and read", async () => {
  await using dir = await tempDir();
  await using store = new FileBlobStore({ dir: dir.path, capacity: 1024 });
  const info = creating("round trip", [5, 0, 6]);
  const stored = await store.allocate(info);
  assertEquals(store.used, 11);
  assertEquals(stored.blobs.map((blob) => blob.size), [5, 0, 6]);
  assertEquals((await names(join(dir.path, "tmp"))).length, 1);
  assertEquals(await stored.blobs[0]!.read(0, 5), new Uint8Array(5), "files start zeroed");

  await stored.blobs[0]!.write(0, encoder.encode("hello"));
  await Promise.all([
    stored.blobs[2]!.write(3, encoder.encode("rld")),
    stored.blobs[2]!.write(0, encoder.encode(" wo")),
  ]);
  assertEquals(decoder.decode(await stored.blobs[2]!.read(0, 6)), " world", "read before seal");
  await store.seal(stored, sealed(info));

  const objectDir = join(dir.path, "objects", "round trip");
  assertEquals(await names(objectDir), ["0", "1", "2", "meta.json"]);
  assertEquals(await names(join(dir.path, "tmp")), []);
  assertEquals(JSON.parse(await Deno.readTextFile(join(objectDir, "meta.json"))), sealed(info));
  assertEquals(decoder.decode(await stored.blobs[0]!.read(0, 5)), "hello");
  assertEquals(decoder.decode(await stored.blobs[0]!.read(1, 3)), "ell");
  assertEquals(await stored.blobs[1]!.read(0, 0), new Uint8Array(0));
  assertEquals(decoder.decode(await stored.blobs[2]!.read(0, 6)), " world");
  assertEquals(stored.blobs[0]!.openView(), undefined);
  assertEquals(store.used, 11);
});

Deno.test("FileBlobStore refuses reads and writes outside a blob, and writes after seal", async () => {
  await using dir = await tempDir();
  await using store = new FileBlobStore({ dir: dir.path, capacity: 1024 });
  const info = creating("bounds", [4]);
  const stored = await store.allocate(info);
  const blob = stored.blobs[0]!;

  await assertRejects(
    () => blob.write(2, encoder.encode("abc")),
    InvalidArgumentError,
    "Cannot write 3 bytes at offset 2 of blob 0 of bounds: it holds 4 bytes",
  );
  await assertRejects(() => blob.write(-1, encoder.encode("a")), InvalidArgumentError);
  await assertRejects(() => blob.write(0.5, encoder.encode("a")), InvalidArgumentError);
  await assertRejects(
    () => blob.read(4, 1),
    InvalidArgumentError,
    "Cannot read 1 bytes at offset 4",
  );
  await assertRejects(() => blob.read(0, -1), InvalidArgumentError);
  await blob.write(4, new Uint8Array(0));

  await blob.write(0, encoder.encode("data"));
  const sealing = store.seal(stored, sealed(info));
  await assertRejects(() => blob.write(0, encoder.encode("x")), AlreadySealedError, "sealed");
  await sealing;
  await assertRejects(
    () => blob.write(0, encoder.encode("x")),
    AlreadySealedError,
    "Cannot write blob 0 of bounds: sealed",
  );
  await assertRejects(() => store.seal(stored, sealed(info)), AlreadySealedError);
  await assertRejects(() => blob.read(2, 3), InvalidArgumentError);
  assertEquals(decoder.decode(await blob.read(0, 4)), "data");

  await store.free(stored);
  await assertRejects(() => blob.read(0, 1), ClosedError, "Cannot read blob 0 of bounds: freed");
  await assertRejects(() => store.seal(stored, sealed(info)), NotFoundError);
});

Deno.test("FileBlobStore.seal() refuses info of another object and keeps the object writable", async () => {
  await using dir = await tempDir();
  await using store = new FileBlobStore({ dir: dir.path, capacity: 1024 });
  const info = creating("mismatch", [2]);
  const stored = await store.allocate(info);
  await assertRejects(
    () => store.seal(stored, sealed(creating("mismatch", [3]))),
    InvalidArgumentError,
    "blob sizes [3], not [2]",
  );
  await stored.blobs[0]!.write(0, encoder.encode("ok"));
  await store.seal(stored, sealed(info));
  assertEquals(decoder.decode(await stored.blobs[0]!.read(0, 2)), "ok");
});

Deno.test("FileBlobStore.allocate() refuses bytes beyond the capacity", async () => {
  await using dir = await tempDir();
  await using store = new FileBlobStore({ dir: dir.path, capacity: 100 });
  const first = await store.allocate(creating("first", [60]));
  await assertRejects(
    () => store.allocate(creating("second", [30, 20])),
    CapacityExceededError,
    "Cannot allocate 50 bytes for second: 40 of 100 bytes free",
  );
  assertEquals(store.used, 60);
  assertEquals((await names(join(dir.path, "tmp"))).length, 1);

  await store.free(first);
  assertEquals(store.used, 0);
  const second = await store.allocate(creating("second", [30, 20]));
  assertEquals(store.used, 50);
  await store.free(second);
});

Deno.test("FileBlob.write() turns a full disk into CapacityExceededError", async () => {
  const file = await Deno.open("/dev/full", { read: true, write: true });
  const blob = new FileBlob("/dev/full", 8, "blob 0 of full", file);
  try {
    await assertRejects(
      () => blob.write(0, encoder.encode("bytes")),
      CapacityExceededError,
      "Cannot write 5 bytes to blob 0 of full: no space left on device",
    );
  } finally {
    await blob.release();
  }
});

Deno.test("FileBlobStore.recover() finds sealed objects after a restart and removes the rest", async () => {
  await using dir = await tempDir();
  {
    await using before = new FileBlobStore({ dir: dir.path, capacity: 1024 });
    await put(before, "alpha", ["first blob", "second"]);
    await put(before, "beta", ["b"]);
    const unfinished = await before.allocate(creating("unfinished", [10]));
    await unfinished.blobs[0]!.write(0, encoder.encode("half"));
  }
  const objects = join(dir.path, "objects");
  // A directory without meta.json, one whose blob file has the wrong size, one whose
  // meta.json names another id, one with unreadable JSON, and a stray file.
  await Deno.mkdir(join(objects, "no meta"));
  await Deno.writeFile(join(objects, "no meta", "0"), new Uint8Array(3));
  await Deno.mkdir(join(objects, "short"));
  await Deno.writeTextFile(
    join(objects, "short", "meta.json"),
    JSON.stringify(sealed(creating("short", [8]))),
  );
  await Deno.writeFile(join(objects, "short", "0"), new Uint8Array(7));
  await Deno.mkdir(join(objects, "renamed"));
  await Deno.writeTextFile(
    join(objects, "renamed", "meta.json"),
    JSON.stringify(sealed(creating("other", [1]))),
  );
  await Deno.writeFile(join(objects, "renamed", "0"), new Uint8Array(1));
  await Deno.mkdir(join(objects, "garbled"));
  await Deno.writeTextFile(join(objects, "garbled", "meta.json"), "{not json");
  await Deno.writeTextFile(join(objects, "stray"), "x");
  assertEquals((await names(join(dir.path, "tmp"))).length, 1);

  await using after = new FileBlobStore({ dir: dir.path, capacity: 1024 });
  const recovered = await after.recover();
  recovered.sort((a, b) => a.info.id.localeCompare(b.info.id));
  assertEquals(recovered.map((object) => object.info), [
    sealed(creating("alpha", [10, 6])),
    sealed(creating("beta", [1])),
  ]);
  const [alpha, beta] = recovered;
  assertEquals(decoder.decode(await alpha!.stored.blobs[0]!.read(0, 10)), "first blob");
  assertEquals(decoder.decode(await alpha!.stored.blobs[1]!.read(0, 6)), "second");
  assertEquals(decoder.decode(await beta!.stored.blobs[0]!.read(0, 1)), "b");
  assertEquals(after.used, 17);
  assertEquals(await names(objects), ["alpha", "beta"]);
  assertEquals(await names(join(dir.path, "tmp")), []);
  await assertRejects(
    () => alpha!.stored.blobs[0]!.write(0, encoder.encode("x")),
    AlreadySealedError,
  );

  assertEquals(await after.recover(), [], "objects already held are not found twice");
  assertEquals(after.used, 17);
  await after.free(beta!.stored);
  assertEquals(await names(objects), ["alpha"]);
});

Deno.test("FileBlobStore.recover() leaves objects being created by this store alone", async () => {
  await using dir = await tempDir();
  await using store = new FileBlobStore({ dir: dir.path, capacity: 1024 });
  const info = creating("in progress", [3]);
  const stored = await store.allocate(info);
  assertEquals(await store.recover(), []);
  await stored.blobs[0]!.write(0, encoder.encode("abc"));
  await store.seal(stored, sealed(info));
  assertEquals(await store.recover(), []);
  assertEquals(decoder.decode(await stored.blobs[0]!.read(0, 3)), "abc");

  const [racing] = await Promise.all([store.allocate(creating("racing", [2])), store.recover()]);
  await racing.blobs[0]!.write(0, encoder.encode("ok"));
  assertEquals((await names(join(dir.path, "tmp"))).length, 1);
});

Deno.test("FileBlobStore.free() removes the files of objects sealed or being created", async () => {
  await using dir = await tempDir();
  await using store = new FileBlobStore({ dir: dir.path, capacity: 1024 });
  const sealedObject = await put(store, "sealed", ["abc", "de"]);
  const unsealed = await store.allocate(creating("unsealed", [4]));
  assertEquals(store.used, 9);
  assertEquals(await names(join(dir.path, "objects")), ["sealed"]);
  assertEquals((await names(join(dir.path, "tmp"))).length, 1);

  await store.free(sealedObject);
  await store.free(unsealed);
  assertEquals(store.used, 0);
  assertEquals(await names(join(dir.path, "objects")), []);
  assertEquals(await names(join(dir.path, "tmp")), []);
  await store.free(unsealed);
  assertEquals(store.used, 0, "a second free does nothing");
  await assertRejects(() => unsealed.blobs[0]!.write(0, new Uint8Array(1)), ClosedError);
});

Deno.test("FileBlobStore refuses objects it did not hand out", async () => {
  await using dir = await tempDir();
  await using store = new FileBlobStore({ dir: dir.path, capacity: 1024 });
  await using other = new FileBlobStore({ dir: dir.path, capacity: 1024 });
  const stored = await other.allocate(creating("theirs", [1]));
  await assertRejects(() => store.free(stored), InvalidArgumentError, "not from this store");
  await assertRejects(() => store.free({ blobs: [] }), InvalidArgumentError);
});

Deno.test("FileBlobStore.seal() refuses an id already sealed on disk", async () => {
  await using dir = await tempDir();
  await using first = new FileBlobStore({ dir: dir.path, capacity: 1024 });
  await put(first, "taken", ["one"]);
  await using second = new FileBlobStore({ dir: dir.path, capacity: 1024 });
  const info = creating("taken", [3]);
  const stored = await second.allocate(info);
  await assertRejects(
    () => second.seal(stored, sealed(info)),
    AlreadyExistsError,
    "Cannot seal object taken: a sealed object of that id is already on disk",
  );
  await second.free(stored);
  assertEquals(await names(join(dir.path, "tmp")), []);
  assertEquals(decoder.decode(await Deno.readFile(join(dir.path, "objects", "taken", "0"))), "one");
});

Deno.test("FileBlobStore refuses ids whose path would leave objects/", async () => {
  await using dir = await tempDir();
  const layout = new Layout(dir.path);
  for (const id of ["..", ".", "", "../escape", "a/b", "a/../../b", "/etc", "a\0b"]) {
    assertThrows(() => layout.objectDir(id), InvalidArgumentError);
  }
  assertEquals(layout.objectDir("a..b"), join(dir.path, "objects", "a..b"));
  assertEquals(layout.objectDir("x".repeat(250)), join(dir.path, "objects", "x".repeat(250)));

  await using store = new FileBlobStore({ dir: join(dir.path, "data"), capacity: 1024 });
  await assertRejects(
    () => store.allocate(creating("../escape", [1])),
    InvalidArgumentError,
    "Invalid object id: not usable as a file name",
  );
  assertEquals(store.used, 0);
  assertEquals(await names(dir.path), []);
});

Deno.test("FileBlobStore keeps ids of 250 UTF-8 bytes as file names", async () => {
  await using dir = await tempDir();
  await using store = new FileBlobStore({ dir: dir.path, capacity: 1024 });
  const id = "é".repeat(125);
  await put(store, id, ["long"]);
  assert(await exists(join(dir.path, "objects", id, "0")));
});

Deno.test("FileBlobStore.close() closes files, keeps sealed data and refuses later use", async () => {
  await using dir = await tempDir();
  const store = new FileBlobStore({ dir: dir.path, capacity: 1024 });
  const kept = await put(store, "kept", ["kept"]);
  await kept.blobs[0]!.read(0, 4);
  const open = await store.allocate(creating("open", [2]));
  await store.close();
  await store.close();
  assertEquals(store.used, 0);
  await assertRejects(() => store.allocate(creating("late", [1])), ClosedError, "store is closed");
  await assertRejects(() => store.recover(), ClosedError);
  await assertRejects(() => store.free(kept), ClosedError);
  await assertRejects(() => open.blobs[0]!.write(0, new Uint8Array(1)), ClosedError);
  assert(await exists(join(dir.path, "objects", "kept", "meta.json")));
});

Deno.test("FileBlobStore rejects invalid options", () => {
  assertThrows(() => new FileBlobStore({ dir: "", capacity: 1 }), InvalidArgumentError);
  assertThrows(() => new FileBlobStore({ dir: "/tmp/x", capacity: -1 }), InvalidArgumentError);
  assertThrows(() => new FileBlobStore({ dir: "/tmp/x", capacity: 1.5 }), InvalidArgumentError);
});
