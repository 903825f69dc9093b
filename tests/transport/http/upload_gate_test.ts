/**
 * Upload slots and relays of the HTTP server, as daemons ask each other
 * (`?local=1`): a short line instead of a 503, ranges of an object still
 * arriving sent from lent memory, and a repeated range refused by a holder
 * of the sealed object only.
 */
import type { LentRange } from "../../../transport/http/upload_gate.ts";
import { startHttp } from "../../helpers/http_fixture.ts";
import { assertEquals } from "../../helpers/assert.ts";
import { eventually } from "../../helpers/eventually.ts";

const SIZE = 256 << 10;
const bytes = new Uint8Array(SIZE).map((_, i) => (i * 7 + (i >> 10)) & 255);
// 256 KB/s with bursts of 64 KiB: a 128 KiB range takes a quarter of a second.
const limits = { maxUploads: 1, maxUploadRate: 256_000, repeatWindowMs: 400 };

/** GET of a range as another daemon asks it. */
function ask(url: string, id: string, start: number, end: number): Promise<Response> {
  return fetch(`${url}/v1/objects/${id}?local=1`, {
    headers: { range: `bytes=${start}-${end - 1}` },
  });
}

Deno.test("a daemon's request waits in line for the busy upload slot instead of a 503", async () => {
  await using http = startHttp(limits);
  await http.peer.putObject([bytes], SIZE, { id: "held" });
  const first = await ask(http.server.url, "held", 0, SIZE / 2);
  // The one slot is sending the first range; the second waits for it.
  const second = await ask(http.server.url, "held", SIZE / 2, SIZE);
  assertEquals([first.status, second.status], [206, 206]);
  assertEquals(new Uint8Array(await first.arrayBuffer()), bytes.subarray(0, SIZE / 2));
  assertEquals(new Uint8Array(await second.arrayBuffer()), bytes.subarray(SIZE / 2));
});

Deno.test("a holder of the sealed object refuses a range it is sending; a relay sends it again, from lent memory", async () => {
  await using http = startHttp({ ...limits, maxUploads: 2 });
  await http.peer.putObject([bytes], SIZE, { id: "held" });
  const sending = await ask(http.server.url, "held", 0, SIZE / 2);
  const repeat = await ask(http.server.url, "held", 0, SIZE / 2);
  assertEquals([sending.status, repeat.status], [206, 503]);
  await Promise.all([sending.body?.cancel(), repeat.body?.cancel()]);

  // A relay: the object is on its way here, its ranges lent, never copied.
  let out = 0;
  const partial = {
    size: SIZE,
    read(): Uint8Array {
      throw new Error("A relay's range is lent, not copied");
    },
    lend(start: number, end: number): LentRange {
      out++;
      let back = false;
      return {
        bytes: bytes.subarray(start, end),
        done: () => void (back || (back = true, out--)),
      };
    },
  };
  Object.assign(http.peer, { partial: (id: string) => id === "arriving" ? partial : undefined });
  const one = await ask(http.server.url, "arriving", 0, SIZE / 2);
  const two = await ask(http.server.url, "arriving", 0, SIZE / 2);
  assertEquals([one.status, two.status], [206, 206]);
  assertEquals(out, 2);
  for (const response of [one, two]) {
    assertEquals(new Uint8Array(await response.arrayBuffer()), bytes.subarray(0, SIZE / 2));
  }
  // Each loan is given back once its response is out.
  await eventually(() => out === 0, "every loan is back");
});

Deno.test("a relay keeps a line of one a slot; a holder of the sealed object a longer one", async () => {
  await using http = startHttp(limits);
  await http.peer.putObject([bytes], SIZE, { id: "held" });
  const partial = {
    size: SIZE,
    read: (start: number, end: number) => bytes.slice(start, end),
  };
  Object.assign(http.peer, { partial: (id: string) => id === "arriving" ? partial : undefined });
  const piece = SIZE / 16;
  for (const [id, line] of [["arriving", 1], ["held", 4]] as const) {
    // A quarter of a second to send: 64 KiB past the burst.
    const sending = await ask(http.server.url, id, 0, SIZE / 2);
    // Each asks for a range of its own in the other half: no repeat.
    const asked = Array.from(
      { length: line + 1 },
      (_, i) => ask(http.server.url, id, SIZE / 2 + i * piece, SIZE / 2 + (i + 1) * piece),
    );
    // The one beyond the line is told at once; the others wait their turn.
    const statuses = [];
    for (const response of [sending, ...await Promise.all(asked)]) {
      statuses.push(response.status);
      await response.body?.cancel();
    }
    assertEquals(statuses.sort(), [...new Array(line + 1).fill(206), 503].sort(), id);
  }
});
