/**
 * The HTTP list route in pages (`GET /v1/objects?limit=&after=`, see
 * core/list_page.ts), the bare route's array streamed a page at a time,
 * and `HttpPeer` pulling pages.
 */
import { assert, assertEquals, assertRejects } from "../../helpers/assert.ts";
import { Client, HttpPeer, InvalidArgumentError, type ObjectInfo } from "../../../mod.ts";
import { startHttp } from "../../helpers/http_fixture.ts";

function ids(infos: readonly ObjectInfo[]): string[] {
  return infos.map((info) => info.id);
}

Deno.test("GET /v1/objects pages in put order, deletes and puts between pages skip nothing", async () => {
  await using fixture = startHttp();
  const put: string[] = [];
  for (let i = 0; i < 25; i++) {
    put.push(await new Client(fixture.peer).put(new Uint8Array([i])));
  }
  const first = await (await fixture.fetch("/v1/objects?limit=10")).json();
  assertEquals(ids(first.objects), put.slice(0, 10));
  assert(typeof first.next === "string");
  // The cursor's own object deleted, and one put meanwhile.
  await new Client(fixture.peer).delete(put[9]!);
  await new Client(fixture.peer).delete(put[10]!);
  const late = await new Client(fixture.peer).put(new Uint8Array([99]));
  const second = await (await fixture.fetch(`/v1/objects?limit=10&after=${first.next}`)).json();
  assertEquals(ids(second.objects), put.slice(11, 21));
  const third = await (await fixture.fetch(`/v1/objects?limit=10&after=${second.next}`)).json();
  assertEquals(ids(third.objects), [...put.slice(21), late]);
  assertEquals(third.next, undefined);

  // The bare route: the whole array, as before.
  const whole = await (await fixture.fetch("/v1/objects")).json();
  assertEquals(ids(whole), [...put.filter((_, i) => i !== 9 && i !== 10), late]);
});

Deno.test("GET /v1/objects with a bad cursor or limit answers 400 INVALID_ARGUMENT", async () => {
  await using fixture = startHttp();
  for (const query of ["limit=0", "limit=100000", "limit=ten", "after=nope", "after=1"]) {
    const response = await fixture.fetch(`/v1/objects?${query}`);
    assertEquals(response.status, 400, query);
    assertEquals((await response.json()).error.code, "INVALID_ARGUMENT", query);
  }
  assertEquals((await fixture.fetch("/v1/objects?limit=5")).status, 200);
});

Deno.test("a bare GET /v1/objects streams an array of many pages; HttpPeer pulls pages", async () => {
  await using fixture = startHttp();
  const local = new Client(fixture.peer);
  const put: string[] = [];
  for (let i = 0; i < 2_500; i++) put.push(await local.put(new Uint8Array(1)));
  const response = await fixture.fetch("/v1/objects");
  assertEquals(response.headers.get("content-type"), "application/json");
  assertEquals(ids(await response.json()), put);

  await using client = new Client(await HttpPeer.connect(fixture.server.url));
  assertEquals(ids(await client.list()), put);
  const walked: string[] = [];
  for await (const info of client.objects({ pageSize: 700 })) walked.push(info.id);
  assertEquals(walked, put);
  await assertRejects(() => client.objects({ pageSize: 20_000 }).next(), InvalidArgumentError);
});
