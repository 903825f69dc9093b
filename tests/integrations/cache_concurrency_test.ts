import { connect, ManualClock, MemoryPeer } from "../../mod.ts";
import { PackiceCacheStorage } from "../../integrations/mod.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { socketDir, spawnDaemon } from "../helpers/uds_daemon.ts";

Deno.test("concurrent puts from two clients lose no entry, and readers see whole entries", async () => {
  await using a = await connect("memory://cache-concurrency");
  await using b = await connect("memory://cache-concurrency");
  const cacheA = await new PackiceCacheStorage(a).open("c");
  const cacheB = await new PackiceCacheStorage(b).open("c");
  const writes = [cacheA, cacheB].map(async (cache, who) => {
    for (let i = 0; i < 20; i++) {
      await cache.put(`https://example.com/${who}/${i}`, new Response(`${who}:${i}`));
      await cache.put(
        "https://example.com/x",
        new Response(`${who}`.repeat(1000), {
          headers: { "x-who": `${who}` },
        }),
      );
    }
  });
  let reads = 0;
  let done = false;
  const reader = (async () => {
    while (!done) {
      // An in-process peer answers in microtasks: let the writers' timers run.
      await new Promise((resolve) => setTimeout(resolve, 0));
      const response = await cacheB.match("https://example.com/x");
      if (response === undefined) continue;
      const who = response.headers.get("x-who")!;
      assertEquals(await response.text(), who.repeat(1000));
      reads++;
    }
  })();
  await Promise.all(writes);
  done = true;
  await reader;
  assert(reads > 0);
  assertEquals((await cacheA.keys()).length, 41);
  // Replaced bodies and old index versions are deleted: 41 bodies, at most 2 index versions.
  const ids = (await a.list()).map((info) => info.id);
  assertEquals(ids.filter((id) => id.includes(".b.")).length, 41);
  assert(ids.filter((id) => id.includes(".i.")).length <= 2);
});

Deno.test("processes sharing a daemon put into one Web Cache at once and lose nothing", async () => {
  const dir = await socketDir();
  try {
    await using daemon = await spawnDaemon(`${dir}/packice.sock`);
    const child = (args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL("cache_child.ts", import.meta.url).pathname, ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
    const outputs = await Promise.all([
      child(["put", daemon.path, "a", "15"]),
      child(["put", daemon.path, "b", "15"]),
    ]);
    for (const output of outputs) {
      assert(output.success, new TextDecoder().decode(output.stderr));
    }
    await using client = await connect(daemon.path);
    const cache = await new PackiceCacheStorage(client).open("shared");
    const urls = (await cache.keys()).map((request) => request.url).sort();
    assertEquals(urls.length, 31);
    const shared = await cache.match("https://example.com/shared");
    const tag = shared!.headers.get("x-tag")!;
    assert((await shared!.text()).startsWith(`${tag}:14:`));
    const read = await child(["read", daemon.path, "https://example.com/b/3"]);
    assertEquals(new TextDecoder().decode(read.stdout), "b:3\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a writer that dies holding the next index version does not block the others", async () => {
  const dir = await socketDir();
  try {
    await using daemon = await spawnDaemon(`${dir}/packice.sock`);
    await using client = await connect(daemon.path);
    const cache = await new PackiceCacheStorage(client).open("crash");
    await cache.put("https://example.com/1", new Response("1"));
    const index = (await client.list()).map((info) => info.id).find((id) =>
      /^packice-cache\..*\.i\.1$/.test(id)
    )!;
    // Another connection reserves the next version, as a writer about to commit does, and dies.
    const doomed = await connect(daemon.path);
    await doomed.create(2, { id: index.replace(/1$/, "2") });
    let stored = false;
    const put = cache.put("https://example.com/2", new Response("2")).then(() => stored = true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assertEquals(stored, false, "the put waits while the reservation lives");
    await doomed.close();
    await put;
    assertEquals((await cache.keys()).length, 2);
    assertEquals(await (await cache.match("https://example.com/2"))?.text(), "2");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("one daemon's Web Cache is shared by a Unix socket client and an HTTP client", async () => {
  const dir = await socketDir();
  try {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = probe.addr.port;
    probe.close();
    const token = crypto.randomUUID();
    await using daemon = await spawnDaemon(`${dir}/packice.sock`, [
      "--http",
      `127.0.0.1:${port}`,
      "--token",
      token,
    ]);
    const http = `http://127.0.0.1:${port}`;
    await using local = await connect(daemon.path);
    await using remote = await connect(http, { token });
    const written = await new PackiceCacheStorage(local).open("both");
    await written.put("https://example.com/x", new Response("over the socket"));
    const read = await new PackiceCacheStorage(remote).open("both");
    assertEquals(await (await read.match("https://example.com/x"))?.text(), "over the socket");
    await read.put("https://example.com/y", new Response("over HTTP"));
    assertEquals(await (await written.match("https://example.com/y"))?.text(), "over HTTP");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("entries outlive every TTL the cache uses for its reservations and locks", async () => {
  const clock = new ManualClock(1_000_000);
  await using peer = new MemoryPeer({ clock, sweepInterval: 0 });
  await using client = await connect(peer);
  const cache = await new PackiceCacheStorage(client).open("long");
  await cache.put("https://example.com/a", new Response("a"));
  await cache.put("https://example.com/b", new Response("b"));
  clock.advance(24 * 3600_000);
  await peer.sweep();
  assertEquals((await cache.keys()).length, 2);
  assertEquals(await (await cache.match("https://example.com/b"))?.text(), "b");
  assertEquals(await new PackiceCacheStorage(client).keys(), ["long"]);
});

Deno.test("storages opening one new name at once get the same cache", async () => {
  await using client = await connect();
  const storages = Array.from({ length: 4 }, () => new PackiceCacheStorage(client));
  const caches = await Promise.all(storages.map((storage) => storage.open("same")));
  await caches[0]!.put("https://example.com/x", new Response("x"));
  for (const cache of caches) {
    assertEquals(await (await cache.match("https://example.com/x"))?.text(), "x");
  }
  assertEquals(await storages[3]!.keys(), ["same"]);
});
