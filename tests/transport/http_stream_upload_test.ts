import { connect, FileSystemPeer, serveHttp } from "../../mod.ts";
import { assertEquals } from "../helpers/assert.ts";
import { startHttp } from "../helpers/http_fixture.ts";
import { checkPattern, patternChunk } from "../helpers/pattern.ts";

const CHUNK = 64 * 1024;

function patternStream(chunks: number): ReadableStream<Uint8Array> {
  let index = 0;
  return new ReadableStream({
    pull(controller) {
      if (index === chunks) controller.close();
      else controller.enqueue(patternChunk(index++, CHUNK));
    },
  });
}

Deno.test("HTTP PUT of a body of no declared length stores it whole, with its TTL", async () => {
  await using http = startHttp();
  const response = await http.fetch("/v1/objects/chunked?ttl=1000", {
    method: "PUT",
    body: patternStream(96),
  });
  assertEquals(response.status, 201);
  const info = await response.json();
  assertEquals(info.size, 96 * CHUNK);
  assertEquals(info.expiresAt, info.createdAt + 1000);
  await using client = await connect(http.peer);
  using handle = await client.get("chunked");
  assertEquals(checkPattern(handle.bytes, CHUNK), -1);
  const empty = await http.fetch("/v1/objects/empty", {
    method: "PUT",
    body: ReadableStream.from([]),
  });
  assertEquals((await empty.json()).size, 0);
});

Deno.test("HTTP PUT of a body of no declared length into a peer without memfds copies it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "packice-http-" });
  try {
    await using peer = await FileSystemPeer.open({ dir, sweepInterval: 0 });
    await using server = serveHttp(peer, { port: 0 });
    const response = await fetch(`${server.url}/v1/objects/f`, {
      method: "PUT",
      body: patternStream(40),
    });
    assertEquals(response.status, 201);
    await using client = await connect(peer);
    using handle = await client.get("f");
    assertEquals(checkPattern(handle.bytes, CHUNK), -1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
