/**
 * What fuzzing the Unix socket found, one explicit case each, against a
 * daemon in its own process.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { RawConnection, type RawReply } from "../helpers/uds_raw.ts";
import { testInSocketDir } from "../helpers/uds_daemon.ts";
import { spawnDaemon } from "../helpers/uds_daemon.ts";
import { Linux } from "../../native/ffi.ts";
import { decodeJson, encodeFrame, Flag, Op } from "../../transport/uds/protocol.ts";
import { connect } from "../../mod.ts";

const encoder = new TextEncoder();

function errorOf(reply: RawReply | undefined): { code: string; message: string } {
  const frame = reply?.frames[0];
  assert(frame !== undefined, "expected a reply");
  assert(frame.header.flags & Flag.ERROR, "expected an error reply");
  return decodeJson(frame.body) as { code: string; message: string };
}

function putBody(fields: unknown, bytes: Uint8Array): Uint8Array {
  const json = encoder.encode(JSON.stringify(fields));
  const body = new Uint8Array(4 + json.length + bytes.length);
  new DataView(body.buffer).setUint32(0, json.length, true);
  body.set(json, 4);
  body.set(bytes, 4 + json.length);
  return body;
}

testInSocketDir(
  "ACQUIRE, PUT and RENEW with a field of the wrong type answer INVALID_ARGUMENT, not INTERNAL",
  async (dir) => {
    await using daemon = await spawnDaemon(`${dir}/packice.sock`);
    using raw = new RawConnection(daemon.path);
    // Issue 17: a size that is not a number reached `.map` in the peer.
    for (const size of [null, "5", {}, [], [1, "2"], true]) {
      raw.send(Op.ACQUIRE, 1, JSON.stringify({ id: "s", access: "CREATE", size }));
      const error = errorOf(await raw.receive());
      assertEquals(error.code, "INVALID_ARGUMENT", error.message);
      assert(error.message.startsWith("Invalid size"), error.message);
    }
    const bad: Array<[number, Uint8Array, string]> = [
      [Op.ACQUIRE, encoder.encode('{"access":"READ","id":7}'), "Invalid object id"],
      [Op.ACQUIRE, encoder.encode('{"access":"CREATE","size":1,"ttl":"5"}'), "Invalid ttl"],
      [Op.ACQUIRE, encoder.encode('{"access":"CREATE","size":1,"meta":[1]}'), "Invalid meta"],
      [Op.PUT, putBody({ meta: "x" }, new Uint8Array(3)), "Invalid meta"],
      [Op.PUT, putBody({ ttl: -1 }, new Uint8Array(3)), "Invalid ttl"],
      [Op.PUT, putBody({ id: ["a"] }, new Uint8Array(3)), "Invalid object id"],
      [Op.PUT, putBody([1], new Uint8Array(3)), "Invalid PUT request"],
      [Op.RENEW, encoder.encode('{"lease":5}'), "Invalid lease id"],
    ];
    for (const [op, body, expected] of bad) {
      raw.sendRaw(encodeFrame(op, 2, 0, body));
      const error = errorOf(await raw.receive());
      assertEquals(error.code, "INVALID_ARGUMENT", error.message);
      assert(error.message.startsWith(expected), `${expected}: ${error.message}`);
    }
    await using client = await connect(daemon.path);
    assertEquals((await client.peer.stats()).objects, 0);
  },
);

testInSocketDir(
  "a message of no bytes with memfds ends its connection and leaks no fd in the daemon",
  async (dir) => {
    await using daemon = await spawnDaemon(`${dir}/packice.sock`);
    const fdCount = () => [...Deno.readDirSync(`/proc/${daemon.process.pid}/fd`)].length;
    // One connection first, so the count below includes what a connection costs.
    {
      using raw = new RawConnection(daemon.path);
      raw.send(Op.STATS, 1, "");
      await raw.receive();
    }
    await eventually(() => fdCount() > 0, "the count is readable");
    const before = fdCount();
    for (let i = 0; i < 50; i++) {
      using raw = new RawConnection(daemon.path);
      const { symbols } = raw.native;
      const memfds = [0, 1].map(() => {
        const fd = symbols.pk_memfd_create(encoder.encode("gift\0"), Linux.MFD_ALLOW_SEALING);
        symbols.pk_ftruncate(fd, 4096n);
        return fd;
      });
      raw.sendRaw(new Uint8Array(0), memfds);
      for (const fd of memfds) symbols.pk_close(fd);
      assert(await raw.closedByServer(), "the daemon ends the connection");
    }
    // Before the fix, each message left two memfds open in the daemon.
    await eventually(() => fdCount() <= before + 2, `daemon fds back to ${before}`);
  },
);
