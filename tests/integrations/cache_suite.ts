/**
 * The Web Cache API's semantics, checked against a PackiceCacheStorage over
 * any client: the same steps run in process, over a Unix socket and over HTTP.
 */
import type { Client } from "../../mod.ts";
import { PackiceCacheStorage } from "../../integrations/mod.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";

const URL_A = "https://example.com/a";

/** Runs every semantic step on caches of `client`, each in a cache of its own. */
export async function cacheSemantics(t: Deno.TestContext, client: Client): Promise<void> {
  const caches = new PackiceCacheStorage(client, { namespace: `t${crypto.randomUUID()}` });
  let n = 0;
  const step = (name: string, fn: (cache: Awaited<ReturnType<typeof caches.open>>) => unknown) =>
    t.step(name, async () => {
      await fn(await caches.open(`c${n++}`));
    });

  await step(
    "a string key is a GET of that URL; match gives status, text and headers",
    async (cache) => {
      await cache.put(
        URL_A,
        new Response("hello", {
          status: 201,
          statusText: "Made",
          headers: { "content-type": "text/plain", "x-a": "1" },
        }),
      );
      const response = await cache.match(new Request(URL_A));
      assert(response);
      assertEquals(response.status, 201);
      assertEquals(response.statusText, "Made");
      assertEquals(response.headers.get("x-a"), "1");
      assertEquals(await response.text(), "hello");
      assertEquals(await cache.match("https://example.com/b"), undefined);
    },
  );

  await step("the fragment is ignored", async (cache) => {
    await cache.put(`${URL_A}#one`, new Response("x"));
    assertEquals(await (await cache.match(`${URL_A}#two`))?.text(), "x");
    assertEquals((await cache.keys())[0]?.url, URL_A);
  });

  await step("ignoreSearch", async (cache) => {
    await cache.put(`${URL_A}?v=1`, new Response("1"));
    assertEquals(await cache.match(`${URL_A}?v=2`), undefined);
    assertEquals(await (await cache.match(`${URL_A}?v=2`, { ignoreSearch: true }))?.text(), "1");
    assertEquals(await (await cache.match(URL_A, { ignoreSearch: true }))?.text(), "1");
  });

  await step("ignoreMethod", async (cache) => {
    await cache.put(URL_A, new Response("x"));
    const post = new Request(URL_A, { method: "POST" });
    assertEquals(await cache.match(post), undefined);
    assertEquals(await (await cache.match(post, { ignoreMethod: true }))?.text(), "x");
    assertEquals(await cache.delete(post), false);
    assertEquals(await cache.delete(post, { ignoreMethod: true }), true);
  });

  await step("Vary is honoured, and ignoreVary ignores it", async (cache) => {
    const en = new Request(URL_A, { headers: { "accept-language": "en" } });
    const fr = new Request(URL_A, { headers: { "accept-language": "fr" } });
    await cache.put(en, new Response("hello", { headers: { vary: "Accept-Language" } }));
    await cache.put(fr, new Response("bonjour", { headers: { vary: "Accept-Language" } }));
    assertEquals(await (await cache.match(en))?.text(), "hello");
    assertEquals(await (await cache.match(fr))?.text(), "bonjour");
    assertEquals(await cache.match(URL_A), undefined);
    assertEquals(await texts(await cache.matchAll(URL_A, { ignoreVary: true })), [
      "hello",
      "bonjour",
    ]);
    assertEquals(await (await cache.match(URL_A, { ignoreVary: true }))?.text(), "hello");
  });

  await step("keys keep only the request headers Vary names, never credentials", async (cache) => {
    const request = new Request(URL_A, {
      headers: { accept: "text/plain", authorization: "Bearer secret" },
    });
    await cache.put(request, new Response("x", { headers: { vary: "Accept" } }));
    const [key] = await cache.keys();
    assertEquals([...key!.headers], [["accept", "text/plain"]]);
    assertEquals(await (await cache.match(request))?.text(), "x");
  });

  await step("put refuses what the specification refuses, with a TypeError", async (cache) => {
    const post = new Request(URL_A, { method: "POST", body: "x" });
    await assertRejects(() => cache.put(post, new Response("x")), TypeError, "GET");
    await assertRejects(() => cache.put("ftp://example.com/", new Response("x")), TypeError);
    await assertRejects(
      () => cache.put(URL_A, new Response("x", { status: 206 })),
      TypeError,
      "206",
    );
    await assertRejects(
      () => cache.put(URL_A, new Response("x", { headers: { vary: "Accept, *" } })),
      TypeError,
      "Vary",
    );
    const used = new Response("x");
    await used.text();
    await assertRejects(() => cache.put(URL_A, used), TypeError, "used");
    assertEquals((await cache.keys()).length, 0);
  });

  await step(
    "put replaces the entry it matches and moves it last; keys keep insertion order",
    async (cache) => {
      for (const path of ["1", "2", "3"]) {
        await cache.put(`https://example.com/${path}`, new Response(path));
      }
      await cache.put("https://example.com/1", new Response("one"));
      assertEquals((await cache.keys()).map((request) => new URL(request.url).pathname), [
        "/2",
        "/3",
        "/1",
      ]);
      assertEquals(await (await cache.match("https://example.com/1"))?.text(), "one");
      assertEquals(await texts(await cache.matchAll()), ["2", "3", "one"]);
    },
  );

  await step("delete says whether it removed something", async (cache) => {
    await cache.put(URL_A, new Response("x"));
    assertEquals(await cache.delete(URL_A), true);
    assertEquals(await cache.delete(URL_A), false);
    assertEquals(await cache.match(URL_A), undefined);
  });

  await step("a body of known length streams in and out, byte for byte", async (cache) => {
    const size = (3 << 20) + 17;
    const bytes = new Uint8Array(size).map((_, i) => i * 7);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= size) return controller.close();
        const end = Math.min(size, sent + 100_000);
        controller.enqueue(bytes.slice(sent, end));
        sent = end;
      },
    });
    await cache.put(
      URL_A,
      new Response(body, { headers: { "content-length": String(size) } }),
    );
    const response = await cache.match(URL_A);
    assertEquals(new Uint8Array(await response!.arrayBuffer()), bytes);
  });

  await step("a body of known length is taken chunk by chunk, never read ahead", async (cache) => {
    // The source refills one buffer for every chunk: a reader that held chunks, or read
    // ahead of what it stored, would store the last fill many times over.
    const chunk = new Uint8Array(256 << 10);
    const count = 40;
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled === count) return controller.close();
        controller.enqueue(chunk.fill(pulled++));
      },
    }, { highWaterMark: 0 });
    await cache.put(
      URL_A,
      new Response(body, { headers: { "content-length": String(count * chunk.length) } }),
    );
    const stored = new Uint8Array(await (await cache.match(URL_A))!.arrayBuffer());
    for (let i = 0; i < count; i++) assertEquals(stored[i * chunk.length + 7], i);
  });

  await step(
    "a body longer than its Content-Length is refused and nothing is stored",
    async (cache) => {
      await assertRejects(
        () => cache.put(URL_A, new Response("too long", { headers: { "content-length": "3" } })),
        TypeError,
        "longer",
      );
      assertEquals((await cache.keys()).length, 0);
    },
  );

  await step("a body without a length, and responses without bodies", async (cache) => {
    const body = ReadableStream.from([new Uint8Array([1, 2]), new Uint8Array([3])]);
    await cache.put(URL_A, new Response(body));
    assertEquals(
      new Uint8Array(await (await cache.match(URL_A))!.arrayBuffer()),
      new Uint8Array([1, 2, 3]),
    );
    await cache.put("https://example.com/none", new Response(null, { status: 204 }));
    const none = await cache.match("https://example.com/none");
    assertEquals(none?.status, 204);
    assertEquals(none?.body, null);
  });

  await step("an old reader keeps its body while put replaces the entry", async (cache) => {
    await cache.put(URL_A, new Response("old"));
    const old = await cache.match(URL_A);
    await cache.put(URL_A, new Response("new"));
    assertEquals(await old!.text(), "old");
    assertEquals(await (await cache.match(URL_A))!.text(), "new");
  });

  await step("a cancelled body releases its lease", async (cache) => {
    await cache.put(URL_A, new Response(new Uint8Array(1 << 20)));
    const leases = async () => (await client.peer.stats()).leases;
    await eventually(async () => (await leases()) === 0, "no lease is held");
    const response = await cache.match(URL_A);
    await eventually(async () => (await leases()) === 1, "the body is leased");
    const reader = response!.body!.getReader();
    await reader.read();
    await reader.cancel();
    await eventually(async () => (await leases()) === 0, "the body's lease ends");
  });

  await step("matchHandle gives the body as an object handle to read in place", async (cache) => {
    await cache.put(URL_A, new Response("in place", { headers: { "x-a": "1" } }));
    const found = await cache.matchHandle(URL_A);
    assertEquals(found?.response.headers.get("x-a"), "1");
    assertEquals(new TextDecoder().decode(found?.handle?.bytes), "in place");
    await found?.handle?.close();
    assertEquals(await cache.matchHandle("https://example.com/none"), undefined);
  });

  await t.step("CacheStorage: open, has, keys, match, delete", async () => {
    const storage = new PackiceCacheStorage(client, { namespace: `s${crypto.randomUUID()}` });
    assertEquals(await storage.has("one"), false);
    const one = await storage.open("one");
    const two = await storage.open("two");
    await one.put(URL_A, new Response("from one"));
    await two.put(URL_A, new Response("from two"));
    await two.put("https://example.com/b", new Response("b"));
    assertEquals(await storage.keys(), ["one", "two"]);
    assertEquals(await storage.has("one"), true);
    assertEquals(await (await storage.match(URL_A))?.text(), "from one");
    assertEquals(await (await storage.match(URL_A, { cacheName: "two" }))?.text(), "from two");
    assertEquals(await (await storage.match("https://example.com/b"))?.text(), "b");
    const before = (await client.list()).length;
    assertEquals(await storage.delete("two"), true);
    assertEquals(await storage.delete("two"), false);
    assertEquals(await storage.keys(), ["one"]);
    assert((await client.list()).length < before, "the deleted cache's objects are gone");
    const again = await storage.open("two");
    assertEquals(await again.match(URL_A), undefined);
    // Another storage object on the same peer and namespace sees the same caches.
    const other = new PackiceCacheStorage(client, { namespace: `s${crypto.randomUUID()}` });
    assertEquals(await other.keys(), []);
  });
}

function texts(responses: readonly Response[]): Promise<string[]> {
  return Promise.all(responses.map((response) => response.text()));
}
