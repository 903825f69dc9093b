/**
 * The daemon against misbehaving clients: malformed, oversized and unknown
 * frames, file descriptors it did not ask for, a client that never reads,
 * and clients that vanish mid-operation. Each gets an error reply or is
 * disconnected alone; everyone else is served and nothing sealed is lost.
 */
import { assert, assertEquals } from "../../helpers/assert.ts";
import { eventually } from "../../helpers/eventually.ts";
import { type Client, connect } from "../../../mod.ts";
import {
  decodeJson,
  encodeFrame,
  Flag,
  HEADER_SIZE,
  MAX_MESSAGE,
  Op,
  PROTOCOL_VERSION,
} from "../../../transport/uds/protocol.ts";
import { RawConnection, type RawReply } from "../../helpers/uds_raw.ts";
import { type DaemonProcess, socketDir, spawnDaemon } from "../../helpers/uds_daemon.ts";

const KEEP = new Uint8Array(64 * 1024).map((_, i) => i % 253);

/** Runs `fn` against a daemon holding a sealed object "keep", then checks it kept serving. */
function misbehave(name: string, fn: (daemon: DaemonProcess, client: Client) => Promise<void>) {
  Deno.test(`the daemon survives ${name}`, async () => {
    const dir = await socketDir();
    try {
      await using daemon = await spawnDaemon(`${dir}/packice.sock`);
      await using client = await connect(daemon.path);
      await client.put(KEEP, { id: "keep" });
      const before = await client.peer.stats();
      await fn(daemon, client);
      // Still serving, with every lease of the bad client gone and nothing sealed lost.
      await eventually(
        async () => (await client.peer.stats()).leases === before.leases,
        "the client's leases are gone",
      );
      await using other = await connect(daemon.path);
      using handle = await other.get("keep");
      assertEquals(handle.bytes, KEEP);
      const after = await client.peer.stats();
      assertEquals(after.objects, before.objects);
      assertEquals((await daemon.stop()).code, 0, daemon.stderr());
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

/** The error `{ code, message }` of a reply frame. */
function errorOf(reply: RawReply | undefined, index = 0): { code: string; message: string } {
  const frame = reply?.frames[index];
  assert(frame !== undefined, "expected a reply");
  assert(frame.header.flags & Flag.ERROR, "expected an error reply");
  return decodeJson(frame.body) as { code: string; message: string };
}

/** Checks the connection still works after bad input. */
async function stillAnswers(raw: RawConnection): Promise<void> {
  raw.send(Op.HAS, 77, "keep");
  const reply = await raw.receive();
  assertEquals(reply?.frames[0]?.header.id, 77);
  assertEquals([...reply!.frames[0]!.body], [1]);
}

misbehave("malformed frames", async ({ path }) => {
  using raw = new RawConnection(path);
  raw.sendRaw(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"));
  assertEquals(errorOf(await raw.receive()).code, "PROTOCOL");
  raw.sendRaw(new Uint8Array([0x50, 0x4b, 1, 6, 0]));
  assert(errorOf(await raw.receive()).message.includes("truncated header"));
  const overrun = encodeFrame(Op.STAT, 5, 0, new TextEncoder().encode("keep"));
  new DataView(overrun.buffer).setUint32(8, 1000, true);
  raw.sendRaw(overrun);
  assert(errorOf(await raw.receive()).message.includes("overruns"));
  raw.sendRaw(encodeFrame(Op.ACQUIRE, 6, 0, new TextEncoder().encode("{not json")));
  const notJson = await raw.receive();
  assertEquals(notJson?.frames[0]?.header.id, 6);
  assertEquals(errorOf(notJson).code, "PROTOCOL");
  raw.sendRaw(encodeFrame(Op.ACQUIRE, 7, 0, new TextEncoder().encode('{"access":"STEAL"}')));
  assertEquals(errorOf(await raw.receive()).code, "INVALID_ARGUMENT");
  raw.sendRaw(encodeFrame(Op.STAT, 8, Flag.REPLY, new TextEncoder().encode("keep")));
  assertEquals(errorOf(await raw.receive()).code, "PROTOCOL");
  raw.sendRaw(encodeFrame(Op.OPEN, 9, 0, new Uint8Array(5)));
  assertEquals(errorOf(await raw.receive()).message, "Malformed OPEN request");
  const badId = new Uint8Array(14);
  badId[13] = 0xff;
  raw.sendRaw(encodeFrame(Op.OPEN, 10, 0, badId));
  assertEquals(errorOf(await raw.receive()).code, "PROTOCOL");
  await stillAnswers(raw);
});

misbehave("unknown operations and versions", async ({ path }) => {
  using raw = new RawConnection(path);
  raw.send(99, 1, "");
  const unknown = await raw.receive();
  assertEquals(unknown?.frames[0]?.header.id, 1);
  assert(errorOf(unknown).message.includes("Unknown operation"));
  const future = encodeFrame(Op.STATS, 2, 0, new Uint8Array());
  future[2] = PROTOCOL_VERSION + 1;
  raw.sendRaw(future);
  assert(errorOf(await raw.receive()).message.includes("version"));
  await stillAnswers(raw);
});

misbehave("oversized messages", async ({ path }) => {
  using raw = new RawConnection(path);
  const body = new Uint8Array(MAX_MESSAGE + 4096 - HEADER_SIZE);
  const frame = new Uint8Array(HEADER_SIZE + body.length);
  frame.set(encodeFrame(Op.STAT, 3, 0, new Uint8Array()));
  new DataView(frame.buffer).setUint32(8, body.length, true);
  assert(raw.sendRaw(frame) > 0);
  const reply = await raw.receive();
  assertEquals(reply?.frames[0]?.header.id, 3);
  assert(errorOf(reply).message.includes("too large"));
  await stillAnswers(raw);
});

misbehave("file descriptors sent by a client", async ({ path, process }) => {
  const fdsBefore = [...Deno.readDirSync(`/proc/${process.pid}/fd`)].length;
  using raw = new RawConnection(path);
  const { symbols } = raw.native;
  const memfd = symbols.pk_memfd_create(new TextEncoder().encode("gift\0"), 0);
  for (let i = 0; i < 100; i++) {
    raw.sendRaw(encodeFrame(Op.STATS, i + 1, 0, new Uint8Array(), 1), [memfd]);
    assert(errorOf(await raw.receive()).message.includes("Unexpected file descriptors"));
  }
  symbols.pk_close(memfd);
  await stillAnswers(raw);
  const fdsAfter = [...Deno.readDirSync(`/proc/${process.pid}/fd`)].length;
  // The daemon closed every descriptor it was sent (its own count moves only by this connection).
  assert(fdsAfter <= fdsBefore + 2, `daemon fds: ${fdsBefore} before, ${fdsAfter} after`);
});

misbehave("a client that never reads its replies", async ({ path, stderr }, client) => {
  // Large LIST replies fill the socket, then the daemon's bounded queue.
  const meta = { pad: "p".repeat(500) };
  await Promise.all(Array.from({ length: 400 }, (_, i) => client.put("", { id: `o${i}`, meta })));
  using raw = new RawConnection(path);
  let sent = 0;
  for (let i = 0; i < 200; i++) if (raw.send(Op.LIST, i + 1, "") > 0) sent++;
  assert(sent > 0);
  assert(await raw.closedByServer(10_000), "the daemon disconnects a client that does not read");
  await eventually(() => stderr().includes("does not read"), "the daemon logs the client");
  for (let i = 0; i < 400; i++) await client.delete(`o${i}`);
});

misbehave("clients that disconnect mid-operation", async ({ path }, client) => {
  const before = await client.peer.stats();
  // Asks for a large object and leaves before the reply.
  {
    using raw = new RawConnection(path);
    raw.send(Op.ACQUIRE, 1, JSON.stringify({ id: "gone", access: "CREATE", size: 64 << 20 }));
  }
  // Takes a READ lease and its memfd, and leaves without releasing.
  {
    using raw = new RawConnection(path);
    raw.send(Op.ACQUIRE, 1, JSON.stringify({ id: "keep", access: "READ" }));
    const reply = await raw.receive();
    assertEquals(reply?.fds.length, 1);
    raw.native.symbols.pk_close(reply!.fds[0]!);
  }
  // Half of a pipelined batch: create, then gone before seal.
  {
    using raw = new RawConnection(path);
    raw.send(Op.ACQUIRE, 1, JSON.stringify({ id: "half", access: "CREATE", size: 10 }));
    await raw.receive();
  }
  await eventually(async () => {
    const stats = await client.peer.stats();
    return stats.leases === before.leases && stats.objects === before.objects;
  }, "the bad clients' leases and objects are gone");
  assertEquals(await client.has("gone"), false);
  assertEquals(await client.has("half"), false);
});
