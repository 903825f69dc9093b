import { connect } from "../../mod.ts";
import { createCachedFetch, PackiceCacheStorage } from "../../integrations/mod.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { startOrigin } from "./origin.ts";
import { socketDir, spawnDaemon } from "../helpers/uds_daemon.ts";

const DAY = "Wed, 21 Oct 2015 07:28:00 GMT";

async function setup() {
  const client = await connect();
  const origin = startOrigin({
    "/fresh": {
      body: "fresh",
      headers: { "cache-control": "max-age=3600", date: new Date().toUTCString() },
    },
    "/etag": { body: "tagged", headers: { etag: '"v1"' } },
    "/modified": { body: "dated", headers: { "last-modified": DAY } },
    "/plain": { body: "plain" },
    "/unconditional": {
      body: (asked) => asked === 0 ? "first" : "other",
      headers: { etag: '"u1"', "content-length": "5" },
      ignoresConditions: true,
    },
    "/nostore": { body: "secret", headers: { "cache-control": "no-store" } },
    "/error": { body: "broken", status: 500 },
  });
  const cache = await new PackiceCacheStorage(client).open("fetch");
  const fetch = createCachedFetch({ cache });
  return {
    origin,
    cache,
    fetch,
    text: async (path: string, init?: RequestInit) =>
      await (await fetch(`${origin.url}${path}`, init)).text(),
    [Symbol.asyncDispose]: async () => {
      await origin[Symbol.asyncDispose]();
      await client.close();
    },
  };
}

Deno.test("cachedFetch serves a fresh stored response without asking the origin", async () => {
  await using t = await setup();
  assertEquals(await t.text("/fresh"), "fresh");
  assertEquals(await t.text("/fresh"), "fresh");
  assertEquals(t.origin.count("/fresh"), 1);
});

Deno.test("cachedFetch revalidates with If-None-Match and serves the stored body on 304", async () => {
  await using t = await setup();
  assertEquals(await t.text("/etag"), "tagged");
  const again = await t.fetch(`${t.origin.url}/etag`);
  assertEquals(again.status, 200);
  assertEquals(again.url, `${t.origin.url}/etag`, "a revalidated response keeps its URL");
  assertEquals(await again.text(), "tagged");
  assertEquals(t.origin.requests, ["GET /etag", 'GET /etag "v1"']);
});

Deno.test("cachedFetch keeps the stored body when a 200 to its revalidation has the same strong ETag and length", async () => {
  await using t = await setup();
  assertEquals(await t.text("/unconditional"), "first");
  assertEquals(await t.text("/unconditional"), "first", "the ETag promised the same bytes");
  assertEquals(t.origin.requests, ["GET /unconditional", 'GET /unconditional "u1"']);
});

Deno.test("cachedFetch revalidates with If-Modified-Since", async () => {
  await using t = await setup();
  assertEquals(await t.text("/modified"), "dated");
  assertEquals(await t.text("/modified"), "dated");
  assertEquals(t.origin.requests, ["GET /modified", `GET /modified ${DAY}`]);
});

Deno.test("cachedFetch refetches a stale response without validators", async () => {
  await using t = await setup();
  assertEquals(await t.text("/plain"), "plain");
  assertEquals(await t.text("/plain"), "plain");
  assertEquals(t.origin.count("/plain"), 2);
});

Deno.test("cachedFetch honours init.cache", async (t) => {
  await using s = await setup();
  await t.step("force-cache serves any stored response", async () => {
    await s.text("/plain");
    assertEquals(await s.text("/plain", { cache: "force-cache" }), "plain");
    assertEquals(s.origin.count("/plain"), 1);
  });
  await t.step("only-if-cached serves stored and never goes out", async () => {
    assertEquals(await s.text("/plain", { cache: "only-if-cached" }), "plain");
    await assertRejects(
      () => s.fetch(`${s.origin.url}/etag`, { cache: "only-if-cached" }),
      TypeError,
    );
    assertEquals(s.origin.count("/etag"), 0);
  });
  await t.step("no-cache revalidates even a fresh response", async () => {
    await s.text("/fresh");
    await s.text("/fresh", { cache: "no-cache" });
    assertEquals(s.origin.count("/fresh"), 2);
  });
  await t.step("reload fetches and stores", async () => {
    await s.text("/fresh", { cache: "reload" });
    assertEquals(s.origin.count("/fresh"), 3);
    await s.text("/fresh");
    assertEquals(s.origin.count("/fresh"), 3);
  });
  await t.step("no-store fetches and leaves the cache alone", async () => {
    assertEquals(await s.text("/modified", { cache: "no-store" }), "dated");
    assertEquals(await s.cache.match(`${s.origin.url}/modified`), undefined);
  });
});

Deno.test("cachedFetch never stores non-GET requests, errors or no-store responses", async () => {
  await using t = await setup();
  assertEquals(await t.text("/nostore"), "secret");
  assertEquals(await t.text("/nostore"), "secret");
  assertEquals(t.origin.count("/nostore"), 2);
  const error = await t.fetch(`${t.origin.url}/error`);
  assertEquals(error.status, 500);
  await error.body?.cancel();
  await (await t.fetch(`${t.origin.url}/fresh`, { method: "POST", body: "x" })).body?.cancel();
  await (await t.fetch(`${t.origin.url}/fresh`, { headers: { "cache-control": "no-store" } }))
    .text();
  assertEquals((await t.cache.keys()).length, 0);
  assertEquals(t.origin.count("/fresh"), 2);
});

