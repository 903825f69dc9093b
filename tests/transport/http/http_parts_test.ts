import { InvalidArgumentError, UnauthorizedError } from "../../../mod.ts";
import { isLoopback, parseListenAddress } from "../../../transport/http/address.ts";
import { BearerAuth } from "../../../transport/http/auth.ts";
import { noneMatch, parseRange } from "../../../transport/http/conditional.ts";
import { HttpStatusError } from "../../../transport/http/errors.ts";
import { RequestMetrics } from "../../../transport/http/metrics.ts";
import { headerJson } from "../../../transport/http/protocol.ts";
import { assert, assertEquals, assertThrows } from "../../helpers/assert.ts";

Deno.test("parseRange() reads one byte range, open-ended and suffix ranges", () => {
  assertEquals(parseRange(null, 10), undefined);
  assertEquals(parseRange("bytes=0-0", 10), { start: 0, end: 1 });
  assertEquals(parseRange("bytes=2-5", 10), { start: 2, end: 6 });
  assertEquals(parseRange("bytes=4-", 10), { start: 4, end: 10 });
  assertEquals(parseRange("bytes=8-100", 10), { start: 8, end: 10 });
  assertEquals(parseRange("bytes=-3", 10), { start: 7, end: 10 });
  assertEquals(parseRange("bytes=-30", 10), { start: 0, end: 10 });
  assertEquals(parseRange("items=0-1", 10), undefined, "other units are ignored");
  assertEquals(parseRange("bytes=0-1,3-4", 10), undefined, "several ranges: the whole object");
});

Deno.test("parseRange() refuses malformed and unsatisfiable ranges with 416", () => {
  for (const header of ["bytes=", "bytes=a-b", "bytes=5-2", "bytes=10-", "bytes=-0"]) {
    const error = assertThrows(() => parseRange(header, 10), HttpStatusError);
    assertEquals(error.status, 416, header);
    assertEquals(error.headers["content-range"], "bytes */10");
    assert(error.error instanceof InvalidArgumentError);
  }
  assertThrows(() => parseRange("bytes=0-", 0), HttpStatusError);
});

Deno.test("noneMatch() compares entity tags weakly and accepts *", () => {
  assert(noneMatch('"a"', '"a"'));
  assert(noneMatch('W/"a"', '"a"'));
  assert(noneMatch('"b", "a"', '"a"'));
  assert(noneMatch("*", '"a"'));
  assert(!noneMatch('"b"', '"a"'));
  assert(!noneMatch(null, '"a"'));
});

Deno.test("parseListenAddress() reads host:port, [v6]:port and a bare port", () => {
  assertEquals(parseListenAddress("127.0.0.1:7070"), { hostname: "127.0.0.1", port: 7070 });
  assertEquals(parseListenAddress("[::1]:80"), { hostname: "::1", port: 80 });
  assertEquals(parseListenAddress("0.0.0.0:0"), { hostname: "0.0.0.0", port: 0 });
  assertEquals(parseListenAddress(":9000"), { hostname: "127.0.0.1", port: 9000 });
  assertEquals(parseListenAddress("9000"), { hostname: "127.0.0.1", port: 9000 });
  assertEquals(parseListenAddress("example.org:8080"), { hostname: "example.org", port: 8080 });
  for (const bad of ["", "host", "host:", "host:99999", "a:b:1", "[::1]"]) {
    assertThrows(() => parseListenAddress(bad), InvalidArgumentError);
  }
});

Deno.test("isLoopback() accepts only addresses that stay on this machine", () => {
  for (const host of ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]"]) {
    assert(isLoopback(host));
  }
  for (const host of ["0.0.0.0", "::", "10.0.0.1", "example.org", "128.0.0.1"]) {
    assert(!isLoopback(host), host);
  }
});

Deno.test("BearerAuth accepts the token and refuses a missing, malformed or wrong one", () => {
  const auth = new BearerAuth("s3cret");
  auth.check("Bearer s3cret");
  auth.check("bearer s3cret");
  for (
    const header of [null, "s3cret", "Basic s3cret", "Bearer s3cre", "Bearer s3cret!", "Bearer "]
  ) {
    assertThrows(() => auth.check(header), UnauthorizedError);
  }
});

Deno.test("headerJson() escapes everything outside printable ASCII", () => {
  const meta = { name: "café ☕ 😀", line: "a\nb" };
  const text = headerJson(meta);
  assert(/^[\x20-\x7e]*$/.test(text), text);
  assertEquals(JSON.parse(text), meta);
  new Headers({ "packice-meta": text });
});

Deno.test("RequestMetrics renders counters and a cumulative histogram per route", () => {
  const metrics = new RequestMetrics();
  metrics.observe("GET /v1/stats", 200, 0.0001);
  metrics.observe("GET /v1/stats", 200, 0.003);
  metrics.observe("GET /v1/stats", 404, 20);
  const text = metrics.render({ objects: 2, leases: 1, bytes: 30, capacity: 100, hits: 5 });
  const lines = text.split("\n");
  for (
    const expected of [
      "packice_objects 2",
      "packice_bytes 30",
      "packice_leases 1",
      "packice_capacity_bytes 100",
      "packice_hits_total 5",
      "packice_misses_total 0",
      "packice_evictions_total 0",
      'packice_http_requests_total{route="GET /v1/stats",status="200"} 2',
      'packice_http_requests_total{route="GET /v1/stats",status="404"} 1',
      'packice_http_request_duration_seconds_bucket{route="GET /v1/stats",le="0.0005"} 1',
      'packice_http_request_duration_seconds_bucket{route="GET /v1/stats",le="0.005"} 2',
      'packice_http_request_duration_seconds_bucket{route="GET /v1/stats",le="10"} 2',
      'packice_http_request_duration_seconds_bucket{route="GET /v1/stats",le="+Inf"} 3',
      'packice_http_request_duration_seconds_count{route="GET /v1/stats"} 3',
    ]
  ) {
    assert(lines.includes(expected), `missing: ${expected}`);
  }
  assert(text.endsWith("\n"));
});

Deno.test("RequestMetrics renders a peer's own metrics, counters by the _total suffix", () => {
  const text = new RequestMetrics().render(
    { objects: 0, leases: 0, bytes: 0, capacity: 1 },
    { demotions_total: 3, hot_bytes: 4096 },
  );
  const lines = text.split("\n");
  for (
    const expected of [
      "# TYPE packice_demotions_total counter",
      "packice_demotions_total 3",
      "# TYPE packice_hot_bytes gauge",
      "packice_hot_bytes 4096",
    ]
  ) {
    assert(lines.includes(expected), `missing: ${expected}`);
  }
});
