/**
 * A partial holder's verified pieces served by its native GET listener: a
 * range inside the pieces verified leaves from the listener (its own
 * descriptor of the memfd the object lands in) without the Deno server; a
 * range touching a piece not verified gets the Deno server's answer (503)
 * from the listener itself;
 * once the relay ends, requests get the Deno server's answer for an object
 * it no longer has.
 */
import { MemoryPeer, serveHttp } from "../../mod.ts";
import { loadNative } from "../../native/load.ts";
import { MemfdLanding } from "../../p2p/swarm/landing.ts";
import type { PartialObject, RelayedPieces, RelaySink } from "../../transport/http/upload_gate.ts";
import { assert, assertEquals } from "../helpers/assert.ts";

const PIECE = 64 << 10;
const PIECES = 4;

/** A memory peer that relays one object landing in `landing`, whose pieces `verified` lists. */
class RelayingPeer extends MemoryPeer {
  sink: RelaySink | undefined;
  readonly verified = new Set<number>();
  landing: MemfdLanding | undefined;

  relayTo(sink: RelaySink | undefined): void {
    this.sink = sink;
  }

  partial(id: string): PartialObject | undefined {
    const landing = this.landing;
    if (id !== "arriving" || landing === undefined) return undefined;
    const has = (start: number, end: number) => {
      for (let piece = Math.floor(start / PIECE); piece * PIECE < end; piece++) {
        if (!this.verified.has(piece)) return false;
      }
      return true;
    };
    return {
      size: landing.size,
      read: (start, end) => has(start, end) ? landing.range(start, end).slice() : undefined,
    };
  }
}

function pattern(length: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 7 + (i >> 9)) & 255;
  return bytes;
}

async function relayServed(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^packice_http_fast_relay_served_total (\d+)$/m.exec(text)?.[1]);
}

/** Connections the listener handed to the Deno server so far. */
async function handedOver(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(/^packice_http_fast_relayed_total (\d+)$/m.exec(text)?.[1]);
}

async function ask(fast: string, start: number, end: number): Promise<Response> {
  return await fetch(`${fast}/v1/objects/arriving?local=1`, {
    headers: { range: `bytes=${start}-${end - 1}` },
  });
}

Deno.test("a partial holder's native listener serves verified pieces, refuses others, and stops at the end", async () => {
  const native = loadNative()!;
  const peer = new RelayingPeer({ capacity: 64 << 20, sweepInterval: 0 });
  const server = serveHttp(peer, { port: 0, fastGet: { port: 0 }, maxUploads: 2 });
  const landing = MemfdLanding.open(native, PIECE * PIECES);
  let relay: RelayedPieces | undefined;
  try {
    peer.landing = landing;
    const bytes = pattern(PIECE * PIECES);
    assert(peer.sink !== undefined, "the listener took the relay sink");
    relay = peer.sink.relay("arriving", landing.fd, landing.size, PIECE);
    assert(relay !== undefined);
    const fast = server.fastUrl!;

    landing.write(0, bytes.subarray(0, 2 * PIECE));
    for (const piece of [0, 1]) {
      peer.verified.add(piece);
      relay.verified(piece);
    }
    // Inside pieces 0 and 1, across their boundary: from the listener.
    const inside = await ask(fast, PIECE - 100, PIECE + 100);
    assertEquals(inside.status, 206);
    assertEquals(
      inside.headers.get("content-range"),
      `bytes ${PIECE - 100}-${PIECE + 99}/${bytes.length}`,
    );
    assertEquals(inside.headers.get("content-type"), "application/octet-stream");
    assertEquals(
      new Uint8Array(await inside.arrayBuffer()),
      bytes.subarray(PIECE - 100, PIECE + 100),
    );
    assertEquals(await relayServed(server.url), 1);

    // Touching piece 2, not verified: the listener's own refusal, the Deno server's answer
    // (asked there directly) without a trip to it.
    const handed = await handedOver(server.url);
    const outside = await ask(fast, 2 * PIECE - 10, 2 * PIECE + 10);
    assertEquals(outside.status, 503);
    assertEquals(outside.headers.get("content-type"), "application/json");
    const refusal = await outside.json();
    assertEquals(refusal.error.code, "STORE_UNAVAILABLE");
    assertEquals(await handedOver(server.url), handed);
    const deno = await ask(server.url, 2 * PIECE - 10, 2 * PIECE + 10);
    assertEquals(deno.status, 503);
    assertEquals(await deno.json(), refusal);
    assertEquals(await relayServed(server.url), 1);
    // The connection serves the next request.
    const again = await fetch(`${fast}/v1/objects/arriving?local=1`, {
      headers: { range: `bytes=0-9` },
    });
    assertEquals(again.status, 206);
    await again.body?.cancel();
    assertEquals(await relayServed(server.url), 2);

    // A client's GET (no `local=1`) is not a relay's to answer.
    const client = await fetch(`${fast}/v1/objects/arriving`, { headers: { range: "bytes=0-9" } });
    assert(client.status !== 206, `a client's range: ${client.status}`);
    await client.body?.cancel();
    assertEquals(await relayServed(server.url), 2);

    // Ended (the fetch failed): the listener answers nothing of it; the Deno
    // server, which no longer has it either, says so.
    relay.end();
    peer.landing = undefined;
    const after = await ask(fast, 0, 100);
    assertEquals(after.status, 404);
    await after.body?.cancel();
    assertEquals(await relayServed(server.url), 2);
  } finally {
    relay?.end();
    landing.close();
    await server.close();
    await peer.close();
  }
});

