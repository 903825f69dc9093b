/**
 * OPEN, the compact READ lease `get` uses: the daemon leaves the info and
 * the fds out only while the client still maps the very same object, and a
 * client falls back to ACQUIRE against a daemon that does not know OPEN.
 */
import { assert, assertEquals } from "../../helpers/assert.ts";
import { Client, MemoryPeer, UdsPeer, UdsServer } from "../../../mod.ts";
import {
  decodeOpenReply,
  openFrameRoom,
  writeOpenFrame,
} from "../../../transport/uds/open_frame.ts";
import { Flag, type Header, HEADER_SIZE, Op, readHeader } from "../../../transport/uds/protocol.ts";
import { ProtocolError } from "../../../core/errors.ts";
import { RawConnection } from "../../helpers/uds_raw.ts";
import { openNative } from "../../helpers/native.ts";
import { encodeTextFrame } from "../../helpers/uds_frames.ts";

const native = openNative();

/** A memory peer served on a fresh socket. */
async function served(): Promise<AsyncDisposable & { path: string; peer: MemoryPeer }> {
  const dir = await Deno.makeTempDir({ prefix: "packice-open-" });
  const peer = new MemoryPeer();
  const server = await UdsServer.listen(peer, `${dir}/s.sock`);
  return {
    path: `${dir}/s.sock`,
    peer,
    async [Symbol.asyncDispose]() {
      await server.close();
      await peer.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function openFrame(id: number, objectId: string, known: number): Uint8Array {
  const room = new Uint8Array(openFrameRoom(objectId));
  return room.subarray(0, writeOpenFrame(room, id, { objectId, known }));
}

Deno.test({
  name: "OPEN sends the info and fds once; then only while the client names the same object",
  ignore: native === undefined,
  async fn() {
    await using daemon = await served();
    await using client = new Client(await UdsPeer.connect(daemon.path));
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
    await using client = new Client(await UdsPeer.connect(daemon.path));
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

/**
 * A daemon from before OPEN: relays every frame between one client and a
 * real daemon, but answers OPEN as such a daemon does, "Unknown operation".
 */
class OldDaemon implements Disposable {
  readonly path: string;
  readonly refused: number[] = [];
  readonly #native = native!;
  readonly #listener: number;
  readonly #upstream: RawConnection;
  #client = -1;
  #timer: ReturnType<typeof setInterval>;

  readonly #message: string;

  /** `message` is what it says of OPEN, with the code `PROTOCOL`. */
  constructor(dir: string, upstream: string, message: string) {
    this.path = `${dir}/old.sock`;
    this.#message = message;
    this.#listener = this.#native.symbols.pk_uds_listen(encode(`${this.path}\0`), 4);
    this.#upstream = new RawConnection(upstream);
    this.#timer = setInterval(() => this.#relay(), 1);
  }

  #relay(): void {
    const { symbols } = this.#native;
    if (this.#client < 0) this.#client = symbols.pk_accept(this.#listener);
    if (this.#client < 0) return;
    for (let message; (message = this.#receive(this.#client)) !== undefined;) {
      const kept: Uint8Array[] = [];
      for (let offset = 0; offset < message.bytes.length;) {
        const header = readHeader(message.bytes, offset) as Header;
        const frame = message.bytes.subarray(offset, offset + HEADER_SIZE + header.length);
        offset += frame.length;
        if (header.op !== Op.OPEN) {
          kept.push(frame);
          continue;
        }
        this.refused.push(header.id);
        const error = new ProtocolError(this.#message);
        const body = JSON.stringify({ code: error.code, message: error.message });
        this.#send(
          this.#client,
          encodeTextFrame(header.op, header.id, Flag.REPLY | Flag.ERROR, body),
          [],
        );
      }
      if (kept.length > 0) this.#send(this.#upstream.fd, concat(kept), message.fds);
    }
    for (let message; (message = this.#receive(this.#upstream.fd)) !== undefined;) {
      this.#send(this.#client, message.bytes, message.fds);
    }
  }

  #receive(fd: number): { bytes: Uint8Array; fds: number[] } | undefined {
    const buffer = new Uint8Array(256 * 1024);
    const fds = new Int32Array(253);
    const count = new Int32Array(1);
    const flags = new Int32Array(1);
    const n = Number(
      this.#native.symbols.pk_recvmsg(fd, buffer, BigInt(buffer.length), fds, 253, count, flags),
    );
    if (n <= 0) return undefined;
    return { bytes: buffer.slice(0, n), fds: [...fds.subarray(0, count[0]!)] };
  }

  #send(fd: number, bytes: Uint8Array, fds: number[]): void {
    const attached = fds.length === 0 ? null : Int32Array.from(fds);
    const sent = this.#native.symbols.pk_sendmsg(
      fd,
      bytes,
      BigInt(bytes.length),
      attached,
      fds.length,
    );
    assertEquals(Number(sent), bytes.length);
    for (const passed of fds) this.#native.symbols.pk_close(passed);
  }

  [Symbol.dispose](): void {
    clearInterval(this.#timer);
    if (this.#client >= 0) this.#native.symbols.pk_close(this.#client);
    this.#native.symbols.pk_close(this.#listener);
    this.#upstream.close();
  }
}

const encode = (text: string) => new TextEncoder().encode(text);

function concat(parts: Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

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
      await using client = new Client(await UdsPeer.connect(daemon.path));
      await client.put("old daemon", { id: "o" });
      const dir = await Deno.makeTempDir({ prefix: "packice-open-old-" });
      try {
        using old = new OldDaemon(dir, daemon.path, message);
        await using oldClient = new Client(await UdsPeer.connect(old.path));
        for (let i = 0; i < 3; i++) {
          using handle = await oldClient.get("o");
          assertEquals(new TextDecoder().decode(handle.bytes), "old daemon");
        }
        assertEquals(old.refused.length, 1, "the client stops sending OPEN once refused");
        await oldClient.close();
        // The last release reaches the daemon with the relay's next turn.
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
