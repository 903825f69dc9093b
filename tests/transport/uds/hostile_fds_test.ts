/**
 * The daemon against fds a hostile client hands over with ACQUIRE CREATE:
 * memfds that shrink, grow or gain seals while the daemon takes them over
 * (raced by a thread of hostile_fd.c), and fds of every other kind. Each is
 * refused with INVALID_ARGUMENT or kept at the size the object says, the
 * daemon stays up, and no reader, over the socket or over HTTP, faults or
 * sees a sealed object change.
 */
import { assert, assertEquals } from "../../helpers/assert.ts";
import { Hostile, memfd, MFD_ALLOW_SEALING, MFD_HUGETLB, O } from "../../helpers/hostile_fd.ts";
import { RawConnection, type RawReply } from "../../helpers/uds_raw.ts";
import { type DaemonProcess, socketDir, spawnDaemon } from "../../helpers/uds_daemon.ts";
import {
  decodeJson,
  encodeFrame,
  encodeRead,
  encodeWrite,
  Flag,
  Op,
} from "../../../transport/uds/protocol.ts";
import { Linux } from "../../../native/ffi.ts";
import { connect } from "../../../mod.ts";

const MIB = 1 << 20;

interface Daemon {
  readonly daemon: DaemonProcess;
  readonly http: string;
  /** `Authorization` with the token the daemon made, from its token file. */
  readonly auth: { readonly authorization: string };
}

