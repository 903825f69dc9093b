/**
 * The compact reply to PUT: a client that flags its PUT `COMPACT` gets the
 * object's info in binary form, the same info JSON would give; a client that
 * does not (an old one) gets JSON; and a JSON reply (an old daemon's) still
 * reads as the info.
 */
import { assertEquals, assertThrows } from "../../helpers/assert.ts";
import { Client, MemoryPeer, ProtocolError, UdsPeer, UdsServer } from "../../../mod.ts";
import type { ObjectInfo } from "../../../core/object.ts";
import {
  decodePutReply,
  encodeText,
  Flag,
  Op,
  writePutReply,
} from "../../../transport/uds/protocol.ts";
import { encodePutFrame } from "../../helpers/uds_frames.ts";
import { RawConnection } from "../../helpers/uds_raw.ts";
import { openNative } from "../../helpers/native.ts";

const native = openNative();

const sealed: ObjectInfo = {
  id: "obj-1",
  state: "SEALED",
  size: 5,
  blobSizes: [5],
  meta: {},
  createdAt: 1_700_000_000_123,
  sealedAt: 1_700_000_000_125,
};

Deno.test("writePutReply() and decodePutReply() carry a put's info without JSON for its usual fields", () => {
  const body = writePutReply(sealed)!;
  assertEquals(body[0], 0, "told from JSON, whose first byte is {");
  assertEquals(decodePutReply(body), sealed);
  const more: ObjectInfo = {
    ...sealed,
    id: "ünïcode-id",
    meta: { type: "text/plain" },
    expiresAt: 1_700_000_060_123,
    digest: "sha256:ab",
  };
  assertEquals(decodePutReply(writePutReply(more)!), more);
  const { sealedAt: _, ...unsealedAt } = sealed;
  assertEquals(decodePutReply(writePutReply(unsealedAt)!), unsealedAt);
});

Deno.test("writePutReply() leaves to JSON what the compact form cannot carry", () => {
  assertEquals(writePutReply({ ...sealed, blobSizes: [2, 3] }), undefined);
  assertEquals(writePutReply({ ...sealed, state: "CREATING" }), undefined);
});

Deno.test("decodePutReply() reads a JSON reply, and refuses a malformed compact one", () => {
  assertEquals(decodePutReply(encodeText(JSON.stringify(sealed))), sealed);
  const body = writePutReply(sealed)!;
  assertThrows(() => decodePutReply(body.subarray(0, 20)), ProtocolError);
  assertThrows(() => decodePutReply(body.subarray(0, body.length - 1)), ProtocolError);
  const tail = Uint8Array.from([...body, ...encodeText("[1]")]);
  assertThrows(() => decodePutReply(tail), ProtocolError);
});

Deno.test({
  name: "a daemon replies compact to a PUT flagged COMPACT and JSON to one that is not",
  ignore: native === undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "packice-put-reply-" });
    await using peer = new MemoryPeer();
    await using server = await UdsServer.listen(peer, `${dir}/s.sock`);
    try {
      using raw = new RawConnection(server.path);
      const bytes = [encodeText("hello")];
      raw.sendRaw(encodePutFrame(1, { id: "plain" }, bytes, 5));
      const plain = (await raw.receive())!.frames[0]!;
      assertEquals(plain.header.flags, Flag.REPLY);
      assertEquals(JSON.parse(new TextDecoder().decode(plain.body)), await peer.stat("plain"));
      raw.sendRaw(
        encodePutFrame(2, { id: "compact", meta: { k: "v" } }, bytes, 5, Flag.COMPACT),
      );
      const compact = (await raw.receive())!.frames[0]!;
      assertEquals(compact.header.op, Op.PUT);
      assertEquals(compact.body[0], 0);
      assertEquals(decodePutReply(compact.body), await peer.stat("compact"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "a small put answered in C replies compact to a PUT flagged COMPACT and JSON to one that is not",
  ignore: native === undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "packice-put-reply-c-" });
    await using peer = new MemoryPeer();
    await using server = await UdsServer.listen(peer, `${dir}/s.sock`);
    try {
      using raw = new RawConnection(server.path);
      const bytes = [encodeText("hello")];
      raw.sendRaw(encodePutFrame(1, {}, bytes, 5));
      const plain = (await raw.receive())!.frames[0]!;
      const plainInfo = JSON.parse(new TextDecoder().decode(plain.body));
      assertEquals(plainInfo, await peer.stat(plainInfo.id));
      raw.sendRaw(encodePutFrame(2, {}, bytes, 5, Flag.COMPACT));
      const compact = (await raw.receive())!.frames[0]!;
      assertEquals([compact.header.op, compact.header.flags], [Op.PUT, Flag.REPLY]);
      assertEquals(compact.body[0], 0);
      const info = decodePutReply(compact.body);
      assertEquals(info, await peer.stat(info.id));
      assertEquals(server.metrics().uds_native_put_total, 2, "both answered in C");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "put() over a socket resolves with the info the daemon holds, TTL and metadata too",
  ignore: native === undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "packice-put-info-" });
    await using peer = new MemoryPeer();
    await using server = await UdsServer.listen(peer, `${dir}/s.sock`);
    try {
      await using uds = await UdsPeer.connect(server.path);
      await using client = new Client(uds);
      const plain = await uds.putObject([encodeText("abc")], 3, {});
      assertEquals(plain, await peer.stat(plain.id));
      const rich = await uds.putObject([encodeText("abcd")], 4, {
        id: "rich",
        meta: { type: "text/plain" },
        ttl: 60_000,
      });
      assertEquals(rich, await peer.stat("rich"));
      assertEquals(typeof rich.expiresAt, "number");
      const id = await client.put("text");
      using handle = await client.get(id);
      assertEquals(new TextDecoder().decode(handle.bytes), "text");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
