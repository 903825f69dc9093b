/**
 * `Client.put` over a Unix socket as one pending object per plain put, its
 * reply's id read straight from the received buffer (`UdsPeer.putId`): the
 * id is right whichever way and whenever the reply comes, with many
 * connections in flight, and a put under way when its connection closes
 * fails with `ClosedError` instead of hanging.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "../../helpers/assert.ts";
import {
  Client,
  ClosedError,
  connect,
  MemoryPeer,
  ProtocolError,
  UdsPeer,
  UdsServer,
} from "../../../mod.ts";
import type { ObjectInfo } from "../../../core/object.ts";
import type { DirectPutOptions } from "../../../core/peer.ts";
import {
  decodePutReplyId,
  encodeText,
  Flag,
  Frames,
  Op,
  writePutReply,
  writeTextFrame,
} from "../../../transport/uds/protocol.ts";
import { openNative } from "../../helpers/native.ts";
import { socketDir, spawnDaemon } from "../../helpers/uds_daemon.ts";

const native = openNative();

const info: ObjectInfo = {
  id: "0f8e2c1a-5b7d-4e3f-9a6b-1c2d3e4f5a6b",
  state: "SEALED",
  size: 4096,
  blobSizes: [4096],
  meta: {},
  createdAt: 1_700_000_000_123,
  sealedAt: 1_700_000_000_125,
};

Deno.test("decodePutReplyId() reads the id of a compact or JSON reply where it lies in a buffer", () => {
  const compact = writePutReply({ ...info, meta: { type: "text/plain" } })!;
  const buffer = new Uint8Array(7 + compact.length + 5).fill(0xff);
  buffer.set(compact, 7);
  assertEquals(decodePutReplyId(buffer, 7, 7 + compact.length), info.id);
  const json = encodeText(JSON.stringify(info));
  assertEquals(decodePutReplyId(json, 0, json.length), info.id);
});

Deno.test("decodePutReplyId() refuses a reply that is cut, overruns its end or names no id", () => {
  const compact = writePutReply(info)!;
  assertThrows(() => decodePutReplyId(compact, 0, 20), ProtocolError);
  // The id's bytes run past the reply's end, though the buffer holds them.
  assertThrows(() => decodePutReplyId(compact, 0, compact.length - 1), ProtocolError);
  const noId = encodeText(JSON.stringify({ ...info, id: 7 }));
  const error = assertThrows(() => decodePutReplyId(noId, 0, noId.length), ProtocolError);
  assert(error.message.includes("no id"), error.message);
});

Deno.test("Frames over a buffer's first bytes stops at their end, not the buffer's", () => {
  const buffer = new Uint8Array(256).fill(0);
  const first = writeTextFrame(buffer, Op.PUT, 1, Flag.REPLY, "abc", 0, 0);
  const second = writeTextFrame(buffer, Op.PUT, 2, Flag.REPLY, "defgh", 0, first);
  const frames = new Frames(new Uint8Array(0)).reset(buffer, [], first + second);
  const ids: number[] = [];
  for (let header = frames.next(); header !== undefined; header = frames.next()) {
    assert(typeof header !== "string", String(header));
    ids.push(header.id);
  }
  assertEquals(ids, [1, 2]);
  // A frame whose body would run past the given length is refused, bytes after it notwithstanding.
  const cut = new Frames(new Uint8Array(0)).reset(buffer, [], first + second - 1);
  assert(typeof cut.next() !== "string");
  assertEquals(typeof cut.next(), "string");
});

/** A peer whose puts through its JS are answered after `delays[n % length]` ms. */
class SlowPeer extends MemoryPeer {
  #n = 0;
  readonly #delays: readonly number[];

  constructor(delays: readonly number[]) {
    super();
    this.#delays = delays;
  }

  override async putObject(
    chunks: readonly Uint8Array[],
    size: number,
    options: DirectPutOptions = {},
  ): Promise<ObjectInfo> {
    const delay = this.#delays[this.#n++ % this.#delays.length]!;
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    return await super.putObject(chunks, size, options);
  }
}

Deno.test({
  name:
    "put() resolves with its id whether its reply comes within the JS thread's wait or after the native thread took the wait back",
  ignore: native === undefined,
  async fn() {
    const dir = await socketDir();
    // 0: within the wait; 3 ms: past the wait's 1 ms budget, so the reply comes through the native thread.
    await using peer = new SlowPeer([0, 3, 0, 0, 3, 1]);
    await using server = await UdsServer.listen(peer, `${dir}/s.sock`, { fastPath: false });
    try {
      await using client = await connect(server.path);
      const payloads = Array.from({ length: 24 }, (_, i) => new Uint8Array(100 + i).fill(i));
      // One at a time, then all at once: replies in order and out of order.
      const ids: string[] = [];
      for (const payload of payloads.slice(0, 12)) ids.push(await client.put(payload));
      ids.push(...await Promise.all(payloads.slice(12).map((payload) => client.put(payload))));
      assertEquals(new Set(ids).size, ids.length);
      for (const [i, id] of ids.entries()) {
        assertEquals((await peer.stat(id)).size, payloads[i]!.length);
        using handle = await client.get(id);
        assertEquals(handle.bytes, payloads[i]);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "put() from 32 connections to a daemon process, one in flight each, gets every object its own id and bytes",
  ignore: native === undefined,
  async fn() {
    const dir = await socketDir();
    try {
      await using daemon = await spawnDaemon(`${dir}/d.sock`);
      const clients = await Promise.all(Array.from({ length: 32 }, () => connect(daemon.path)));
      try {
        const puts = await Promise.all(clients.map(async (client, c) => {
          const mine: Array<[string, Uint8Array]> = [];
          for (let i = 0; i < 20; i++) {
            const bytes = new Uint8Array(4096).fill((c * 20 + i) % 251);
            bytes[0] = c;
            bytes[1] = i;
            mine.push([await client.put(bytes), bytes]);
          }
          return mine;
        }));
        const all = puts.flat();
        assertEquals(new Set(all.map(([id]) => id)).size, 32 * 20);
        const reader = clients[0]!;
        for (const [id, bytes] of all) {
          using handle = await reader.get(id);
          assertEquals(handle.bytes, bytes);
        }
        // Puts that are not plain, or too large to go inline, still answer their id.
        assertEquals(await reader.put(new Uint8Array(8), { id: "named", ttl: 60_000 }), "named");
        const large = await reader.put(new Uint8Array(100 * 1024).fill(9));
        assertEquals((await reader.stat(large)).size, 100 * 1024);
      } finally {
        await Promise.all(clients.map((client) => client.close()));
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "put() under way when its connection closes fails with ClosedError, and so does one after",
  ignore: native === undefined,
  async fn() {
    const dir = await socketDir();
    // Replies held back long enough for the close to come first.
    await using peer = new SlowPeer([50]);
    await using server = await UdsServer.listen(peer, `${dir}/s.sock`, { fastPath: false });
    try {
      const uds = await UdsPeer.connect(server.path);
      const client = new Client(uds, () => uds.close());
      const inFlight = client.put(new Uint8Array(64));
      await client.close();
      await assertRejects(() => inFlight, ClosedError);
      await assertRejects(() => uds.putId(new Uint8Array(64), {}), ClosedError);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
