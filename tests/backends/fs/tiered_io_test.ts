import { join } from "node:path";
import { CapacityExceededError } from "../../../core/errors.ts";
import { FileBlobStore } from "../../../backends/fs/file_blob_store.ts";
import { fromFsError } from "../../../backends/fs/io.ts";
import { IO_NICE, NativeFileIo } from "../../../backends/fs/native_io.ts";
import { check, SystemError } from "../../../native/errno.ts";
import { Linux } from "../../../native/ffi.ts";
import { loadNative } from "../../../native/load.ts";
import { assert, assertEquals, assertRejects } from "../../helpers/assert.ts";
import { countJobs } from "../../helpers/native_io_jobs.ts";
import { assertPattern, openTempTiered, pattern, tempDir, tiers } from "../../helpers/tiered.ts";

const native = loadNative();
const ignore = native === undefined;
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** The nice value of each of this process's threads named `name`. */
function niceOfThreads(name: string): number[] {
  const nice: number[] = [];
  for (const task of Deno.readDirSync("/proc/self/task")) {
    const dir = `/proc/self/task/${task.name}`;
    let comm: string, stat: string;
    try {
      comm = Deno.readTextFileSync(`${dir}/comm`);
      stat = Deno.readTextFileSync(`${dir}/stat`);
    } catch (error) {
      // Threads of other tests come and go between the listing and the read.
      if (error instanceof Deno.errors.NotFound) continue;
      throw error;
    }
    if (comm.trim() !== name) continue;
    // Fields after the command's closing parenthesis; nice is the 19th field of the line.
    nice.push(Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16]));
  }
  return nice;
}

Deno.test({
  name: "NativeFileIo creates, writes and flushes files on threads at the lowest priority",
  ignore,
  fn: async () => {
    await using dir = await tempDir();
    const io = NativeFileIo.of(native!);
    const path = join(dir.path, "blob");
    const small = pattern("small", 100);
    const large = pattern("large", 300 * KiB);
    const file = await io.create(path, 400 * KiB);
    try {
      await Promise.all([file.write(0, small), file.write(100 * KiB, large)]);
      await file.sync();
      const back = new Uint8Array(100);
      assert(await file.readInto(0, back));
      assertEquals(back, small);
    } finally {
      file.close();
      await io.idle();
    }
    const bytes = await Deno.readFile(path);
    assertEquals(bytes.length, 400 * KiB);
    assertEquals(bytes.subarray(0, 100), small);
    assertEquals(bytes.subarray(100, 100 * KiB), new Uint8Array(100 * KiB - 100));
    assertEquals(bytes.subarray(100 * KiB), large);
    const nice = niceOfThreads("packice-io");
    assert(nice.length > 0, "No packice-io thread");
    assertEquals(nice, nice.map(() => IO_NICE));
  },
});

Deno.test({
  name: "NativeFileIo rejects what the system refuses, with the errno's code",
  ignore,
  fn: async () => {
    await using dir = await tempDir();
    const io = NativeFileIo.of(native!);
    const path = join(dir.path, "taken");
    await Deno.writeFile(path, new Uint8Array(1));
    const taken = await assertRejects(() => io.create(path, 8), SystemError);
    assertEquals(taken.code, "EEXIST");
    const fd = check(
      native!.symbols.pk_open(new TextEncoder().encode("/dev/full\0"), Linux.O_WRONLY, 0),
      "open",
    );
    try {
      const full = await assertRejects(() => io.write(fd, 0, pattern("x", 200 * KiB)), SystemError);
      assertEquals(full.code, "ENOSPC");
      assert(fromFsError(full, "write") instanceof CapacityExceededError);
    } finally {
      native!.symbols.pk_close(fd);
      await io.idle();
    }
  },
});

Deno.test({
  name: "a file store's close on the native I/O threads waits for its own jobs, not another's",
  ignore,
  fn: async () => {
    await using dirA = await tempDir();
    await using dirB = await tempDir();
    // As each TieredPeer's store takes it.
    const a = new FileBlobStore({
      dir: dirA.path,
      capacity: GiB,
      files: NativeFileIo.of(native!).opener(),
    });
    const b = new FileBlobStore({
      dir: dirB.path,
      capacity: GiB,
      files: NativeFileIo.of(native!).opener(),
    });
    const info = (id: string, size: number) => ({
      id,
      state: "CREATING",
      size,
      blobSizes: [size],
      meta: {},
      createdAt: Date.now(),
    } as const);
    const small = await b.allocate(info("small", 4 * KiB));
    await small.blobs[0]!.write(0, pattern("small", 4 * KiB));
    const large = await a.allocate(info("large", 64 * MiB));
    let written = false;
    const writing = large.blobs[0]!.write(0, pattern("large", 64 * MiB)).then(() => {
      written = true;
    });
    try {
      await b.close();
      assertEquals(written, false, "b's close waited for a's write");
    } finally {
      await writing;
      await a.close();
    }
  },
});

Deno.test({
  name: "TieredPeer writes objects placed on disk and demotions on the native I/O threads",
  ignore,
  fn: async () => {
    await using tiered = await openTempTiered({
      hotCapacity: 64 * KiB,
      highWatermark: 0.5,
      lowWatermark: 0.25,
    });
    const { client, peer } = tiered;
    using io = countJobs(NativeFileIo.of(native!));
    const before = io.completed;
    await client.put(pattern("big", 100 * KiB), { id: "big" });
    // Creating its file, writing it, flushing it.
    assert(io.completed - before >= 3, `${io.completed - before} jobs`);
    await client.put(pattern("old", 40 * KiB), { id: "old" });
    const demoting = io.completed;
    // Its creation starts the demotion of the idle object above the high watermark.
    await client.put(pattern("new", 8 * KiB), { id: "new" });
    await peer.settled();
    assertEquals(await tiers(client), { big: "cold", new: "hot", old: "cold" });
    assert(io.completed - demoting >= 3, `${io.completed - demoting} jobs`);
    await assertPattern(client, "big");
    await assertPattern(client, "old");
  },
});