Deno.test("a relay's range under way when the relay ends arrives whole", async () => {
  const native = loadNative()!;
  const peer = new RelayingPeer({ capacity: 64 << 20, sweepInterval: 0 });
  // Paced so that the range is still going out when the relay ends.
  const server = serveHttp(peer, { port: 0, fastGet: { port: 0 }, maxUploadRate: 4e6 });
  const size = 32 * PIECE;
  const landing = MemfdLanding.open(native, size);
  try {
    const bytes = pattern(size);
    landing.write(0, bytes);
    const relay = peer.sink!.relay("arriving", landing.fd, size, PIECE)!;
    for (let piece = 0; piece < 32; piece++) relay.verified(piece);
    const response = await ask(server.fastUrl!, 0, size);
    assertEquals(response.status, 206);
    // Ended, and the landing's own descriptors closed, while the body is under way.
    relay.end();
    landing.close();
    assertEquals(new Uint8Array(await response.arrayBuffer()), bytes);
  } finally {
    landing.close();
    await server.close();
    await peer.close();
  }
});

Deno.test("a relay's ranges keep to the upload slots: the listener's own bodies fill them too", async () => {
  const native = loadNative()!;
  const peer = new RelayingPeer({ capacity: 64 << 20, sweepInterval: 0 });
  const server = serveHttp(peer, {
    port: 0,
    fastGet: { port: 0 },
    maxUploadRate: 4e6,
    maxUploads: 1,
  });
  const size = 32 * PIECE;
  const landing = MemfdLanding.open(native, size);
  const relay = peer.sink!.relay("arriving", landing.fd, size, PIECE)!;
  try {
    const bytes = pattern(size);
    landing.write(0, bytes);
    peer.landing = landing;
    for (let piece = 0; piece < 32; piece++) {
      peer.verified.add(piece);
      relay.verified(piece);
    }
    // Half a second of the rate: under way while the second asks.
    const first = await ask(server.fastUrl!, 0, size);
    assertEquals(first.status, 206);
    // The listener's body fills the one slot: the Deno server's gate says busy.
    const second = await ask(server.fastUrl!, 0, PIECE);
    assertEquals(second.status, 503);
    assertEquals(second.headers.get("retry-after"), "1");
    await second.body?.cancel();
    assertEquals(await relayServed(server.url), 1);
    assertEquals(new Uint8Array(await first.arrayBuffer()), bytes);
    // Once it is out, the listener answers again.
    const third = await ask(server.fastUrl!, 0, PIECE);
    assertEquals(third.status, 206);
    assertEquals(new Uint8Array(await third.arrayBuffer()), bytes.subarray(0, PIECE));
    assertEquals(await relayServed(server.url), 2);
  } finally {
    relay.end();
    landing.close();
    await server.close();
    await peer.close();
  }
});
