/**
 * OPEN, the compact READ lease `get` uses: the daemon leaves the info and
 * the fds out only while the client still maps the very same object, and a
 * client falls back to ACQUIRE against a daemon that does not know OPEN.
 */
import { assert, assertEquals } from "../../helpers/assert.ts";
import { udsClient } from "../../helpers/uds_client.ts";
import { Client, UdsPeer } from "../../../mod.ts";
import {
  decodeOpenReply,
  openFrameRoom,
  writeOpenFrame,
} from "../../../transport/uds/open_frame.ts";
import { Flag, Op } from "../../../transport/uds/protocol.ts";
import { OldDaemon, served } from "../../helpers/old_daemon.ts";
import { RawConnection } from "../../helpers/uds_raw.ts";
import { openNative } from "../../helpers/native.ts";

const native = openNative();

function openFrame(id: number, objectId: string, known: number): Uint8Array {
  const room = new Uint8Array(openFrameRoom(objectId));
  return room.subarray(0, writeOpenFrame(room, id, { objectId, known }));
}

Deno.test({
  name: "OPEN sends the info and fds once; then only while the client names the same object",
  ignore: native === undefined,
  async fn() {
    await using daemon = await served();
    await using client = await udsClient(daemon.path);
    await client.put("first", { id: "a" });
    using raw = new RawConnection(daemon.path);
    const open = async (id: number, known: number) => {
      raw.sendRaw(openFrame(id, "a", known));
      const reply = (await raw.receive())!;
      for (const fd of reply.fds) raw.native.symbols.pk_close(fd);
      const frame = reply.frames[0]!;
      assertEquals(frame.header.flags & Flag.ERROR, 0);
      const decoded = decodeOpenReply(frame.body)!;
      raw.send(Op.RELEASE, 0, decoded.leaseId, Flag.ONE_WAY);
      return { ...decoded, fds: reply.fds.length };
    };
    const first = await open(1, 0);
    assert(first.info !== undefined && first.fds === 1, "a first OPEN sends info and fd");
    assertEquals(JSON.parse(first.info!).size, 5);
    const again = await open(2, first.serial);
    assertEquals(again, { serial: first.serial, leaseId: again.leaseId, fds: 0 });
    const wrong = await open(3, first.serial + 7);
    assert(wrong.info !== undefined && wrong.fds === 1, "an unknown serial gets everything");

    // A new incarnation under the same id is never taken for the one the client maps.
    await client.delete("a");
    await client.put("second", { id: "a" });
    const replaced = await open(4, wrong.serial);
    assert(replaced.info !== undefined && replaced.fds === 1, "a new incarnation is sent whole");
    assert(replaced.serial !== wrong.serial, "a new incarnation gets a new serial");
  },
});

Deno.test({
  name:
    "get reads the bytes of each incarnation of an id, and of objects whose mapping was dropped",
  ignore: native === undefined,
  async fn() {
    await using daemon = await served();
    await using client = await udsClient(daemon.path);
    for (const text of ["one", "two!", "three"]) {
      await client.put(text, { id: "same" });
      for (let i = 0; i < 3; i++) {
        using handle = await client.get("same");
        assertEquals(new TextDecoder().decode(handle.bytes), text);
      }
      await client.delete("same");
    }
    await client.put("kept", { id: "kept" });
    {
      using handle = await client.get("kept");
      assertEquals(new TextDecoder().decode(handle.bytes), "kept");
    }
    // Idle mappings are dropped after 50 ms; the next get maps the object afresh.
    await new Promise((resolve) => setTimeout(resolve, 150));
    const { lease, blobs } = await (client.peer as UdsPeer).acquire("kept", "READ", {
      ttl: 60_000,
    });
    assertEquals(new TextDecoder().decode(blobs[0]!.openView()), "kept");
    assertEquals(lease.ttl, 60_000);
    assert((lease.expiresAt ?? 0) > Date.now(), "the lease's expiry came back");
    assertEquals((await daemon.peer.stats()).leases, 1);
    await client.peer.release(lease.id);
  },
});

for (
  const [wording, message] of [
    ["", `Unknown operation: ${Op.OPEN}`],
    [", whatever its message says", "No such operation"],
  ] as const
) {
  Deno.test({
    name: `a client falls back to ACQUIRE against a daemon that does not know OPEN${wording}`,
    ignore: native === undefined,
    async fn() {
      await using daemon = await served();
      await using client = await udsClient(daemon.path);
      await client.put("old daemon", { id: "o" });
      const dir = await Deno.makeTempDir({ prefix: "packice-open-old-" });
      try {
        using old = new OldDaemon(dir, daemon.path, Op.OPEN, message);
        await using oldClient = await udsClient(old.path);
        for (let i = 0; i < 3; i++) {
          using handle = await oldClient.get("o");
          assertEquals(new TextDecoder().decode(handle.bytes), "old daemon");
        }
        assertEquals(old.refused.length, 1, "the client stops sending OPEN once refused");
        // The last release reaches the daemon with the relay's next turn (the client still
        // open: its close would drop a release not yet sent).
        for (let i = 0; i < 100 && (await daemon.peer.stats()).leases > 0; i++) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        assertEquals((await daemon.peer.stats()).leases, 0);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: "Gets made in one turn whose frames outgrow a channel's frame memory all come back whole",
  ignore: native === undefined,
  async fn() {
    await using daemon = await served();
    await using client = await udsClient(daemon.path);
    // Ids of the longest kind: 64 OPEN frames (and their replies) take far more
    // than the 8 KiB a channel builds frames in between flushes.
    const ids = ["a", "b", "c", "d"].map((letter) => letter.repeat(250));
    for (const [i, id] of ids.entries()) await client.put(new Uint8Array(100 + i).fill(i), { id });
    for (let round = 0; round < 2; round++) {
      const handles = await Promise.all(
        Array.from({ length: 64 }, (_, n) => client.get(ids[n % ids.length]!)),
      );
      for (const [n, handle] of handles.entries()) {
        const i = n % ids.length;
        assertEquals(handle.id, ids[i]);
        assertEquals(handle.bytes, new Uint8Array(100 + i).fill(i));
        handle.close();
      }
    }
    assertEquals((await client.peer.stats()).leases, 0);
  },
});

Deno.test({
  name: "a get's lease, held by its handle only, ends with the handle or with the connection",
  ignore: native === undefined,
  async fn() {
    await using daemon = await served();
    const peer = await UdsPeer.connect(daemon.path);
    await using client = new Client(peer);
    await client.put("held", { id: "h" });
    const leases = async (count: number) => {
      for (let i = 0; i < 100 && (await daemon.peer.stats()).leases !== count; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      assertEquals((await daemon.peer.stats()).leases, count);
    };
    const first = await client.get("h");
    const second = await client.get("h");
    await leases(2);
    await first.close();
    assertEquals(first.bytes.length, 0);
    await leases(1);
    // The connection ends: the lease still held ends here at once, its view detached.
    await peer.close();
    assertEquals(second.bytes.length, 0);
    await second.close();
    await leases(0);
  },
});
