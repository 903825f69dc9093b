// Landing fetched bytes in a memfd of their own (p2p/swarm/landing.ts): pieces
// written with pwrite, over a native connection and over fetch, read back
// through a read-only mapping; the CREATE takes the memfd over and seals it
// whole; a write that finds no memory (/dev/full: ENOSPC) ends the request
// and the transfer with CAPACITY_EXCEEDED, never as the source's fault.
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { CapacityExceededError } from "../../core/errors.ts";
import { Access } from "../../core/lease.ts";
import { check } from "../../native/errno.ts";
import { Linux } from "../../native/ffi.ts";
import { loadNative } from "../../native/load.ts";
import { FULL_SEALS } from "../../backends/memory/seals.ts";
import { MemoryPeer } from "../../peers/memory_peer.ts";
import { SourceError } from "../../p2p/source_error.ts";
import { createLanding, type Landing, MemfdLanding } from "../../p2p/swarm/landing.ts";
import { requestPieces } from "../../p2p/swarm/piece_request.ts";
import { RangeClient } from "../../p2p/swarm/range_client.ts";
import { RangeConnection } from "../../p2p/swarm/range_connection.ts";
import { Transfer } from "../../p2p/transfer.ts";
import { scriptedServer } from "../helpers/scripted_http.ts";
import { pieceRecord } from "../helpers/piece_record.ts";

const native = loadNative()!;
const PIECE = 256 << 10;
const SIZE = 4 * PIECE + 5000;
const body = new Uint8Array(SIZE).map((_, i) => (i * 13 + 5) & 0xff);
const record = pieceRecord("landed/1", body, PIECE);
const encoder = new TextEncoder();

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length;) at += await conn.write(data.subarray(at));
}

/** A holder that answers every range of `body` right. */
function holder() {
  return scriptedServer(async (request, conn) => {
    const match = /range: bytes=(\d+)-(\d+)/i.exec(request)!;
    const start = Number(match[1]);
    const end = Number(match[2]) + 1;
    await writeAll(
      conn,
      encoder.encode(
        `HTTP/1.1 206 X\r\ncontent-range: bytes ${start}-${end - 1}/${SIZE}\r\n` +
          `content-length: ${end - start}\r\n\r\n`,
      ),
    );
    await writeAll(conn, body.subarray(start, end));
    return true;
  });
}

/**
 * A landing whose writes go to /dev/full, which refuses every byte with
 * ENOSPC as shared memory does when it has no page left for one.
 */
function fullLanding(): Landing {
  const fd = check(
    native.symbols.pk_open(encoder.encode("/dev/full\0"), Linux.O_WRONLY, 0),
    "open /dev/full",
  );
  const view = new Uint8Array(SIZE);
  return {
    size: SIZE,
    view,
    range: (start, end) => view.subarray(start, end),
    fd,
    write: (offset, bytes) =>
      void check(
        native.symbols.pk_pwrite_all(fd, bytes, BigInt(bytes.length), BigInt(offset)),
        "pwrite",
      ),
    land: async (offset, bytes) =>
      void check(
        await native.symbols.pk_pwrite_all_nb(
          fd,
          Deno.UnsafePointer.of(bytes as Uint8Array<ArrayBuffer>),
          BigInt(bytes.length),
          BigInt(offset),
        ),
        "pwrite",
      ),
    hold: () => () => {},
    close: () => void native.symbols.pk_close(fd),
  };
}

const clients = {
  native: () => new RangeClient(),
  fetch: () => new RangeClient({ native: false }),
};

for (const [kind, makeClient] of Object.entries(clients)) {
  Deno.test(`requestPieces (${kind}) lands pieces in a memfd, read back through its read-only view`, async () => {
    await using server = holder();
    const client = makeClient();
    const landing = MemfdLanding.open(native, SIZE);
    const digests: Array<string | undefined> = [];
    try {
      const got = await requestPieces({
        record,
        piece: 0,
        count: 5,
        holder: { node: "h", address: `http://127.0.0.1:${server.port}` },
        target: landing,
        at: 0,
        client,
        signal: new AbortController().signal,
        landed: (_piece, _from, _to, digest) => digests.push(digest),
      });
      assertEquals(got, 5);
      assertEquals(landing.view, body);
      if (kind === "native") assertEquals(digests, [...record.pieceDigests]);
    } finally {
      client.close();
      landing.close();
    }
    assertEquals(landing.view.length, 0, "the view is detached once closed");
  });

  Deno.test(`requestPieces (${kind}) into a landing with no memory ends with CAPACITY_EXCEEDED, not a source fault`, async () => {
    await using server = holder();
    const client = makeClient();
    const landing = fullLanding();
    try {
      const error = await assertRejects(
        () =>
          requestPieces({
            record,
            piece: 0,
            count: 2,
            holder: { node: "h", address: `http://127.0.0.1:${server.port}` },
            target: landing,
            at: 0,
            client,
            signal: new AbortController().signal,
            landed: () => {},
          }),
        CapacityExceededError,
      );
      assert(!(error instanceof SourceError));
      assert(/ENOSPC/.test(error.message), error.message);
    } finally {
      client.close();
      landing.close();
    }
  });
}

