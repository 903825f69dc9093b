import { ClosedError, connect, LeaseExpiredError, UnsupportedError } from "../../mod.ts";
import { PackiceCacheStorage } from "../../integrations/mod.ts";
import { assert, assertEquals, assertRejects, assertThrows } from "../helpers/assert.ts";
import { startHttp } from "../helpers/http_fixture.ts";
import { spawnDaemon, testInSocketDir } from "../helpers/uds_daemon.ts";
import { patternBytes } from "./http_body_pattern.ts";

const SIZE = 256 << 20;
const URL_OF_BODY = "https://example.com/weights.bin";

function freePort(): number {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  probe.close();
  return probe.addr.port;
}

/** A stream of the pattern, `SIZE` bytes in 1 MiB chunks, so the test never holds it whole. */
function patternStream(): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at === SIZE) return controller.close();
      controller.enqueue(patternBytes(at, 1 << 20));
      at += 1 << 20;
    },
  });
}

testInSocketDir(
  "a 256 MiB body read over HTTP streams in ranges: the reader's memory stays far below the object",
  async (dir) => {
    const port = freePort();
    const token = crypto.randomUUID();
    await using daemon = await spawnDaemon(`${dir}/packice.sock`, [
      "--http",
      `127.0.0.1:${port}`,
      "--token",
      token,
      "--capacity",
      "1GiB",
    ]);
    {
      await using local = await connect(daemon.path);
      const cache = await new PackiceCacheStorage(local).open("weights");
      await cache.put(
        URL_OF_BODY,
        new Response(patternStream(), { headers: { "content-length": String(SIZE) } }),
      );
      const found = await cache.matchHandle(URL_OF_BODY);
      await local.put(patternStream(), { id: "weights" });
      await found!.handle!.close();
    }
    // The origin of a URL client.fetch reads through the daemon.
    await using origin = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () =>
        new Response(patternStream(), {
          // Fresh for an hour: the measured fetch is answered from the stored object.
          headers: { "content-length": String(SIZE), "cache-control": "max-age=3600" },
        }),
    );
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--v8-flags=--expose-gc",
        new URL("http_body_child.ts", import.meta.url).pathname,
        `http://127.0.0.1:${port}`,
        token,
        URL_OF_BODY,
        "weights",
        `http://127.0.0.1:${origin.addr.port}/weights.bin`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(output.success, new TextDecoder().decode(output.stderr));
    const reads = new TextDecoder().decode(output.stdout).trim().split("\n").map((line) =>
      JSON.parse(line)
    );
    assertEquals(reads.map((read) => read.how), ["cache", "stream", "fetch"]);
    if (Deno.env.get("PACKICE_SHOW_READS")) console.log(reads);
    for (const read of reads) {
      const said = JSON.stringify(read);
      assertEquals([read.read, read.wrong], [SIZE, -1], said);
      // The whole object in memory first would raise the peak by 256 MiB before the first chunk.
      assert(read.firstPeakMiB < 64, said);
      assert(read.peakMiB < 64, said);
      // The first chunk comes long before the whole object could have been read.
      assert(read.firstMs < read.waitedMs / 4, said);
    }
  },
);

testInSocketDir(
  "over HTTP, bodies whose lease is lost in a daemon restart fail with LEASE_EXPIRED, never end short",
  async (dir) => {
    const path = `${dir}/packice.sock`;
    const port = freePort();
    const token = crypto.randomUUID();
    const flags = ["--http", `127.0.0.1:${port}`, "--token", token, "--capacity", "64MiB"];
    let daemon = await spawnDaemon(path, flags);
    try {
      await using client = await connect(`http://127.0.0.1:${port}`, { token });
      const size = 12 << 20;
      await client.put(new Uint8Array(size).fill(7), { id: "big" });
      const cache = await new PackiceCacheStorage(client).open("c");
      await cache.put("https://example.com/a", new Response(new Uint8Array(size).fill(8)));

      const stream = (await client.get("big", { lazy: true })).stream().getReader();
      const first = (await stream.read()).value!.length;
      assert(first > 0 && first < size, `a first chunk, not the whole: ${first}`);
      const body = (await cache.match("https://example.com/a"))!.body!.getReader();
      assertEquals((await body.read()).value?.[0], 8);

      await daemon.stop("SIGKILL");
      daemon = await spawnDaemon(path, flags);
      assertEquals(await client.has("big"), false, "a new, empty daemon answers");

      // The bytes read so far were not the whole object: the rest must not read as its end.
      await assertRejects(() => stream.read(), LeaseExpiredError);
      await assertRejects(() => body.read(), LeaseExpiredError);
    } finally {
      await daemon.stop();
    }
  },
);

Deno.test("a lazy handle over HTTP reads the ranges asked for and has no bytes to give whole", async () => {
  await using fixture = startHttp();
  await using client = await connect(fixture.server.url);
  await client.put("hello, world", { id: "h" });
  const handle = await client.get("h", { lazy: true });
  const error = assertThrows(() => handle.bytes, UnsupportedError);
  assert(error.message.includes("stream()"), error.message);
  const target = new Uint8Array(5);
  assertEquals(await handle.readInto(7, target), 5);
  assertEquals(new TextDecoder().decode(target), "world");
  assertEquals(await handle.readInto(12, target), 0);
  await handle.close();
  assertEquals(handle.bytes.length, 0);
  await assertRejects(() => handle.readInto(0, target), ClosedError);
  // Over a peer that maps the object, lazy changes nothing: the bytes are views.
  await using local = await connect();
  await local.put("hello", { id: "h" });
  using mapped = await local.get("h", { lazy: true });
  assertEquals(new TextDecoder().decode(mapped.bytes), "hello");
});
