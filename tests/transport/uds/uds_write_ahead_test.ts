/**
 * Large puts through memfds the client fills itself: a CREATE lease that
 * takes the client's memfd over, the seal that waits for the writer to
 * unmap it (or copies it), bad memfds, and daemons that keep no memfds.
 */
import { assert, assertEquals } from "../../helpers/assert.ts";
import {
  Access,
  Client,
  FileSystemPeer,
  MemoryPeer,
  type Peer,
  UdsPeer,
  UdsServer,
} from "../../../mod.ts";
import type { AcquireOptions } from "../../../core/peer.ts";
import { Linux } from "../../../native/ffi.ts";
import { encodeFrame, Flag, Op } from "../../../transport/uds/protocol.ts";
import { encodeTextFrame } from "../../helpers/uds_frames.ts";
import { RawConnection, type RawReply } from "../../helpers/uds_raw.ts";

const MiB = 1024 * 1024;
const FULL_SEALS = Linux.F_SEAL_WRITE | Linux.F_SEAL_GROW | Linux.F_SEAL_SHRINK |
  Linux.F_SEAL_SEAL;

/** A peer whose acquires are recorded: whether each CREATE came with memfds. */
function recorded<P extends Peer>(peer: P): { peer: P; creates: boolean[] } {
  const creates: boolean[] = [];
  const proxy = new Proxy(peer, {
    get(target, key) {
      if (key === "acquire") {
        return (id: string | undefined, access: Access, options?: AcquireOptions) => {
          if (access === Access.CREATE) creates.push(options?.memfds !== undefined);
          return target.acquire(id, access, options);
        };
      }
      const value = Reflect.get(target, key, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { peer: proxy, creates };
}

/** A server over `peer` on a fresh socket; disposing of it closes both and removes the socket. */
async function serve(peer: Peer): Promise<{ path: string } & AsyncDisposable> {
  const dir = await Deno.makeTempDir({ prefix: "packice-write-ahead-" });
  const path = `${dir}/d.sock`;
  const server = await UdsServer.listen(peer, path);
  return {
    path,
    async [Symbol.asyncDispose]() {
      await server.close();
      await peer.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function client(path: string): Promise<Client> {
  const peer = await UdsPeer.connect(path);
  return new Client(peer, () => peer.close());
}

function pattern(size: number, seed: number): Uint8Array {
  return new Uint8Array(size).map((_, i) => (i * 7 + seed) % 251);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A memfd of `size` bytes that takes seals, mapped read-write in this process and filled with `bytes`. */
function filledMemfd(
  raw: RawConnection,
  bytes: Uint8Array,
): { fd: number; pointer: Deno.PointerObject } {
  const { symbols } = raw.native;
  const fd = new Int32Array(1);
  const pointer = new BigUint64Array(1);
  assertEquals(symbols.pk_memfd_prepare(BigInt(bytes.length), 0, fd, pointer), 0);
  const mapped = Deno.UnsafePointer.create(pointer[0]!)!;
  symbols.pk_copy_in(mapped, bytes, BigInt(bytes.length));
  return { fd: fd[0]!, pointer: mapped };
}

function create(raw: RawConnection, requestId: number, request: object, fds: number[]): number {
  const frame = encodeTextFrame(Op.ACQUIRE, requestId, 0, JSON.stringify(request), fds.length);
  return raw.sendRaw(frame, fds);
}

/** The JSON body of a reply's first frame (an error's is `{ code, message }`); its fds are closed. */
function body(raw: RawConnection, reply: RawReply | undefined): Record<string, unknown> {
  for (const fd of reply?.fds ?? []) raw.native.symbols.pk_close(fd);
  const frame = reply?.frames[0];
  assert(frame !== undefined, "no reply");
  return JSON.parse(new TextDecoder().decode(frame.body));
}

/** How many descriptors of this process refer to the same file as `fd`. */
function holders(raw: RawConnection, fd: number): number {
  const { symbols } = raw.native;
  const wanted = new BigUint64Array(2);
  symbols.pk_fd_identity(fd, wanted);
  const other = new BigUint64Array(2);
  let count = 0;
  for (const entry of Deno.readDirSync("/proc/self/fd")) {
    if (symbols.pk_fd_identity(Number(entry.name), other) !== 0) continue;
    if (other[0] === wanted[0] && other[1] === wanted[1]) count++;
  }
  return count;
}

/**
 * Writes objects with `write` (given a round number), 50 ms apart, until one
 * goes through a memfd of the client's or 30 have been written; then checks
 * that `reader` gets each back whole.
 */
async function writeUntilOwnMemfd(
  creates: boolean[],
  reader: Client,
  write: (round: number) => Promise<[string, Uint8Array]>,
): Promise<[string, Uint8Array][]> {
  const written: [string, Uint8Array][] = [];
  for (let i = 0; i < 30 && !creates.includes(true); i++) {
    written.push(await write(i));
    await sleep(50);
  }
  assert(creates.includes(true), `no object went through the client's memfd: ${creates}`);
  for (const [id, bytes] of written) {
    using handle = await reader.get(id);
    assertEquals(handle.bytes, bytes);
  }
  return written;
}

Deno.test("large puts move to memfds the client faulted in ahead, once one is ready", async () => {
  const { peer, creates } = recorded(new MemoryPeer({ capacity: 256 * MiB }));
  await using served = await serve(peer);
  const path = served.path;
  const writer = await client(path);
  const reader = await client(path);
  try {
    const written = await writeUntilOwnMemfd(creates, reader, async (i) => {
      const bytes = pattern(2 * MiB + i, i);
      return [await writer.put(bytes), bytes];
    });
    assertEquals(creates[0], false, "the first put found a memfd ready");
    // Readers get the memfd only once it is sealed against every process.
    const [lastId] = written.at(-1)!;
    const { lease, blobs } = await peer.acquire(lastId, Access.READ);
    const seals = new RawConnection(path);
    try {
      assertEquals(seals.native.symbols.pk_get_seals(blobs[0]!.fd!) & FULL_SEALS, FULL_SEALS);
    } finally {
      seals.close();
      await peer.release(lease.id);
    }
  } finally {
    await writer.close();
    await reader.close();
  }
});

Deno.test("a writer's buffer of 1 MiB or more is a memfd the client faulted in ahead", async () => {
  const { peer, creates } = recorded(new MemoryPeer({ capacity: 256 * MiB }));
  await using served = await serve(peer);
  const path = served.path;
  const writer = await client(path);
  const reader = await client(path);
  try {
    await writeUntilOwnMemfd(creates, reader, async (i) => {
      const bytes = pattern(2 * MiB, i);
      await using object = await writer.create(bytes.length);
      object.buffer!.set(bytes);
      await object.seal();
      return [object.id, bytes];
    });
    // An object given up on goes, memfd and all.
    const before = (await peer.stats()).objects;
    for (let i = 0; i < 5; i++) {
      const object = await writer.create(2 * MiB);
      object.buffer!.fill(1);
      await object.abort();
      await sleep(50);
    }
    assertEquals((await peer.stats()).objects, before);
  } finally {
    await writer.close();
    await reader.close();
  }
});

Deno.test("readers wait for the writer to unmap its memfd; one that keeps it gets a sealed copy", async () => {
  const peer = new MemoryPeer({ capacity: 64 * MiB });
  await using served = await serve(peer);
  const path = served.path;
  const raw = new RawConnection(path);
  const { symbols } = raw.native;
  const mappings: { fd: number; pointer: Deno.PointerObject }[] = [];
  try {
    for (const [id, unmapAfter] of [["unmapped", 150], ["kept", -1]] as const) {
      const before = pattern(MiB, 1);
      const memfd = filledMemfd(raw, before);
      mappings.push(memfd);
      assert(create(raw, 1, { id, access: "CREATE", size: MiB }, [memfd.fd]) > 0);
      const lease = (body(raw, await raw.receive()).lease as { id: string }).id;
      raw.send(Op.SEAL, 2, lease);
      assertEquals(body(raw, await raw.receive()).state, "SEALED");
      raw.send(Op.RELEASE, 0, lease, Flag.ONE_WAY);

      const started = performance.now();
      let granted = 0;
      const reading = peer.acquire(id, Access.READ).then((acquired) => {
        granted = performance.now();
        return acquired;
      });
      await sleep(100);
      assertEquals(granted, 0, "a reader got the object while the writer could still change it");
      if (unmapAfter >= 0) {
        await sleep(unmapAfter - 100);
        assertEquals(symbols.pk_munmap(memfd.pointer, BigInt(MiB)), 0);
        mappings.pop();
      }
      const { lease: read, blobs } = await reading;
      try {
        const fd = blobs[0]!.fd!;
        assertEquals(symbols.pk_get_seals(fd) & FULL_SEALS, FULL_SEALS);
        const same = new BigUint64Array(2);
        const theirs = new BigUint64Array(2);
        symbols.pk_fd_identity(fd, same);
        symbols.pk_fd_identity(memfd.fd, theirs);
        if (unmapAfter >= 0) {
          assert(granted - started < 1000, `waited ${granted - started} ms after the unmap`);
          assertEquals([...same], [...theirs], "the unmapped memfd was copied");
        } else {
          assert(granted - started >= 900, `a copy after ${granted - started} ms`);
          assert(same[1] !== theirs[1], "the daemon kept the memfd the writer still maps");
          // What the writer changes now reaches nobody.
          symbols.pk_copy_in(memfd.pointer, pattern(MiB, 2), BigInt(MiB));
        }
        assertEquals(await blobs[0]!.read(0, MiB), before);
      } finally {
        await peer.release(read.id);
      }
      symbols.pk_close(memfd.fd);
    }
  } finally {
    for (const { pointer } of mappings) symbols.pk_munmap(pointer, BigInt(MiB));
    raw.close();
  }
});

Deno.test("memfds a CREATE cannot take are refused with a typed error and closed", async () => {
  const peer = new MemoryPeer({ capacity: 64 * MiB });
  await using served = await serve(peer);
  const path = served.path;
  const raw = new RawConnection(path);
  const { symbols } = raw.native;
  const keep = await client(path);
  try {
    const kept = pattern(2 * MiB, 9);
    const id = await keep.put(kept);
    const name = new TextEncoder().encode("bad\0");
    const sealed = filledMemfd(raw, pattern(MiB, 3));
    symbols.pk_munmap(sealed.pointer, BigInt(MiB));
    symbols.pk_add_seals(sealed.fd, Linux.F_SEAL_WRITE);
    const unsealable = symbols.pk_memfd_create(name, 0);
    symbols.pk_ftruncate(unsealable, BigInt(MiB));
    const fine = filledMemfd(raw, pattern(MiB, 4));
    symbols.pk_munmap(fine.pointer, BigInt(MiB));
    const file = symbols.pk_open(new TextEncoder().encode(`${path}.plain\0`), 0o102, 0o600);
    const cases: [string, object, number[], string][] = [
      ["not a memfd", { access: "CREATE", size: MiB }, [file], "INVALID_ARGUMENT"],
      [
        "a size other than the blob's",
        { access: "CREATE", size: 2 * MiB },
        [fine.fd],
        "INVALID_ARGUMENT",
      ],
      ["sealed already", { access: "CREATE", size: MiB }, [sealed.fd], "INVALID_ARGUMENT"],
      ["no sealing allowed", { access: "CREATE", size: MiB }, [unsealable], "INVALID_ARGUMENT"],
      ["two for one blob", { access: "CREATE", size: MiB }, [fine.fd, fine.fd], "INVALID_ARGUMENT"],
      ["with a READ", { id, access: "READ" }, [fine.fd], "INVALID_ARGUMENT"],
      ["an id in use", { id, access: "CREATE", size: MiB }, [fine.fd], "ALREADY_EXISTS"],
    ];
    for (const [what, request, fds, code] of cases) {
      assert(create(raw, 7, request, fds) > 0, what);
      assertEquals(body(raw, await raw.receive()).code, code, what);
    }
    // A frame claiming a memfd that did not come, and a memfd on another operation.
    raw.sendRaw(encodeTextFrame(Op.ACQUIRE, 8, 0, '{"access":"CREATE","size":1}', 1));
    assertEquals(body(raw, await raw.receive()).code, "PROTOCOL");
    raw.sendRaw(encodeFrame(Op.STATS, 9, 0, new Uint8Array(), 1), [fine.fd]);
    assertEquals(body(raw, await raw.receive()).code, "PROTOCOL");
    for (const fd of [sealed.fd, unsealable, fine.fd, file]) {
      assertEquals(holders(raw, fd), 1, `the daemon kept a descriptor it was sent: ${fd}`);
      symbols.pk_close(fd);
    }
    using handle = await keep.get(id);
    assertEquals(handle.bytes, kept);
    assertEquals((await peer.stats()).objects, 1);
  } finally {
    raw.close();
    await keep.close();
  }
});

Deno.test("a daemon that keeps no memfds refuses them, and large puts go the usual way", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "packice-write-ahead-fs-" });
  try {
    const { peer, creates } = recorded(await FileSystemPeer.open({ dir: dataDir }));
    await using served = await serve(peer);
    await using writer = await client(served.path);
    const written: [string, Uint8Array][] = [];
    for (let i = 0; i < 30 && !creates.includes(true); i++) {
      const bytes = pattern(2 * MiB, i);
      written.push([await writer.put(bytes), bytes]);
      await sleep(50);
    }
    assert(creates.includes(true), "no put offered the client's memfd");
    const bytes = pattern(3 * MiB, 5);
    written.push([await writer.put(bytes), bytes]);
    assertEquals(creates.at(-1), false, "a put offered a memfd after the refusal");
    for (const [id, expected] of written) {
      using handle = await writer.get(id);
      assertEquals(handle.bytes, expected);
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