/** Runs `fn` against a daemon that also serves HTTP, and checks it exits cleanly after. */
async function withDaemon(fn: (daemon: Daemon) => Promise<void>): Promise<void> {
  const dir = await socketDir();
  try {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    listener.close();
    await using daemon = await spawnDaemon(`${dir}/packice.sock`, [
      "--http",
      `127.0.0.1:${port}`,
    ]);
    const token = (await Deno.readTextFile(`${daemon.path}.token`)).split("\n")[0]!;
    await fn({
      daemon,
      http: `http://127.0.0.1:${port}`,
      auth: { authorization: `Bearer ${token}` },
    });
    assertEquals((await daemon.stop()).code, 0, daemon.stderr());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A reply: a lease granted (its daemon-side fds closed) or an error. */
type Answer = { lease: string } | { code: string; message: string };

async function answer(raw: RawConnection): Promise<Answer> {
  const reply: RawReply | undefined = await raw.receive();
  assert(reply !== undefined, "the daemon answers");
  for (const fd of reply.fds) raw.native.symbols.pk_close(fd);
  const frame = reply.frames[0]!;
  if (frame.body.length === 0) return { lease: "" };
  const body = decodeJson(frame.body) as Record<string, unknown>;
  if (frame.header.flags & Flag.ERROR) return body as { code: string; message: string };
  if (frame.header.op !== Op.ACQUIRE) return { lease: "" };
  return { lease: (body.lease as { id: string }).id };
}

/** Sends ACQUIRE CREATE of `size` bytes under `id` with `fd` attached. */
function createWith(raw: RawConnection, id: string, size: number, fd: number): void {
  const body = new TextEncoder().encode(JSON.stringify({ id, access: "CREATE", size }));
  assert(raw.sendRaw(encodeFrame(Op.ACQUIRE, 1, 0, body, 1), [fd]) > 0);
}

/** Seals and releases a lease; returns the seal's answer. */
async function sealAndRelease(raw: RawConnection, lease: string): Promise<Answer> {
  raw.send(Op.SEAL, 2, lease);
  const sealed = await answer(raw);
  raw.send(Op.RELEASE, 3, lease);
  await answer(raw);
  return sealed;
}

/** Fills `fd` with `byte` through write(2). */
function fill(raw: RawConnection, fd: number, size: number, byte: number): number {
  return Number(
    raw.native.symbols.pk_pwrite_all(fd, new Uint8Array(size).fill(byte), BigInt(size), 0n),
  );
}

async function httpGet({ http, auth }: Daemon, id: string): Promise<Uint8Array> {
  const response = await fetch(`${http}/v1/objects/${encodeURIComponent(id)}`, { headers: auth });
  assertEquals(response.status, 200, `GET ${id}`);
  return new Uint8Array(await response.arrayBuffer());
}

function isError(answer: Answer): answer is { code: string; message: string } {
  return "code" in answer;
}

Deno.test("the daemon refuses fds other than an unsealed memfd of the blob's size", async () => {
  using hostile = await Hostile.build();
  await withDaemon(async ({ daemon }) => {
    using raw = new RawConnection(daemon.path);
    const { native } = raw;
    const dir = await Deno.makeTempDir({ prefix: "packice-hostile-" });
    const sealedWrite = memfd(native, MIB);
    native.symbols.pk_add_seals(sealedWrite, Linux.F_SEAL_WRITE);
    const futureWrite = memfd(native, MIB);
    native.symbols.pk_add_seals(futureWrite, Linux.F_SEAL_FUTURE_WRITE);
    const sealSealed = memfd(native, MIB);
    native.symbols.pk_add_seals(sealSealed, Linux.F_SEAL_SEAL);
    const good = memfd(native, MIB);
    const [readEnd, writeEnd] = hostile.pipe();
    await Deno.writeFile(`${dir}/file`, new Uint8Array(MIB));
    const kinds: Record<string, number> = {
      "a pipe's read end": readEnd,
      "a pipe's write end": writeEnd,
      "a regular file": hostile.open(`${dir}/file`, O.RDWR),
      "a socket": hostile.socket(),
      "a directory": hostile.open(dir, O.RDONLY | O.DIRECTORY),
      "/dev/null": hostile.open("/dev/null", O.RDWR),
      "an eventfd": native.symbols.pk_eventfd(),
      "a memfd sealed against writes": sealedWrite,
      "a memfd sealed against future writes": futureWrite,
      "a memfd sealed against seals": sealSealed,
      "a memfd without MFD_ALLOW_SEALING": memfd(native, MIB, 0),
      "a memfd of another size": memfd(native, 4096),
      "a memfd larger than the blob": memfd(native, 2 * MIB),
      "a read-only memfd": hostile.open(`/proc/self/fd/${good}`, O.RDONLY),
    };
    try {
      const shm = `/dev/shm/packice-hostile-${Deno.pid}`;
      kinds["a file on tmpfs"] = hostile.open(shm, O.RDWR | O.CREAT);
      native.symbols.pk_ftruncate(kinds["a file on tmpfs"], BigInt(MIB));
      await Deno.remove(shm);
    } catch {
      // No /dev/shm here.
    }
    const huge = native.symbols.pk_memfd_create(
      new TextEncoder().encode("huge\0"),
      MFD_HUGETLB | MFD_ALLOW_SEALING,
    );
    if (huge >= 0 && native.symbols.pk_ftruncate(huge, BigInt(2 * MIB)) === 0) {
      kinds["a memfd of huge pages"] = huge;
    } else if (huge >= 0) native.symbols.pk_close(huge);
    try {
      for (const [i, [kind, fd]] of Object.entries(kinds).entries()) {
        assert(fd >= 0, `${kind}: ${fd}`);
        // A memfd of huge pages holds whole huge pages.
        createWith(raw, `kind${i}`, fd === huge ? 2 * MIB : MIB, fd);
        const reply = await answer(raw);
        assert(isError(reply), `${kind} is refused`);
        assertEquals(reply.code, "INVALID_ARGUMENT", `${kind}: ${reply.message}`);
        raw.send(Op.HAS, 4, `kind${i}`);
        const has = await raw.receive();
        assertEquals([...has!.frames[0]!.body], [0], `${kind} left no object`);
      }
    } finally {
      for (const fd of [...Object.values(kinds), good]) native.symbols.pk_close(fd);
      await Deno.remove(dir, { recursive: true });
    }
    await using client = await connect(daemon.path);
    assertEquals((await client.peer.stats()).leases, 0);
  });
});

Deno.test("memfds shrunk and grown while the daemon takes them over never fault a reader", async () => {
  using hostile = await Hostile.build();
  await withDaemon(async ({ daemon, http, auth }) => {
    using raw = new RawConnection(daemon.path);
    const { native } = raw;
    const kept: string[] = [];
    let refused = 0;
    for (let i = 0; i < 300; i++) {
      const fd = memfd(native, MIB);
      const race = hostile.toggle(fd, MIB, 4096);
      try {
        createWith(raw, `race${i}`, MIB, fd);
        const reply = await answer(raw);
        race.stop();
        if (isError(reply)) {
          assertEquals(reply.code, "INVALID_ARGUMENT", reply.message);
          refused++;
          continue;
        }
        // Taken over: its size is fixed at the blob's.
        assertEquals(Number(native.symbols.pk_fstat_size(fd)), MIB, `race${i}`);
        assert(!isError(await sealAndRelease(raw, reply.lease)));
        kept.push(`race${i}`);
      } finally {
        race.stop();
        native.symbols.pk_close(fd);
      }
    }
    assert(refused > 0 || kept.length > 0);
    for (const id of kept) {
      // The last byte: the daemon reads it from its mapping of the whole memfd.
      const response = await fetch(`${http}/v1/objects/${id}`, {
        headers: { ...auth, range: `bytes=${MIB - 1}-${MIB - 1}` },
      });
      assertEquals(response.status, 206, id);
      assertEquals([...new Uint8Array(await response.arrayBuffer())], [0]);
    }
    await using client = await connect(daemon.path);
    for (const id of kept) {
      using handle = await client.get(id);
      assertEquals(handle.bytes.length, MIB);
      assertEquals(handle.bytes[MIB - 1], 0);
    }
  });
});

Deno.test("memfds that gain seals while the daemon takes them over seal or are refused", async () => {
  using hostile = await Hostile.build();
  await withDaemon(async (served) => {
    const { daemon } = served;
    using raw = new RawConnection(daemon.path);
    const { native } = raw;
    const kept: Array<[string, number]> = [];
    const seals = [Linux.F_SEAL_SEAL, Linux.F_SEAL_WRITE, Linux.F_SEAL_FUTURE_WRITE];
    for (let i = 0; i < 90; i++) {
      const fd = memfd(native, MIB);
      const byte = 1 + (i % 250);
      assertEquals(fill(raw, fd, MIB, byte), MIB);
      const race = hostile.sealAfter(fd, (i * 7919) % 1_000_000, seals[i % seals.length]!);
      try {
        createWith(raw, `sealed${i}`, MIB, fd);
        const reply = await answer(raw);
        if (isError(reply)) {
          assertEquals(reply.code, "INVALID_ARGUMENT", reply.message);
          continue;
        }
        const sealed = await sealAndRelease(raw, reply.lease);
        assert(!isError(sealed), `sealed${i}: ${JSON.stringify(sealed)}`);
        kept.push([`sealed${i}`, byte]);
      } finally {
        race.stop();
        native.symbols.pk_close(fd);
      }
    }
    assert(kept.length > 0, "some memfds were taken over");
    await using client = await connect(daemon.path);
    for (const [id, byte] of kept) {
      assertEquals(await httpGet(served, id), new Uint8Array(MIB).fill(byte));
      using handle = await client.get(id);
      assertEquals(handle.bytes, new Uint8Array(MIB).fill(byte));
    }
  });
});

Deno.test("a writer that forbids more seals cannot change its object after seal", async () => {
  await withDaemon(async (served) => {
    const { daemon } = served;
    using raw = new RawConnection(daemon.path);
    const { native } = raw;
    for (const keepMapping of [false, true]) {
      const id = keepMapping ? "mapped" : "unmapped";
      const fd = memfd(native, MIB);
      const out = new BigUint64Array(1);
      assertEquals(native.symbols.pk_mmap(fd, BigInt(MIB), 0n, 1, 0, out), 0);
      const pointer = Deno.UnsafePointer.create(out[0]!)!;
      const buffer = Deno.UnsafePointerView.getArrayBuffer(pointer, MIB);
      try {
        new Uint8Array(buffer).fill(0x41);
        if (!keepMapping) {
          buffer.transfer(0);
          native.symbols.pk_munmap(pointer, BigInt(MIB));
        }
        createWith(raw, id, MIB, fd);
        const reply = await answer(raw);
        assert(!isError(reply), JSON.stringify(reply));
        // Before the seal (unmapped) or while the daemon waits for the unmap (mapped).
        if (!keepMapping) assertEquals(native.symbols.pk_add_seals(fd, Linux.F_SEAL_SEAL), 0);
        raw.send(Op.SEAL, 2, reply.lease);
        const sealed = await answer(raw);
        assert(!isError(sealed), JSON.stringify(sealed));
        if (keepMapping) assertEquals(native.symbols.pk_add_seals(fd, Linux.F_SEAL_SEAL), 0);
        const first = await httpGet(served, id);
        if (keepMapping) new Uint8Array(buffer).fill(0x42);
        else fill(raw, fd, MIB, 0x42);
        assertEquals(await httpGet(served, id), first);
        await using client = await connect(daemon.path);
        using handle = await client.get(id);
        assertEquals(handle.bytes, first);
        raw.send(Op.RELEASE, 3, reply.lease);
        await answer(raw);
      } finally {
        if (keepMapping) {
          buffer.transfer(0);
          native.symbols.pk_munmap(pointer, BigInt(MIB));
        }
        native.symbols.pk_close(fd);
      }
    }
  });
});

Deno.test("a memfd its writer seals against writes after the take-over is read and written with typed errors", async () => {
  await withDaemon(async ({ daemon }) => {
    using raw = new RawConnection(daemon.path);
    const { native } = raw;
    for (const size of [4096, MIB]) {
      const fd = memfd(native, size);
      try {
        createWith(raw, `late${size}`, size, fd);
        const reply = await answer(raw);
        assert(!isError(reply), JSON.stringify(reply));
        assertEquals(native.symbols.pk_add_seals(fd, Linux.F_SEAL_FUTURE_WRITE), 0);
        const bytes = new Uint8Array(16).fill(7);
        raw.send(Op.WRITE, 5, encodeWrite({ lease: reply.lease, blob: 0, offset: 0, bytes }));
        const written = await answer(raw);
        assert(isError(written), `write into a ${size}-byte blob is refused`);
        assertEquals(written.code, "INVALID_ARGUMENT", written.message);
        raw.send(Op.READ, 6, encodeRead({ lease: reply.lease, blob: 0, offset: 0, length: 16 }));
        const read = await raw.receive();
        const frame = read!.frames[0]!;
        if (frame.header.flags & Flag.ERROR) {
          const error = decodeJson(frame.body) as { code: string; message: string };
          assertEquals(error.code, "INVALID_ARGUMENT", error.message);
        } else {
          assertEquals([...frame.body], new Array(16).fill(0));
        }
        const sealed = await sealAndRelease(raw, reply.lease);
        assert(!isError(sealed), JSON.stringify(sealed));
      } finally {
        native.symbols.pk_close(fd);
      }
    }
    await using client = await connect(daemon.path);
    for (const size of [4096, MIB]) {
      using handle = await client.get(`late${size}`);
      assertEquals(handle.bytes, new Uint8Array(size));
    }
  });
});
