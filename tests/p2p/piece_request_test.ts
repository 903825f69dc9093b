// requestPieces over a native connection and over fetch, against one scripted
// holder: the same pieces land, and each bad answer is the same fault.
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { SourceError, type SourceFault } from "../../p2p/source_error.ts";
import { type PieceRequest, requestPieces } from "../../p2p/swarm/piece_request.ts";
import { RangeClient } from "../../p2p/swarm/range_client.ts";
import { scriptedServer } from "../helpers/scripted_http.ts";
import { pieceRecord } from "../helpers/piece_record.ts";

const PIECE = 64 << 10;
const SIZE = 3 * PIECE + 1000;
const body = new Uint8Array(SIZE).map((_, i) => (i * 7 + 3) & 0xff);
const record = pieceRecord("obj/1", body, PIECE);
const encoder = new TextEncoder();

/** The range a request asks for. */
function rangeOf(request: string): { start: number; end: number } {
  const match = /range: bytes=(\d+)-(\d+)/i.exec(request)!;
  return { start: Number(match[1]), end: Number(match[2]) + 1 };
}

/** Asks `address` for the first piece, into a fresh target, with `changes` to that request. */
function ask(
  client: RangeClient,
  address: string,
  changes: Partial<PieceRequest> = {},
): Promise<number> {
  return requestPieces({
    record,
    piece: 0,
    count: 1,
    holder: { node: "h", address },
    target: new Uint8Array(new ArrayBuffer(SIZE)),
    at: 0,
    client,
    signal: new AbortController().signal,
    landed: () => {},
    ...changes,
  });
}

function answer(status: number, range: string, length: number): Uint8Array {
  return encoder.encode(
    `HTTP/1.1 ${status} X\r\ncontent-range: ${range}\r\ncontent-length: ${length}\r\n\r\n`,
  );
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let at = 0; at < data.length;) at += await conn.write(data.subarray(at));
}

/** A holder whose answer to a range is `bad` (a status, a wrong range, a cut), else right. */
function holder(bad?: "cut" | "range" | "stall" | number) {
  return scriptedServer(async (request, conn) => {
    const { start, end } = rangeOf(request);
    const range = `bytes ${start}-${end - 1}/${SIZE}`;
    if (typeof bad === "number") {
      await writeAll(conn, encoder.encode(`HTTP/1.1 ${bad} X\r\ncontent-length: 2\r\n\r\nno`));
      return true;
    }
    if (bad === "range") {
      await writeAll(conn, answer(206, `bytes ${start + 1}-${end}/${SIZE}`, end - start));
      await writeAll(conn, body.subarray(0, end - start));
      return true;
    }
    await writeAll(conn, answer(206, range, end - start));
    if (bad === "cut") {
      // The first piece and a bit, then the connection drops.
      await writeAll(conn, body.subarray(start, start + PIECE + 100));
      return false;
    }
    if (bad === "stall") {
      await writeAll(conn, body.subarray(start, start + 100));
      await new Promise((resolve) => setTimeout(resolve, 600));
      return false;
    }
    await writeAll(conn, body.subarray(start, end));
    return true;
  });
}

const clients = {
  native: () => new RangeClient(),
  fetch: () => new RangeClient({ native: false }),
};

for (const [kind, makeClient] of Object.entries(clients)) {
  Deno.test(`requestPieces (${kind}) lands a run of pieces in order, the last one short`, async () => {
    await using server = holder();
    const client = makeClient();
    const target = new Uint8Array(new ArrayBuffer(SIZE));
    const landed: Array<[number, number, number, string | undefined]> = [];
    try {
      for (const [piece, count] of [[0, 2], [2, 2]] as const) {
        const got = await ask(client, `http://127.0.0.1:${server.port}`, {
          piece,
          count,
          target,
          at: piece * PIECE,
          landed: (piece, from, to, digest) => landed.push([piece, from, to, digest]),
        });
        assertEquals(got, count);
      }
    } finally {
      client.close();
    }
    assertEquals(target, body);
    assertEquals(landed.map(([piece, from, to]) => [piece, from, to]), [
      [0, 0, PIECE],
      [1, PIECE, 2 * PIECE],
      [2, 2 * PIECE, 3 * PIECE],
      [3, 3 * PIECE, SIZE],
    ]);
    // Natively, each piece comes with its digest, and both runs take one connection.
    if (kind === "native") {
      assertEquals(landed.map(([, , , digest]) => digest), [...record.pieceDigests]);
      assertEquals(server.connections(), 1);
    } else {
      assert(landed.every(([, , , digest]) => digest === undefined));
    }
  });

  Deno.test(`requestPieces (${kind}) turns each bad answer into the same fault`, async () => {
    const cases: Array<[Parameters<typeof holder>[0], SourceFault]> = [
      [404, "missing"],
      [503, "busy"],
      [500, "status"],
      [200, "status"],
      ["range", "length"],
      ["cut", "unreachable"],
      ["stall", "timeout"],
    ];
    for (const [bad, fault] of cases) {
      await using server = holder(bad);
      const client = makeClient();
      const landed: number[] = [];
      try {
        const error = await assertRejects(
          () =>
            ask(client, `http://127.0.0.1:${server.port}`, {
              count: 3,
              timeout: { base: 300, perMiB: 0 },
              landed: (piece) => landed.push(piece),
            }),
          SourceError,
        );
        assertEquals(error.fault, fault, `${bad}: ${error.message}`);
        // Cut after the first piece: that one landed.
        assertEquals(landed, bad === "cut" ? [0] : [], String(bad));
      } finally {
        client.close();
      }
    }
  });

  Deno.test(`requestPieces (${kind}) stops quietly when its signal aborts mid-body`, async () => {
    await using server = holder("stall");
    const client = makeClient();
    const stop = new AbortController();
    try {
      const started = performance.now();
      const request = ask(client, `http://127.0.0.1:${server.port}`, {
        count: 2,
        signal: stop.signal,
        accepted: () => setTimeout(() => stop.abort(), 50),
      });
      assertEquals(await request, 0);
      assert(performance.now() - started < 1000);
    } finally {
      client.close();
    }
  });
}