Deno.test("a transfer whose landing has no memory fails with CAPACITY_EXCEEDED; its source is not given up", async () => {
  await using server = holder();
  const landing = fullLanding();
  const failed: SourceError[] = [];
  const transfer = new Transfer(record, landing, { inFlight: 2 });
  try {
    let asked = false;
    await assertRejects(
      () =>
        transfer.run({
          more: () => {
            if (asked) return Promise.resolve([]);
            asked = true;
            return Promise.resolve([{ node: "h", address: `http://127.0.0.1:${server.port}` }]);
          },
          failed: (error) => failed.push(error),
        }),
      CapacityExceededError,
    );
    assertEquals(failed, []);
    assertEquals(transfer.failures, []);
    assert(transfer.missing > 0);
  } finally {
    await transfer.close();
    landing.close();
  }
});

Deno.test("a transfer lends verified ranges, read only when a relay reads them; one first read after lending ended gets a copy; a landing closed under the whole hash stays mapped until it is over", async () => {
  await using server = holder();
  const landing = MemfdLanding.open(native, SIZE);
  const transfer = new Transfer(record, landing, { inFlight: 2 });
  try {
    let asked = false;
    await transfer.run({
      more: () => {
        if (asked) return Promise.resolve([]);
        asked = true;
        return Promise.resolve([{ node: "h", address: `http://127.0.0.1:${server.port}` }]);
      },
      failed: () => {},
    });
    assertEquals(transfer.missing, 0);
    const read = transfer.lendVerified(PIECE, 2 * PIECE)!;
    assertEquals(read.bytes, body.subarray(PIECE, 2 * PIECE));
    // Sent by a relay from the memfd: its bytes never looked at until lending ends.
    const late = transfer.lendVerified(0, PIECE + 10)!;
    const unread = transfer.lendVerified(2 * PIECE, 3 * PIECE)!;
    transfer.endLending();
    assertEquals(transfer.lendVerified(0, 1), undefined);
    landing.close();
    // Copies, as the landing goes once the loans are done.
    assertEquals(late.bytes, body.subarray(0, PIECE + 10));
    assertEquals(read.bytes, body.subarray(PIECE, 2 * PIECE));
    for (const loan of [read, late, unread]) loan.done();
    assertEquals(late.bytes, body.subarray(0, PIECE + 10));
    // The whole hash may still read the landing: mapped until it is over.
    await transfer.close();
    assertEquals(landing.view.length, 0);
  } finally {
    await transfer.close();
    landing.close();
  }
});

Deno.test("createLanding hands the CREATE a memfd of its own, which seals whole: no writable mapping is left", async () => {
  await using peer = new MemoryPeer({ capacity: 64 << 20 });
  const { created, landing } = await createLanding(peer, "big", SIZE, { kind: "test" });
  assert(landing instanceof MemfdLanding);
  landing.write(0, body.subarray(0, 100_000));
  landing.write(100_000, body.subarray(100_000));
  assertEquals(landing.view, body);
  landing.close();
  await peer.seal(created.lease.id);
  const blob = created.blobs[0]!;
  // Every seal at once: a writable mapping anywhere would have kept F_SEAL_WRITE out.
  assertEquals(native.symbols.pk_get_seals(blob.fd!), FULL_SEALS);
  await peer.release(created.lease.id);
  const read = await peer.acquire("big", Access.READ);
  try {
    assertEquals(await read.blobs[0]!.read(0, SIZE), body);
    assertEquals(read.object.meta, { kind: "test" });
  } finally {
    await peer.release(read.lease.id);
  }
});

Deno.test("createLanding lands a small object in its blob's view", async () => {
  await using peer = new MemoryPeer({ capacity: 64 << 20 });
  const small = body.subarray(0, 1000);
  const { created, landing } = await createLanding(peer, "small", small.length, {});
  assertEquals(landing.fd, undefined);
  landing.write(0, small);
  landing.close();
  await peer.seal(created.lease.id);
  assertEquals(await created.blobs[0]!.read(0, small.length), small);
  await peer.release(created.lease.id);
});

Deno.test("a landing's view held by a relay stays mapped past close, until given back", () => {
  const landing = MemfdLanding.open(native, SIZE);
  landing.write(0, body);
  const relayed = landing.view.subarray(PIECE, 2 * PIECE);
  const give = landing.hold();
  landing.close();
  assertEquals(relayed, body.subarray(PIECE, 2 * PIECE));
  give();
  give();
  assertEquals(relayed.length, 0);
  assertEquals(landing.view.length, 0);
});

