import { connect } from "../../mod.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { startHttp } from "../helpers/http_fixture.ts";

Deno.test("HTTP PUT ?ttl= gives the object a TTL; the upload's lease keeps the server's", async () => {
  await using http = startHttp();
  const put = await http.fetch("/v1/objects/t?ttl=500", { method: "PUT", body: "hello" });
  assertEquals(put.status, 201);
  const info = await put.json();
  assertEquals(info.expiresAt, info.createdAt + 500);
  const plain = await http.fetch("/v1/objects/p", { method: "PUT", body: "kept" });
  assertEquals((await plain.json()).expiresAt, undefined);
  http.clock.advance(500);
  assertEquals((await http.fetch("/v1/objects/t")).status, 404);
  assertEquals((await http.fetch("/v1/objects/p")).status, 200);
});

Deno.test("Client.put with a TTL over HTTP expires the object, by header and by lease", async () => {
  await using http = startHttp();
  await using client = await connect(http.server.url);
  const small = await client.put("abc", { ttl: 1000 });
  await using writer = await client.create(3, { ttl: 1000 });
  await writer.write(new Uint8Array(3));
  await writer.seal();
  http.clock.advance(1000);
  assertEquals(await client.has(small), false);
  assertEquals(await client.has(writer.id), false);
});

Deno.test("/metrics counts hits of a memory peer, once per family", async () => {
  await using http = startHttp();
  await using client = await connect(http.server.url);
  const id = await client.put("x");
  for (let i = 0; i < 3; i++) (await http.fetch(`/v1/objects/${id}`)).body?.cancel();
  await (await http.fetch("/v1/objects/absent")).body?.cancel();
  const text = await (await http.fetch("/metrics")).text();
  assert(/^packice_hits_total 3$/m.test(text), text);
  assert(/^packice_misses_total 1$/m.test(text), text);
  assertEquals(text.match(/^# TYPE packice_hits_total /gm)?.length, 1);
  assertEquals((await client.metrics()).hits_total, 3);
});

Deno.test("Client.metrics() over HTTP reads the server's /metrics", async () => {
  await using http = startHttp();
  await using client = await connect(http.server.url);
  const id = await client.put("x");
  (await client.get(id)).close();
  const figures = await client.metrics();
  assertEquals(figures.objects, 1);
  assertEquals(figures.hits_total, 1);
  assertEquals(figures['http_requests_total{route="POST /v1/objects",status="201"}'], 1);
});
