/**
 * Daemons for tests of how the Unix-socket transport meets older ones: a
 * memory peer served on a fresh socket, and a relay in front of one that
 * plays a daemon from before an operation.
 */
import { MemoryPeer, UdsServer } from "../../mod.ts";
import { ProtocolError } from "../../core/errors.ts";
import { Flag, type Header, HEADER_SIZE, readHeader } from "../../transport/uds/protocol.ts";
import { assertEquals } from "./assert.ts";
import { openNative } from "./native.ts";
import { encodeTextFrame } from "./uds_frames.ts";
import { RawConnection } from "./uds_raw.ts";

/** A memory peer served on a fresh socket. */
export async function served(): Promise<AsyncDisposable & { path: string; peer: MemoryPeer }> {
  const dir = await Deno.makeTempDir({ prefix: "packice-served-" });
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

/**
 * A daemon from before an operation: relays every frame between one client
 * and a real daemon, but answers that operation as such a daemon does,
 * with a `PROTOCOL` error ("Unknown operation").
 */
export class OldDaemon implements Disposable {
  readonly path: string;
  readonly refused: number[] = [];
  readonly #native = openNative()!;
  readonly #listener: number;
  readonly #upstream: RawConnection;
  #client = -1;
  #timer: ReturnType<typeof setInterval>;

  readonly #op: number;
  readonly #message: string;

  /** `message` is what it says of operation `op`, with the code `PROTOCOL`. */
  constructor(dir: string, upstream: string, op: number, message: string) {
    this.path = `${dir}/old.sock`;
    this.#op = op;
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
        if (header.op !== this.#op) {
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