Deno.test("a landing's ranges read what landed, refuse bytes outside the object, and go with its close", () => {
  const landing = MemfdLanding.open(native, SIZE);
  landing.write(0, body);
  const range = landing.range(PIECE, 2 * PIECE + 7);
  assertEquals(range, body.subarray(PIECE, 2 * PIECE + 7));
  assertEquals(landing.range(SIZE, SIZE).length, 0);
  for (const [start, end] of [[-1, 4], [5, 4], [0, SIZE + 1], [0.5, 2]]) {
    let refused = false;
    try {
      landing.range(start!, end!);
    } catch (error) {
      refused = error instanceof RangeError;
    }
    assert(refused, `${start}-${end}`);
  }
  landing.close();
  assertEquals(range.length, 0);
  assertEquals(landing.range(0, 0).length, 0);
});

Deno.test("a landing lands bytes off the JS thread: a write waiting for its file's lock holds no event loop", async () => {
  // An endgame duplicate lands while the pieces still arriving are written
  // into the same memfd on other threads: here one long write holds the
  // file's lock (shmem writes one call at a time), and the duplicate waits
  // for it without the event loop waiting too.
  const busy = 128 << 20;
  const landing = MemfdLanding.open(native, busy + SIZE);
  const long = new Uint8Array(new ArrayBuffer(busy)).fill(7);
  const writing = native.symbols.pk_pwrite_all_nb(
    landing.fd,
    Deno.UnsafePointer.of(long),
    BigInt(busy),
    BigInt(SIZE),
  );
  // Under way once the memfd has pages: the lock is held until it is over.
  const path = `/proc/self/fd/${landing.fd}`;
  for (let i = 0; i < 1e6 && (Deno.statSync(path).blocks ?? 0) === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  const started = performance.now();
  const landing_ = landing.land(0, body);
  const returned = performance.now() - started;
  await landing_;
  const waited = performance.now() - started - returned;
  assertEquals(Number(await writing), busy);
  void long.length;
  assert(
    waited > 5 * Math.max(1, returned),
    `returned after ${returned} ms, then waited ${waited} ms`,
  );
  assertEquals(landing.range(0, SIZE), body);
  assertEquals(landing.range(SIZE + busy - 3, SIZE + busy), new Uint8Array([7, 7, 7]));
  // A small buffer, maybe in V8's heap, is copied out first; none lands after close.
  await landing.land(5, new Uint8Array([1, 2, 3]));
  assertEquals(landing.range(4, 9), new Uint8Array([body[4]!, 1, 2, 3, body[8]!]));
  landing.close();
  await assertRejects(() => landing.land(0, body), RangeError);
});

Deno.test("a closed landing takes no more bytes", () => {
  const landing = MemfdLanding.open(native, SIZE);
  landing.close();
  landing.close();
  let refused = false;
  try {
    landing.write(0, body.subarray(0, 10));
  } catch (error) {
    refused = error instanceof RangeError;
  }
  assert(refused);
});

Deno.test("a body sent with its head and in uneven writes lands whole in a memfd, hashed as it lands", async () => {
  await using server = scriptedServer(async (_request, conn) => {
    const head = encoder.encode(
      `HTTP/1.1 206 X\r\ncontent-length: ${SIZE}\r\ncontent-range: bytes 0-${
        SIZE - 1
      }/${SIZE}\r\n\r\n`,
    );
    await writeAll(conn, new Uint8Array([...head, ...body.subarray(0, 1000)]));
    for (let at = 1000; at < SIZE; at += 300_001) {
      await writeAll(conn, body.subarray(at, Math.min(SIZE, at + 300_001)));
    }
    return true;
  });
  const connection = RangeConnection.open(native.symbols, "127.0.0.1", server.port);
  const landing = MemfdLanding.open(native, SIZE);
  try {
    await connection.request("GET /x HTTP/1.1\r\nhost: test\r\n\r\n", 5000);
    // Two calls, the first ending mid-page: each lands exactly its range.
    await connection.recvFd(landing.fd, 0, 5000, 5000, 1);
    await connection.recvFd(landing.fd, 5000, SIZE - 5000, 5000, 2);
    assertEquals(connection.digest(), record.digest);
    assertEquals(connection.pending, 0);
    assertEquals(landing.view, body);
  } finally {
    connection.close();
    landing.close();
  }
});

Deno.test("a CREATE that fails leaves no descriptor of the landing open", async () => {
  await using peer = new MemoryPeer({ capacity: SIZE - 1 });
  // Memfds of the landing's size only: other test modules in this process open and close
  // descriptors meanwhile (CI counted 73 of 71 with every descriptor counted).
  const open = () =>
    [...Deno.readDirSync("/proc/self/fd")].filter(({ name }) => {
      try {
        const path = `/proc/self/fd/${name}`;
        return Deno.readLinkSync(path).startsWith("/memfd:") && Deno.statSync(path).size === SIZE;
      } catch {
        return false; // Closed meanwhile.
      }
    }).length;
  const before = open();
  await assertRejects(() => createLanding(peer, "too-big", SIZE, {}), CapacityExceededError);
  assertEquals(open(), before);
});
