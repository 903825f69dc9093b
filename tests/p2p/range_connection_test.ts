// The native Range receiver (native/packice.c section 10, p2p/swarm/range_connection.ts)
// against a tiny loopback server that answers as a script says: good, short,
// oversized, slow and garbage responses. Bytes land only where asked, digests
// are those of the bytes, deadlines and cancellation end calls at once.
import { assert, assertEquals, assertRejects, assertThrows } from "../helpers/assert.ts";
import { createHash } from "node:crypto";
import { loadNative } from "../../native/load.ts";
import { ConnectionError, RangeConnection } from "../../p2p/swarm/range_connection.ts";
import { parseHead } from "../../p2p/swarm/response_head.ts";
import { scriptedServer } from "../helpers/scripted_http.ts";

const lib = loadNative()!.symbols;
const encoder = new TextEncoder();

function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

function digestOf(data: Uint8Array): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length;) at += await conn.write(data.subarray(at));
}

function head(status: number, length: number, extra = ""): Uint8Array {
  return encoder.encode(
    `HTTP/1.1 ${status} X\r\ncontent-length: ${length}\r\ncontent-range: bytes 0-${
      length - 1
    }/${length}\r\n${extra}\r\n`,
  );
}

/** A destination with guard bytes on both sides: `dest` is the middle. */
function guarded(length: number): { whole: Uint8Array; dest: Uint8Array } {
  const whole = new Uint8Array(new ArrayBuffer(length + 2 * 4096)).fill(0xee);
  return { whole, dest: whole.subarray(4096, 4096 + length) };
}

function guardsIntact(whole: Uint8Array, length: number): boolean {
  return whole.subarray(0, 4096).every((b) => b === 0xee) &&
    whole.subarray(4096 + length).every((b) => b === 0xee);
}

const GET = "GET /x HTTP/1.1\r\nhost: test\r\n\r\n";

Deno.test("a range body lands in the destination, hashed as it lands; the connection is kept for the next", async () => {
  const body = bytes(3 << 20, 1);
  await using server = scriptedServer(async (_request, conn) => {
    // In uneven writes, the head and the body's start together.
    const all = new Uint8Array([...head(206, body.length), ...body.subarray(0, 1000)]);
    await writeAll(conn, all);
    for (let at = 1000; at < body.length; at += 300_001) {
      await writeAll(conn, body.subarray(at, Math.min(body.length, at + 300_001)));
    }
    return true;
  });
  const connection = RangeConnection.open(lib, "127.0.0.1", server.port);
  try {
    for (let round = 0; round < 2; round++) {
      const text = await connection.request(GET, 5000);
      const answer = parseHead(text);
      assertEquals(answer.status, 206);
      assertEquals(answer.headers.get("content-length"), String(body.length));
      const { whole, dest } = guarded(body.length);
      // Two pieces: the hash starts with each.
      const half = 1 << 20;
      await connection.recv(dest.subarray(0, half), 5000, 3);
      assertEquals(connection.digest(), digestOf(body.subarray(0, half)));
      await connection.recv(dest.subarray(half, half + 100), 5000, 1);
      await connection.recv(dest.subarray(half + 100), 5000, 2);
      assertEquals(connection.digest(), digestOf(body.subarray(half)));
      assertEquals(dest, body);
      assert(guardsIntact(whole, body.length));
      assertEquals(connection.pending, 0);
    }
    assertEquals(server.requests.length, 2);
  } finally {
    connection.close();
  }
});

Deno.test("a body cut short ends the receive with an error; nothing lands past what was asked", async () => {
  await using server = scriptedServer(async (_request, conn) => {
    await writeAll(conn, new Uint8Array([...head(206, 1 << 20), ...bytes(5000, 2)]));
    return false;
  });
  const connection = RangeConnection.open(lib, "127.0.0.1", server.port);
  try {
    await connection.request(GET, 5000);
    const { whole, dest } = guarded(1 << 20);
    const error = await assertRejects(() => connection.recv(dest, 5000, 3), ConnectionError);
    assertEquals(error.timedOut, false);
    assertEquals(dest.subarray(0, 5000), bytes(5000, 2));
    assert(guardsIntact(whole, 1 << 20));
  } finally {
    connection.close();
  }
});

