/**
 * `pk_recvmsg_each` (native/packice.c section 7): one message from each of
 * many sockets in one call, as `pk_recvmsg` would receive each, packed one
 * after the other, with their descriptors, and a stop before a socket when
 * less than a receive's room is left.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { Linux } from "../../native/ffi.ts";
import { openNative } from "../helpers/native.ts";
import { pattern } from "../helpers/pattern.ts";

const native = openNative();
const EAGAIN = 11;

Deno.test({
  name: "pk_recvmsg_each receives one message of each socket, in order, with its descriptors",
  ignore: native === undefined,
  async fn() {
    const symbols = native!.symbols;
    const dir = await Deno.makeTempDir({ prefix: "packice-recvmsg-each-" });
    const path = new TextEncoder().encode(`${dir}/s.sock\0`);
    const listener = symbols.pk_uds_listen(path, 8);
    assert(listener >= 0);
    const pairs = Array.from({ length: 4 }, () => {
      const client = symbols.pk_uds_connect(path);
      const server = symbols.pk_accept(listener);
      assert(client >= 0 && server >= 0);
      return { client, server };
    });
    const memfd = symbols.pk_memfd_create(new TextEncoder().encode("each\0"), 0);
    assert(memfd >= 0);
    const first = pattern(100, 1);
    const second = pattern(3000, 2);
    const third = pattern(7, 3);
    const send = (fd: number, bytes: Uint8Array, fds: number[] = []) =>
      assertEquals(
        Number(
          symbols.pk_sendmsg(fd, bytes, BigInt(bytes.length), Int32Array.from(fds), fds.length),
        ),
        bytes.length,
      );
    const buffer = new Uint8Array(16 * 1024);
    const fds = new Int32Array(16);
    const out = new Int32Array(4 * 3);
    const socks = Int32Array.from(pairs.map((pair) => pair.client));
    const each = (count: number, cap: number, room: number) =>
      symbols.pk_recvmsg_each(socks, count, buffer, BigInt(cap), BigInt(room), fds, 16, 4, out);
    const received: number[] = [];
    try {
      send(pairs[0]!.server, first);
      send(pairs[0]!.server, third); // Left for the next call: one message a socket.
      send(pairs[1]!.server, second, [memfd]);
      // pairs[2]: nothing waiting. pairs[3]: its peer gone.
      symbols.pk_close(pairs[3]!.server);

      assertEquals(each(4, buffer.length, 4096), 4);
      assertEquals([...out.subarray(0, 3)], [first.length, 0, 0]);
      assertEquals([...out.subarray(3, 6)].slice(0, 2), [second.length, 1]);
      assertEquals(out[5], 0);
      assertEquals([...out.subarray(6, 9)], [-EAGAIN, 0, 0]);
      assertEquals([...out.subarray(9, 12)], [0, 0, 0]);
      assertEquals(buffer.subarray(0, first.length), first);
      assertEquals(buffer.subarray(first.length, first.length + second.length), second);
      received.push(fds[0]!);
      assert(fds[0]! >= 0 && fds[0] !== memfd);

      // Less than a receive's room left after the first: it stops there.
      send(pairs[1]!.server, second);
      assertEquals(each(2, 4096 + 5, 4096), 1);
      assertEquals([...out.subarray(0, 3)], [third.length, 0, 0]);
      assertEquals(buffer.subarray(0, third.length), third);
      // A message longer than the room is cut, as pk_recvmsg cuts it.
      socks[0] = pairs[1]!.client;
      assertEquals(each(1, buffer.length, 1000), 1);
      assertEquals(out[0], 1000);
      assertEquals(out[2]! & Linux.MSG_TRUNC, Linux.MSG_TRUNC);
      assertEquals(each(1, 100, 4096), 0);
    } finally {
      for (const fd of received) symbols.pk_close(fd);
      symbols.pk_close(memfd);
      for (const pair of pairs) {
        symbols.pk_close(pair.client);
        if (pair !== pairs[3]) symbols.pk_close(pair.server);
      }
      symbols.pk_close(listener);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
