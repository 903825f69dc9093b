/** The rules of stored origin responses: what a 304 refreshes (RFC 9111 §4.3.4, §3.2). */
import { originMeta, refreshedMeta, storedHeaders } from "../../p2p/origin/origin_meta.ts";
import { Revalidated } from "../../p2p/origin/revalidated.ts";
import { assert, assertEquals } from "../helpers/assert.ts";

const stored = originMeta(
  "https://a.example/x",
  new Response("body", {
    headers: {
      etag: '"1"',
      "cache-control": "max-age=1",
      date: "Sun, 06 Dec 2026 10:00:00 GMT",
      "content-length": "4",
      "x-kept": "yes",
      vary: "accept-encoding",
    },
  }),
);

Deno.test("a 304 replaces the headers it carries, but the body's length and what is never stored", () => {
  const refreshed = refreshedMeta(
    stored,
    new Headers({
      "cache-control": "max-age=60",
      date: "Sun, 06 Dec 2026 11:00:00 GMT",
      "content-length": "999",
      "set-cookie": "a=b",
      connection: "x-hop",
      "x-hop": "hop",
      "keep-alive": "timeout=5",
      "x-new": "1",
    }),
  );
  const headers = storedHeaders(refreshed);
  assertEquals(headers.get("cache-control"), "max-age=60");
  assertEquals(headers.get("date"), "Sun, 06 Dec 2026 11:00:00 GMT");
  assertEquals(headers.get("content-length"), "4");
  assertEquals([headers.get("etag"), headers.get("x-kept"), headers.get("x-new")], [
    '"1"',
    "yes",
    "1",
  ]);
  for (const never of ["set-cookie", "x-hop", "keep-alive", "connection"]) {
    assertEquals(headers.get(never), null, never);
  }
  // The same download: its URL, status and when it was fetched stay.
  assertEquals(
    (refreshed.origin as { fetchedAt: number }).fetchedAt,
    (stored.origin as { fetchedAt: number }).fetchedAt,
  );
});

Deno.test("a 304 with no Date dates the refreshed response now", () => {
  const before = Date.now() - 1000;
  const headers = storedHeaders(refreshedMeta(stored, new Headers({ etag: '"1"' })));
  assert(Date.parse(headers.get("date")!) >= before, headers.get("date")!);
});

Deno.test("refreshed metadata holds while the same download is held, not after a new one", () => {
  const revalidated = new Revalidated();
  const refreshed = refreshedMeta(stored, new Headers({ "x-new": "1" }));
  assertEquals(revalidated.current("id", stored), stored);
  revalidated.record("id", refreshed);
  assertEquals(revalidated.current("id", stored), refreshed);
  const again = { origin: { ...(stored.origin as object), fetchedAt: 1 } };
  assertEquals(revalidated.current("id", again), again);
  assertEquals(revalidated.current("id", stored), stored);
});
