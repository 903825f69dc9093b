/**
 * Requests to a daemon that does not answer fail after `requestTimeout`, and
 * a lease granted by an ACQUIRE or OPEN reply that comes too late is released.
 */
import { assert, assertEquals, assertRejects } from "../../helpers/assert.ts";
import { ProtocolError, StoreUnavailableError, UdsPeer } from "../../../mod.ts";
import { Errno } from "../../../native/errno.ts";
import type { Native } from "../../../native/load.ts";
import {
  decodeText,
  Flag,
  HEADER_SIZE,
  MAX_BODY,
  Op,
  readHeader,
} from "../../../transport/uds/protocol.ts";
import { openNative } from "../../helpers/native.ts";
import { encodeTextFrame } from "../../helpers/uds_frames.ts";
import { openReplyRoom, writeOpenReply } from "../../../transport/uds/open_frame.ts";
import type { Header } from "../../../transport/uds/protocol.ts";

const native = openNative();

/** A server that reads requests and answers only when told to, polled from the test. */
class SilentServer {
  readonly path: string;
  readonly #native: Native;
  readonly #listener: number;
  #connection = -1;
  readonly #buffer = new Uint8Array(64 * 1024);

  constructor(native: Native, dir: string) {
    this.#native = native;
    this.path = `${dir}/silent.sock`;
    this.#listener = native.symbols.pk_uds_listen(new TextEncoder().encode(`${this.path}\0`), 4);
    assert(this.#listener >= 0, "listen");
  }

  /** The next request frame, polling for up to `timeout` ms. */
  async next(timeout = 5000): Promise<{ header: Header; body: Uint8Array }> {
    const { symbols } = this.#native;
    const deadline = Date.now() + timeout;
    const fds = new Int32Array(8);
    const count = new Int32Array(1);
    const flags = new Int32Array(1);
    while (Date.now() < deadline) {
      if (this.#connection < 0) this.#connection = symbols.pk_accept(this.#listener);
      if (this.#connection >= 0) {
        const n = Number(
          symbols.pk_recvmsg(this.#connection, this.#buffer, 65536n, fds, 8, count, flags),
        );
        if (n > 0) {
          const header = readHeader(this.#buffer, 0);
          if (typeof header === "string") throw new Error(header);
          const body = this.#buffer.slice(HEADER_SIZE, HEADER_SIZE + header.length);
          return { header, body };
        }
        if (n !== -Errno.EAGAIN) throw new Error(`recvmsg: ${n}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    throw new Error("No request came");
  }

  reply(op: number, id: number, value: unknown): void {
    this.send(encodeTextFrame(op, id, Flag.REPLY, JSON.stringify(value)));
  }

  send(frame: Uint8Array): void {
    const sent = this.#native.symbols.pk_sendmsg(
      this.#connection,
      frame,
      BigInt(frame.length),
      null,
      0,
    );
    assertEquals(Number(sent), frame.length);
  }

  close(): void {
    if (this.#connection >= 0) this.#native.symbols.pk_close(this.#connection);
    this.#native.symbols.pk_close(this.#listener);
  }
}

/** Runs `fn` with a client, of `requestTimeout` ms, of a server that answers only when told. */
async function withSilentServer(
  requestTimeout: number,
  fn: (peer: UdsPeer, server: SilentServer) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "packice-timeout-" });
  const server = new SilentServer(native!, dir);
  const peer = await UdsPeer.connect(server.path, { requestTimeout });
  try {
    await fn(peer, server);
  } finally {
    await peer.close();
    server.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test({
  name: "a request the daemon does not answer fails with STORE_UNAVAILABLE after the timeout",
  ignore: native === undefined,
  async fn() {
    await withSilentServer(200, async (peer, server) => {
      const started = performance.now();
      const stat = assertRejects(() => peer.stat("anything"), StoreUnavailableError, "200 ms");
      assertEquals((await server.next()).header.op, Op.STAT);
      await stat;
      const waited = performance.now() - started;
      assert(waited >= 200 && waited < 2000, `failed after ${waited} ms`);
    });
  },
});

Deno.test({
  name: "a request whose frame is too large is refused at once, and leaves nothing to time out",
  ignore: native === undefined,
  async fn() {
    await withSilentServer(100, async (peer) => {
      // Never sent: a rejected promise, not a throw, and no request left waiting for a reply.
      await assertRejects(() => peer.stat("x".repeat(MAX_BODY + 1)), ProtocolError, "too large");
      await new Promise((resolve) => setTimeout(resolve, 400));
    });
  },
});

for (
  const { op, access } of [{ op: Op.ACQUIRE, access: "WRITE" }, { op: Op.OPEN, access: "READ" }]
) {
  Deno.test({
    name: `a lease granted by a ${access} lease's reply that came too late is released`,
    ignore: native === undefined,
    async fn() {
      await withSilentServer(100, async (peer, server) => {
        const acquiring = assertRejects(
          () => peer.acquire("late", access as "READ" | "WRITE"),
          StoreUnavailableError,
        );
        const request = await server.next();
        assertEquals(request.header.op, op);
        await acquiring;
        const lease = { id: "lease-1", objectId: "late", access };
        const object = {
          id: "late",
          state: "SEALED",
          size: 0,
          blobSizes: [0],
          meta: {},
          createdAt: 0,
        };
        if (op === Op.OPEN) {
          const reply = { serial: 1, leaseId: lease.id, info: JSON.stringify(object) };
          const room = new Uint8Array(openReplyRoom(reply));
          server.send(
            room.subarray(0, writeOpenReply(room, request.header.id, Flag.REPLY, reply, 0)),
          );
        } else {
          server.reply(op, request.header.id, { lease, object });
        }
        const release = await server.next();
        assertEquals(release.header.op, Op.RELEASE);
        assert(release.header.flags & Flag.ONE_WAY, "the release waits for a reply");
        assertEquals(decodeText(release.body), "lease-1");
      });
    },
  });
}
