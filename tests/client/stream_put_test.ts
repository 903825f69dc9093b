import { connect, MemoryPeer, serveHttp } from "../../mod.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { checkPattern } from "../helpers/pattern.ts";
import { spawnDaemon, testInSocketDir } from "../helpers/uds_daemon.ts";

const MiB = 1 << 20;
const child = new URL("../helpers/stream_put_child.ts", import.meta.url).pathname;

async function putFromChild(target: string, mib: number): Promise<{ id: string; growth: number }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--expose-gc", child, target, String(mib)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(output.stderr);
  assertEquals(output.code, 0, err);
  return JSON.parse(new TextDecoder().decode(output.stdout));
}

testInSocketDir(
  "a stream of 256 MiB of unknown length goes to a daemon with little client memory",
  async (dir) => {
    const path = `${dir}/p.sock`;
    await using _daemon = await spawnDaemon(path, ["--capacity", "1GiB"]);
    const { id, growth } = await putFromChild(path, 256);
    assert(growth < 48 * MiB, `client RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
    await using client = await connect(path);
    using handle = await client.get(id);
    assertEquals(handle.size, 256 * MiB);
    assertEquals(checkPattern(handle.bytes, 64 * 1024), -1);
  },
);

Deno.test("a stream of unknown length goes over HTTP with little client memory", async () => {
  await using peer = new MemoryPeer({ capacity: 512 * MiB, sweepInterval: 0 });
  await using server = serveHttp(peer, { port: 0 });
  const { id, growth } = await putFromChild(server.url, 256);
  // The HTTP client's buffers, and chunks read from the spool that wait for a
  // collection, come on top; they do not grow with the stream.
  assert(growth < 96 * MiB, `client RSS grew by ${(growth / MiB).toFixed(1)} MiB`);
  await using client = await connect(peer);
  using handle = await client.get(id);
  assertEquals(handle.size, 256 * MiB);
  assertEquals(checkPattern(handle.bytes, 64 * 1024), -1);
});

Deno.test("a stream longer than what is gathered in memory goes into a MemoryPeer whole", async () => {
  await using peer = new MemoryPeer({ sweepInterval: 0 });
  await using client = await connect(peer);
  let index = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (index === 160) controller.close();
      else controller.enqueue(new Uint8Array(64 * 1024).fill(index++ & 255));
    },
  });
  const id = await client.put(stream, { meta: { kind: "stream" }, ttl: 60_000 });
  using handle = await client.get(id);
  assertEquals(handle.size, 160 * 64 * 1024);
  assertEquals(handle.meta, { kind: "stream" });
  assertEquals(handle.info.expiresAt, handle.info.createdAt + 60_000);
  assertEquals(handle.bytes[10 * MiB - 1], 159);
});
