/**
 * A server's fast-path connections driven through the native library
 * directly, for the tests of C's receives (`pk_fp_recv`, `pk_fp_recv_each`):
 * a Unix socket listening in a folder of its own, a fast-path table, client
 * and server ends connected in pairs (each server end opened on the table),
 * and the buffers a receive writes into, as a server's JS keeps them.
 */
import { assert, assertEquals } from "./assert.ts";
import type { Native } from "../../native/load.ts";

/** What `pk_fp_recv_each` writes (`pk_fp_recv`, the first 14). */
const FIGURES = 17;
/** The bytes of a put record of `pk_fp_take_puts`, its slot first; records taken at once. */
const RECORD = 56;
const RECORDS = 64;

/** A client end and the server end it reached, opened on the table. */
export interface FastPair {
  readonly client: number;
  readonly server: number;
  /** The server end's connection on the table. */
  readonly conn: Deno.PointerObject;
  /** Its address, as `pk_fp_recv_each` takes connections. */
  readonly address: bigint;
}

/** The table, its pairs and the receive buffers; disposing closes them all. */
export interface FastPath extends AsyncDisposable {
  readonly table: Deno.PointerObject;
  readonly pairs: readonly FastPair[];
  /** Where a receive puts what it leaves to JS, and replies are read into. */
  readonly buffer: Uint8Array<ArrayBuffer>;
  /** The figures of the last receive. */
  readonly figures: Float64Array;
  /** Sends `bytes` from a client end, all of them. */
  send(client: number, bytes: Uint8Array): void;
  /** `pk_fp_recv` of one pair's connection; its result. */
  recv(pair: FastPair): number;
  /** `pk_fp_recv_each` of the connections of `members` (indexes in `pairs`), in order. */
  recvEach(members: readonly number[]): number;
  /** Reads what waits on a client end into `buffer`; the bytes read. */
  replies(client: number): number;
  /** The slots of the puts C stored since the last take. */
  takePuts(): number[];
  /** Closes a pair's client end (its peer gone), once: disposing leaves it. */
  closeClient(pair: FastPair): void;
}

/** Opens a table with `count` pairs, in a folder whose name starts with `prefix`. */
export async function openFastPath(
  symbols: Native["symbols"],
  count: number,
  prefix: string,
): Promise<FastPath> {
  const dir = await Deno.makeTempDir({ prefix });
  const path = new TextEncoder().encode(`${dir}/s.sock\0`);
  const listener = symbols.pk_uds_listen(path, 8);
  assert(listener >= 0);
  const out = new BigUint64Array(1);
  assertEquals(symbols.pk_fp_create(out), 0);
  const table = Deno.UnsafePointer.create(out[0]!)!;
  const pairs = Array.from({ length: count }, () => {
    const client = symbols.pk_uds_connect(path);
    const server = symbols.pk_accept(listener);
    assert(client >= 0 && server >= 0);
    assertEquals(symbols.pk_fp_conn_open(table, server, out), 0);
    return { client, server, conn: Deno.UnsafePointer.create(out[0]!)!, address: out[0]! };
  });
  const buffer = new Uint8Array(256 * 1024);
  const fds = new Int32Array(253);
  const received = new Int32Array(1);
  const flags = new Int32Array(1);
  const spill = new Uint8Array(64 * 1024);
  const spillFds = new Int32Array(253);
  const figures = new Float64Array(FIGURES);
  const records = new Uint8Array(RECORD * RECORDS);
  const conns = new BigUint64Array(count);
  /** What both receives take after their connections. */
  const into = () =>
    [
      buffer,
      BigInt(buffer.length),
      fds,
      fds.length,
      received,
      flags,
      Date.now(),
      spill,
      spillFds,
      figures,
    ] as const;
  // A descriptor closed twice could close one opened meanwhile by another thread.
  const closed = new Set<number>();
  const closeOnce = (client: number) => {
    if (!closed.has(client)) symbols.pk_close(client);
    closed.add(client);
  };
  return {
    table,
    pairs,
    buffer,
    figures,
    send: (client, bytes) =>
      assertEquals(
        Number(symbols.pk_sendmsg(client, bytes, BigInt(bytes.length), null, 0)),
        bytes.length,
      ),
    recv: (pair) => Number(symbols.pk_fp_recv(pair.conn, ...into())),
    recvEach: (members) => {
      members.forEach((member, i) => conns[i] = pairs[member]!.address);
      return symbols.pk_fp_recv_each(conns, members.length, ...into());
    },
    replies: (client) =>
      Number(
        symbols.pk_recvmsg(client, buffer, BigInt(buffer.length), fds, fds.length, received, flags),
      ),
    takePuts: () => {
      const taken = symbols.pk_fp_take_puts(table, records, RECORDS);
      const view = new DataView(records.buffer);
      return Array.from({ length: taken }, (_, i) => view.getUint32(i * RECORD, true));
    },
    closeClient: (pair) => closeOnce(pair.client),
    [Symbol.asyncDispose]: async () => {
      for (const { client, server, conn } of pairs) {
        symbols.pk_fp_conn_close(conn);
        closeOnce(client);
        symbols.pk_close(server);
      }
      // Joins the table's thread and frees it (the tests leave no object held).
      symbols.pk_fp_close(table);
      symbols.pk_close(listener);
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Frames joined into one message. */
export function joinFrames(...frames: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(frames.reduce((sum, frame) => sum + frame.length, 0));
  let at = 0;
  for (const frame of frames) {
    bytes.set(frame, at);
    at += frame.length;
  }
  return bytes;
}
