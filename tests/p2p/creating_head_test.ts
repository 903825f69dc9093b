/**
 * HEAD answers as GET would of an object not sealed yet: one written here
 * under a CREATE lease is refused by both (409 NOT_SEALED), while `stat`
 * tells its state, CREATING. (One on its way from another daemon or an
 * origin, which a GET streams, answers HEAD 200 CREATING: see
 * `arriving_stat_test.ts`.)
 */
import { Access, connect, type ObjectInfo } from "../../mod.ts";
import { assertEquals } from "../helpers/assert.ts";
import { startHttp } from "../helpers/http_fixture.ts";
import { startCluster, TOKEN } from "./cluster_daemons.ts";

/** The statuses of HEAD and GET of `id`, and the state `/info` tells. */
async function answers(url: string, id: string, headers: Record<string, string> = {}) {
  const head = await fetch(`${url}/v1/objects/${id}`, { method: "HEAD", headers });
  const get = await fetch(`${url}/v1/objects/${id}`, { headers });
  const code = get.ok ? (await get.body?.cancel(), undefined) : (await get.json()).error.code;
  const info = await fetch(`${url}/v1/objects/${id}/info`, { headers });
  const state = (await info.json() as ObjectInfo).state;
  return { head: head.status, get: get.status, code, state };
}

Deno.test("HEAD of an object written under a CREATE lease is refused as GET is", async () => {
  await using http = startHttp();
  const { lease } = await http.peer.acquire("w", Access.CREATE, { size: 3 });
  assertEquals(await answers(http.server.url, "w"), {
    head: 409,
    get: 409,
    code: "NOT_SEALED",
    state: "CREATING",
  });
  await http.peer.seal(lease.id);
  await http.peer.release(lease.id);
  assertEquals(await answers(http.server.url, "w"), {
    head: 200,
    get: 200,
    code: undefined,
    state: "SEALED",
  });
});

Deno.test("a cluster daemon: HEAD of an object its client is writing is refused as GET is", async () => {
  await using cluster = await startCluster(["a"]);
  const a = cluster.daemons[0]!;
  const auth = { authorization: `Bearer ${TOKEN}` };
  await using client = await connect(a.socket);
  await using writer = await client.create(3, { id: "w" });
  assertEquals((await client.stat("w")).state, "CREATING");
  assertEquals(await answers(a.url, "w", auth), {
    head: 409,
    get: 409,
    code: "NOT_SEALED",
    state: "CREATING",
  });
  await writer.write(new Uint8Array([1, 2, 3]));
  await writer.seal();
  assertEquals(await answers(a.url, "w", auth), {
    head: 200,
    get: 200,
    code: undefined,
    state: "SEALED",
  });
});