Deno.test("bytes past the length asked stay out of the destination and are told as pending", async () => {
  const body = bytes(3000, 3);
  await using server = scriptedServer(async (_request, conn) => {
    // The whole answer in one write: the extra bytes come with the head.
    await writeAll(conn, new Uint8Array([...head(206, 2000), ...body]));
    return false;
  });
  const connection = RangeConnection.open(lib, "127.0.0.1", server.port);
  try {
    await connection.request(GET, 5000);
    const { whole, dest } = guarded(2000);
    await connection.recv(dest, 5000, 3);
    assertEquals(dest, body.subarray(0, 2000));
    assertEquals(connection.digest(), digestOf(body.subarray(0, 2000)));
    assert(guardsIntact(whole, 2000));
    assertEquals(connection.pending, 1000);
  } finally {
    connection.close();
  }
});

Deno.test("a holder that stalls: the deadline ends the receive, and cancel() ends another at once", async () => {
  const stalled = Promise.withResolvers<void>();
  await using server = scriptedServer(async (_request, conn) => {
    await writeAll(conn, new Uint8Array([...head(206, 1 << 20), ...bytes(100, 4)]));
    await stalled.promise;
    return false;
  });
  const connection = RangeConnection.open(lib, "127.0.0.1", server.port);
  try {
    await connection.request(GET, 5000);
    const { dest } = guarded(1 << 20);
    let started = performance.now();
    const late = await assertRejects(() => connection.recv(dest, 200, 3), ConnectionError);
    assert(late.timedOut, late.message);
    const took = performance.now() - started;
    assert(took >= 190 && took < 2000, `${took} ms`);
    started = performance.now();
    const receiving = connection.recv(dest.subarray(100), 30_000, 0);
    setTimeout(() => connection.cancel(), 50);
    const cancelled = await assertRejects(() => receiving, ConnectionError);
    assertEquals(cancelled.timedOut, false);
    assert(performance.now() - started < 2000);
  } finally {
    stalled.resolve();
    connection.close();
  }
});

Deno.test("a head that never ends is refused at its bound; one that is not HTTP parses to status 0", async () => {
  await using server = scriptedServer(async (request, conn) => {
    if (request.startsWith("GET /long")) {
      await writeAll(conn, encoder.encode(`HTTP/1.1 206 X\r\nx: ${"a".repeat(20_000)}`));
    } else {
      await writeAll(conn, encoder.encode("garbage\r\nmore garbage\r\n\r\n"));
    }
    return false;
  });
  const first = RangeConnection.open(lib, "127.0.0.1", server.port);
  try {
    const error = await assertRejects(
      () => first.request("GET /long HTTP/1.1\r\n\r\n", 5000),
      ConnectionError,
    );
    assert(error.message.includes("EMSGSIZE"), error.message);
  } finally {
    first.close();
  }
  const second = RangeConnection.open(lib, "127.0.0.1", server.port);
  try {
    assertEquals(parseHead(await second.request(GET, 5000)).status, 0);
  } finally {
    second.close();
  }
});

Deno.test("a port nobody listens on is refused; an address that is not an IP cannot be opened", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const connection = RangeConnection.open(lib, "127.0.0.1", port);
  try {
    const error = await assertRejects(() => connection.request(GET, 5000), ConnectionError);
    assert(error.message.includes("ECONNREFUSED"), error.message);
  } finally {
    connection.close();
  }
  const error = assertThrows(() => RangeConnection.open(lib, "localhost", port), ConnectionError);
  assert(error.message.includes("EINVAL"), error.message);
});
