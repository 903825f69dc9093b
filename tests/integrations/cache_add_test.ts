import { connect } from "../../mod.ts";
import { PackiceCacheStorage } from "../../integrations/mod.ts";
import { assertEquals, assertRejects } from "../helpers/assert.ts";
import { startOrigin } from "./origin.ts";

Deno.test("add and addAll fetch and store, all or nothing", async (t) => {
  await using client = await connect();
  await using origin = startOrigin({
    "/a": { body: "a", headers: { "x-from": "origin" } },
    "/b": { body: "b" },
    "/partial": { body: "p", status: 206 },
    "/star": { body: "s", headers: { vary: "*" } },
  });
  const cache = await new PackiceCacheStorage(client).open("add");

  await t.step("add stores what the origin answers", async () => {
    await cache.add(`${origin.url}/a`);
    const response = await cache.match(`${origin.url}/a`);
    assertEquals(response?.headers.get("x-from"), "origin");
    assertEquals(await response?.text(), "a");
  });

  await t.step("addAll stores every response", async () => {
    await cache.addAll([`${origin.url}/b`, new Request(`${origin.url}/a?x=1`)]);
    assertEquals((await cache.keys()).length, 3);
  });

  await t.step("addAll with a failing response stores none of them", async () => {
    await cache.delete(`${origin.url}/b`);
    for (const bad of ["/missing", "/partial", "/star"]) {
      await assertRejects(
        () => cache.addAll([`${origin.url}/b`, `${origin.url}${bad}`]),
        TypeError,
      );
    }
    assertEquals(await cache.match(`${origin.url}/b`), undefined);
    assertEquals((await cache.keys()).length, 2);
    // The bodies of what was fetched before the failure are not left behind.
    const bodies = (await client.list()).filter((info) => info.id.includes(".b."));
    assertEquals(bodies.length, 2);
  });

  await t.step("addAll refuses a request twice in one batch", async () => {
    await assertRejects(
      () => cache.addAll([`${origin.url}/b`, `${origin.url}/b#again`]),
      DOMException,
      "twice",
    );
    assertEquals(await cache.match(`${origin.url}/b`), undefined);
  });

  await t.step("add refuses what cannot be cached without fetching it", async () => {
    const before = origin.requests.length;
    await assertRejects(
      () => cache.add(new Request(`${origin.url}/a`, { method: "POST", body: "x" })),
      TypeError,
    );
    assertEquals(origin.requests.length, before);
  });
});