Deno.test("cachedFetch downloads a URL once when it is missed twice at once", async () => {
  await using client = await connect();
  await using origin = startOrigin({ "/slow": { body: "slow", delay: 200 } });
  const fetch = createCachedFetch({ cache: new PackiceCacheStorage(client).open("fetch") });
  const texts = await Promise.all(
    [1, 2, 3].map(async () => await (await fetch(`${origin.url}/slow`)).text()),
  );
  assertEquals(texts, ["slow", "slow", "slow"]);
  assertEquals(origin.count("/slow"), 1);
});

Deno.test("processes sharing a daemon download a URL they miss at once only once", async () => {
  // Fresh for a minute, so a child that starts after the other's download ends gets a hit too.
  await using origin = startOrigin({
    "/slow": { body: "slow", delay: 1500, headers: { "cache-control": "max-age=60" } },
  });
  const dir = await socketDir();
  try {
    await using daemon = await spawnDaemon(`${dir}/packice.sock`);
    const child = () =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("fetch_child.ts", import.meta.url).pathname,
          daemon.path,
          `${origin.url}/slow`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
    const outputs = await Promise.all([child(), child()]);
    for (const output of outputs) {
      assertEquals(new TextDecoder().decode(output.stdout), "slow\n");
    }
    assertEquals(origin.count("/slow"), 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cachedFetch without setup uses the peer PACKICE_TARGET names", async () => {
  await using origin = startOrigin({ "/page": { body: "page", headers: { etag: '"p"' } } });
  const dir = await socketDir();
  try {
    await using daemon = await spawnDaemon(`${dir}/packice.sock`);
    const script = `
      import { cachedFetch } from ${JSON.stringify(new URL("../../mod.ts", import.meta.url).href)};
      const response = await cachedFetch(${JSON.stringify(`${origin.url}/page`)}, {
        cache: "force-cache",
      });
      console.log(await response.text());
      const head = await cachedFetch(${JSON.stringify(`${origin.url}/page`)}, { method: "HEAD" });
      console.log(head.status);
    `;
    for (let run = 0; run < 2; run++) {
      // No exit called: its connection to the daemon must not keep the process running.
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["eval", "--ext=ts", script],
        env: { PACKICE_TARGET: daemon.path },
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(10_000),
      }).output();
      assertEquals(new TextDecoder().decode(output.stdout), "page\n200\n");
      assertEquals(output.code, 0, "it exited by itself");
    }
    assertEquals(origin.count("/page"), 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cachedFetch answers HEAD from a stored response", async () => {
  await using t = await setup();
  await t.text("/fresh");
  const head = await t.fetch(`${t.origin.url}/fresh`, { method: "HEAD" });
  assertEquals(head.status, 200);
  assertEquals(head.url, `${t.origin.url}/fresh`);
  assertEquals(head.headers.get("cache-control"), "max-age=3600");
  assertEquals(head.body, null);
  assertEquals(t.origin.count("/fresh"), 1);
});

Deno.test("a process killed mid-download leaves no lock: the next miss downloads at once", async () => {
  // The first request hangs; any later one is answered at once.
  await using origin = startOrigin({
    "/hang": { body: "done", delay: (asked) => asked === 0 ? 60_000 : 0 },
  });
  const dir = await socketDir();
  try {
    await using daemon = await spawnDaemon(`${dir}/packice.sock`);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("fetch_child.ts", import.meta.url).pathname,
        daemon.path,
        `${origin.url}/hang`,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await eventually(() => origin.count("/hang") === 1, "the child is downloading");
    child.kill("SIGKILL");
    await child.status;
    await using client = await connect(daemon.path);
    const fetch = createCachedFetch({ cache: new PackiceCacheStorage(client).open("fetch") });
    const started = performance.now();
    assertEquals(await (await fetch(`${origin.url}/hang`)).text(), "done");
    assert(performance.now() - started < 5_000, "the dead child's lock did not hold it up");
    assertEquals(origin.count("/hang"), 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cachedFetch stores a compressed response decoded, with headers that say so", async () => {
  await using client = await connect();
  const text = "compressible ".repeat(1000);
  const gzip = new Uint8Array(
    await new Response(new Blob([text]).stream().pipeThrough(new CompressionStream("gzip")))
      .arrayBuffer(),
  );
  await using origin = startOrigin({
    "/gz": { body: gzip, headers: { "content-encoding": "gzip", "cache-control": "max-age=60" } },
  });
  const cache = await new PackiceCacheStorage(client).open("fetch");
  const fetch = createCachedFetch({ cache });
  assertEquals(await (await fetch(`${origin.url}/gz`)).text(), text);
  const again = await fetch(`${origin.url}/gz`, { cache: "force-cache" });
  assertEquals(again.headers.get("content-encoding"), null);
  assertEquals(await again.text(), text);
  assertEquals(origin.count("/gz"), 1);
});

Deno.test("cachedFetch answers a Range from a stored response with a 206 of those bytes", async () => {
  await using t = await setup();
  await t.text("/fresh");
  const ranged = await t.fetch(`${t.origin.url}/fresh`, { headers: { range: "bytes=1-3" } });
  assertEquals([ranged.status, ranged.headers.get("content-range")], [206, "bytes 1-3/5"]);
  assertEquals(ranged.url, `${t.origin.url}/fresh`);
  assertEquals(await ranged.text(), "res");
  const past = await t.fetch(`${t.origin.url}/fresh`, { headers: { range: "bytes=9-" } });
  assertEquals([past.status, past.headers.get("content-range")], [416, "bytes */5"]);
  assertEquals(t.origin.count("/fresh"), 1);
});
