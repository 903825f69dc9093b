/**
 * The receives of a server's fast-path connections found readable together
 * (native/packice.c `pk_fp_recv_each`, transport/uds/fast_receives.ts): one
 * call answers what it can of one message on each connection, in order, and
 * stops at the first message with frames left to JS, handing it over as
 * `pk_fp_recv` would; the server's JS sees every request exactly once.
 */
import { assertEquals } from "../../helpers/assert.ts";
import { udsClient } from "../../helpers/uds_client.ts";
import { MemoryPeer } from "../../../mod.ts";
import { HEADER_SIZE, Op, peekHeader } from "../../../transport/uds/protocol.ts";
import { encodePutFrame, encodeTextFrame } from "../../helpers/uds_frames.ts";
import { joinFrames as message, openFastPath } from "../../helpers/fast_path.ts";
import { openNative } from "../../helpers/native.ts";
import { pattern } from "../../helpers/pattern.ts";
import { servePeer } from "../../helpers/served_peer.ts";

const native = openNative();

Deno.test({
  name:
    "pk_fp_recv_each answers one message on each connection in one call and stops at one left to JS",
  ignore: native === undefined,
  async fn() {
    const symbols = native!.symbols;
    await using fast = await openFastPath(symbols, 4, "packice-recv-each-");
    const { pairs, table, buffer, figures } = fast;
    const each = fast.recvEach;
    /** The ops of the reply frames waiting on a client's socket, in one message. */
    const replies = (client: number) => {
      const got = fast.replies(client);
      const ops: number[] = [];
      for (let at = 0; at < got;) {
        const header = peekHeader(buffer.subarray(at, got));
        ops.push(header.op);
        at += HEADER_SIZE + new DataView(buffer.buffer).getUint32(at + 8, true);
      }
      return ops;
    };
    const slots: number[] = [];
    const take = () => {
      const taken = fast.takePuts();
      slots.push(...taken);
      return taken.length;
    };
    try {
      assertEquals(symbols.pk_fp_budget(table, 64 * 1024 * 1024, 0, 0), 0);
      const put = (id: number) => encodePutFrame(id, {}, [pattern(4096, id)], 4096);
      const stat = encodeTextFrame(Op.STAT, 9, 0, "some-object");
      const first = message(put(1));
      fast.send(pairs[0]!.client, first);
      // pairs[1] sends nothing: its receive finds none, and the call goes on.
      fast.send(pairs[2]!.client, message(put(2), stat));
      fast.send(pairs[3]!.client, message(put(3)));
      // Through the first three: the third's STAT is JS's, its PUT answered here.
      assertEquals(each([0, 1, 2, 3]), 3);
      assertEquals(figures[9], 2);
      assertEquals(figures[14], first.length);
      assertEquals(figures[16], 1);
      assertEquals(figures[15], put(2).length + stat.length);
      assertEquals(figures[0], stat.length);
      assertEquals(buffer.subarray(0, stat.length), stat);
      assertEquals(take(), 2);
      // The rest: answered whole, nothing left to JS.
      assertEquals(each([3]), 1);
      assertEquals([figures[9], figures[16], figures[14]], [1, 0, put(3).length]);
      assertEquals(take(), 1);
      assertEquals(replies(pairs[0]!.client), [Op.PUT]);
      assertEquals(replies(pairs[2]!.client), [Op.PUT]);
      assertEquals(replies(pairs[3]!.client), [Op.PUT]);
      // Room for puts running low: back to JS after the first connection, to lend more.
      assertEquals(symbols.pk_fp_budget(table, 1024 * 1024 + 2000, 0, 0), 0);
      fast.send(pairs[0]!.client, message(put(4)));
      fast.send(pairs[1]!.client, message(put(5)));
      assertEquals(each([0, 1]), 1);
      assertEquals([figures[9], figures[16]], [1, 0]);
      assertEquals(symbols.pk_fp_budget(table, 64 * 1024 * 1024, 0, 0), 0);
      assertEquals(each([1]), 1);
      assertEquals(figures[9], 1);
      assertEquals(take(), 2);
      // A connection whose peer has gone: its end is JS's.
      fast.closeClient(pairs[3]!);
      assertEquals(each([3]), 1);
      assertEquals([figures[16], figures[15]], [1, 0]);
    } finally {
      for (const slot of slots) {
        symbols.pk_fp_remove(table, slot);
        symbols.pk_fp_unhold(table, slot);
      }
    }
  },
});

Deno.test({
  name: "many clients' puts, gets and stats at once: each request counted and answered once",
  ignore: native === undefined,
  async fn() {
    await using daemon = await servePeer(new MemoryPeer());
    const clients = await Promise.all(
      Array.from({ length: 24 }, async () => await udsClient(daemon.path)),
    );
    try {
      const rounds = 40;
      await Promise.all(clients.map(async (client, c) => {
        for (let i = 0; i < rounds; i++) {
          const bytes = pattern(4096, c * 1000 + i);
          const id = await client.put(bytes);
          // A STAT goes to the server's JS, beside others' puts answered in C.
          const [info, handle] = await Promise.all([client.stat(id), client.get(id)]);
          try {
            assertEquals(info.size, 4096);
            assertEquals(handle.bytes, bytes);
          } finally {
            handle.close();
          }
        }
      }));
      const puts = clients.length * rounds;
      assertEquals(daemon.puts(), puts);
      assertEquals((await daemon.peer.stats()).objects, puts);
      const metrics = daemon.server.metrics();
      assertEquals(metrics['uds_requests_total{op="put"}'], puts);
      assertEquals(metrics['uds_requests_total{op="stat"}'], puts);
      assertEquals(metrics['uds_requests_total{op="open"}'], puts);
      // Every frame received is counted once, whether C or JS answered it.
      const requestBytes = Object.entries(metrics)
        .filter(([name]) => name.startsWith("uds_request_bytes_total"))
        .reduce((sum, [, value]) => sum + value, 0);
      assertEquals(metrics.uds_received_bytes_total, requestBytes);
    } finally {
      await Promise.all(clients.map((client) => client.close()));
    }
  },
});
