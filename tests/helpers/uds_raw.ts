/**
 * A bare Unix-socket client for tests: sends hand-made frames (and fds) and
 * reads raw replies, to play a misbehaving client or keep a memfd it receives.
 */
import { loadNative, type Native } from "../../native/load.ts";
import { Errno } from "../../native/errno.ts";
import {
  encodeFrame,
  type Header,
  HEADER_SIZE,
  MAX_FDS,
  MAX_MESSAGE,
  readHeader,
} from "../../transport/uds/protocol.ts";

/** One received message, split into frames. */
export interface RawReply {
  readonly frames: { header: Header; body: Uint8Array }[];
  readonly fds: number[];
  readonly flags: number;
}

/** A raw `SOCK_SEQPACKET` connection driven by polling, so it also works beside an in-process server. */
export class RawConnection implements Disposable {
  readonly native: Native;
  readonly fd: number;
  #closed = false;

  /** Connects to `path`; throws on failure. */
  constructor(path: string) {
    const native = loadNative();
    if (!native) throw new Error("Native library unavailable");
    this.native = native;
    const fd = native.symbols.pk_uds_connect(new TextEncoder().encode(`${path}\0`));
    if (fd < 0) throw new Error(`connect failed: errno ${-fd}`);
    this.fd = fd;
  }

  /** Sends one message; returns the native result (bytes sent or -errno). */
  sendRaw(bytes: Uint8Array, fds: number[] = []): number {
    return Number(
      this.native.symbols.pk_sendmsg(
        this.fd,
        bytes,
        BigInt(bytes.length),
        fds.length ? Int32Array.from(fds) : null,
        fds.length,
      ),
    );
  }

  /** Sends one frame. */
  send(op: number, id: number, body: Uint8Array | string, flags = 0): number {
    const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body;
    return this.sendRaw(encodeFrame(op, id, flags, bytes));
  }

  /** Receives one message, polling until `timeout` ms; undefined at EOF or timeout. */
  async receive(timeout = 5000): Promise<RawReply | undefined> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const { n, buffer, fds, flags } = this.#recvmsg();
      if (n > 0) {
        const frames: RawReply["frames"] = [];
        for (let at = 0; at < n;) {
          const header = readHeader(buffer.subarray(0, n), at);
          if (typeof header === "string") throw new Error(`Bad reply: ${header}`);
          frames.push({
            header,
            body: buffer.slice(at + HEADER_SIZE, at + HEADER_SIZE + header.length),
          });
          at += HEADER_SIZE + header.length;
        }
        return { frames, fds, flags };
      }
      if (n === 0 || n !== -Errno.EAGAIN) return undefined;
      if (Date.now() > deadline) return undefined;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }

  /** Whether the server has closed the connection (reads drained), polling until `timeout` ms. */
  async closedByServer(timeout = 5000): Promise<boolean> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const { n, fds } = this.#recvmsg();
      for (const fd of fds) this.native.symbols.pk_close(fd);
      if (n === 0 || (n < 0 && n !== -Errno.EAGAIN)) return true;
      if (n === -Errno.EAGAIN) {
        if (Date.now() > deadline) return false;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    }
  }

  /** One non-blocking recvmsg: the byte count (or -errno), the bytes, the fds and the flags. */
  #recvmsg(): { n: number; buffer: Uint8Array; fds: number[]; flags: number } {
    const buffer = new Uint8Array(MAX_MESSAGE);
    const fds = new Int32Array(MAX_FDS);
    const count = new Int32Array(1);
    const flags = new Int32Array(1);
    const n = Number(
      this.native.symbols.pk_recvmsg(
        this.fd,
        buffer,
        BigInt(buffer.length),
        fds,
        MAX_FDS,
        count,
        flags,
      ),
    );
    return { n, buffer, fds: Array.from(fds.subarray(0, count[0]!)), flags: flags[0]! };
  }

  /** Closes the socket. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.native.symbols.pk_close(this.fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