Deno.test("requestPieces natively refuses a length other than the one asked: a length fault", async () => {
  await using server = scriptedServer(async (request, conn) => {
    const { start, end } = rangeOf(request);
    await writeAll(conn, answer(206, `bytes ${start}-${end - 1}/${SIZE}`, end - start + 10));
    await writeAll(conn, body.subarray(start, end));
    return false;
  });
  const client = new RangeClient();
  try {
    const error = await assertRejects(
      () => ask(client, `http://127.0.0.1:${server.port}`),
      SourceError,
    );
    assertEquals(error.fault, "length");
  } finally {
    client.close();
  }
});

Deno.test("requestPieces natively asks again on a new connection when a kept one was closed", async () => {
  let served = 0;
  await using server = scriptedServer(async (request, conn) => {
    const { start, end } = rangeOf(request);
    await writeAll(conn, answer(206, `bytes ${start}-${end - 1}/${SIZE}`, end - start));
    await writeAll(conn, body.subarray(start, end));
    served++;
    // Keep-alive not kept: the connection closes after the answer, without saying so.
    return false;
  });
  const client = new RangeClient();
  const target = new Uint8Array(new ArrayBuffer(SIZE));
  try {
    for (const piece of [0, 1, 2]) {
      assertEquals(
        await ask(client, `http://127.0.0.1:${server.port}`, { piece, target, at: piece * PIECE }),
        1,
      );
    }
  } finally {
    client.close();
  }
  assertEquals(served, 3);
  assertEquals(target.subarray(0, 3 * PIECE), body.subarray(0, 3 * PIECE));
});

Deno.test("requestPieces natively keeps a connection whose answer was a short refusal", async () => {
  let asked = 0;
  await using server = scriptedServer(async (request, conn) => {
    // Busy first, with a JSON error as the Deno server sends it; then the range.
    if (asked++ === 0) {
      const error = encoder.encode('{"error":{"code":"STORE_UNAVAILABLE","message":"Busy"}}');
      await writeAll(
        conn,
        encoder.encode(`HTTP/1.1 503 X\r\ncontent-length: ${error.length}\r\n\r\n`),
      );
      // Its body apart from its head: read off, not found with it.
      await new Promise((resolve) => setTimeout(resolve, 20));
      await writeAll(conn, error);
      return true;
    }
    const { start, end } = rangeOf(request);
    await writeAll(conn, answer(206, `bytes ${start}-${end - 1}/${SIZE}`, end - start));
    await writeAll(conn, body.subarray(start, end));
    return true;
  });
  const client = new RangeClient();
  try {
    const address = `http://127.0.0.1:${server.port}`;
    const busy = await assertRejects(() => ask(client, address), SourceError);
    assertEquals(busy.fault, "busy");
    assertEquals(await ask(client, address), 1);
    assertEquals(await ask(client, address, { piece: 1, at: PIECE }), 1);
  } finally {
    client.close();
  }
  assertEquals(server.connections(), 1, "one connection for the refusal and both ranges");
});

Deno.test("requests past the native ones the thread pool may hold go through fetch", async () => {
  await using server = scriptedServer(async (request, conn) => {
    const { start, end } = rangeOf(request);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await writeAll(conn, answer(206, `bytes ${start}-${end - 1}/${SIZE}`, end - start));
    await writeAll(conn, body.subarray(start, end));
    return true;
  });
  const client = new RangeClient();
  const target = new Uint8Array(new ArrayBuffer(SIZE));
  try {
    const requests = Array.from(
      { length: 20 },
      () => ask(client, `http://127.0.0.1:${server.port}`, { piece: 1, target, at: PIECE }),
    );
    assertEquals(await Promise.all(requests), new Array(20).fill(1));
  } finally {
    client.close();
  }
  // Deno's fetch names itself; the native requests do not.
  const viaFetch = server.requests.filter((request) => /user-agent/i.test(request));
  assertEquals(server.requests.length, 20);
  assertEquals(viaFetch.length, 4);
});

Deno.test("requestPieces faults a source whose address is no URL: unreachable", async () => {
  const client = new RangeClient();
  try {
    const error = await assertRejects(() => ask(client, "http://[not an address"), SourceError);
    assertEquals(error.fault, "unreachable");
  } finally {
    client.close();
  }
});
