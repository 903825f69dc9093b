/**
 * What fuzzing the HTTP routes found, one explicit case each, against an
 * in-process server on a free port: every one answered 500 INTERNAL before
 * its fix.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { type HttpFixture, startHttp } from "../helpers/http_fixture.ts";

/** The status and error code of an answer, failing on anything but a JSON error body. */
async function errorOf(response: Response): Promise<[number, string, string]> {
  const text = await response.text();
  const { error } = JSON.parse(text);
  assert(typeof error?.code === "string", text);
  return [response.status, error.code, error.message];
}

function failOnInternal(): { onError: (error: unknown) => void } {
  return {
    onError: (error) => {
      throw new Error(`INTERNAL: ${error}`);
    },
  };
}

/** Sends a request over raw TCP with the Content-Length given and half of its body, then reads the answer. */
async function cutOff(
  fixture: HttpFixture,
  method: string,
  path: string,
  body: string,
): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: fixture.server.addr.port });
  try {
    const head = `${method} ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n` +
      `content-length: ${body.length * 2 + 10}\r\n\r\n`;
    await conn.write(new TextEncoder().encode(head + body));
    await conn.closeWrite();
    let answer = "";
    const buffer = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) return answer;
      answer += new TextDecoder().decode(buffer.subarray(0, n));
    }
  } finally {
    conn.close();
  }
}

Deno.test("POST /v1/leases with a size that is not a number answers 400 INVALID_ARGUMENT", async () => {
  await using fixture = startHttp(failOnInternal());
  for (const size of [null, "5", {}, [], [1, "2"], true, -1, 1.5]) {
    const response = await fixture.fetch("/v1/leases", {
      method: "POST",
      body: JSON.stringify({ objectId: "s", access: "CREATE", size }),
    });
    const [status, code, message] = await errorOf(response);
    assertEquals([status, code], [400, "INVALID_ARGUMENT"], message);
    assert(message.startsWith("Invalid size"), message);
  }
  const missing = await fixture.fetch("/v1/leases", {
    method: "POST",
    body: JSON.stringify({ access: "CREATE" }),
  });
  assertEquals((await errorOf(missing)).slice(0, 2), [400, "INVALID_ARGUMENT"]);
  assertEquals((await fixture.peer.stats()).objects, 0);
});

Deno.test("every field of POST /v1/leases and renew is checked, naming the field", async () => {
  await using fixture = startHttp(failOnInternal());
  const cases: Array<[unknown, string]> = [
    [{ access: "READ", objectId: 5 }, "Invalid object id"],
    [{ access: "READ" }, "Invalid object id"],
    [{ access: 1 }, "Invalid access"],
    [{ access: "CREATE", size: 1, ttl: "5" }, "Invalid ttl"],
    [{ access: "CREATE", size: 1, ttl: null }, "Invalid ttl"],
    [{ access: "CREATE", size: 1, meta: [] }, "Invalid meta"],
    [{ access: "CREATE", size: 1, meta: "x" }, "Invalid meta"],
  ];
  for (const [body, expected] of cases) {
    const response = await fixture.fetch("/v1/leases", {
      method: "POST",
      body: JSON.stringify(body),
    });
    const [status, code, message] = await errorOf(response);
    assertEquals([status, code], [400, "INVALID_ARGUMENT"], message);
    assert(message.startsWith(expected), `${JSON.stringify(body)}: ${message}`);
  }
  const granted = await fixture.fetch("/v1/leases", {
    method: "POST",
    body: JSON.stringify({ objectId: "r", access: "CREATE", size: 1 }),
  });
  const { lease } = await granted.json();
  const renew = await fixture.fetch(`/v1/leases/${lease.id}/renew`, {
    method: "POST",
    body: JSON.stringify({ ttl: {} }),
  });
  assertEquals((await errorOf(renew)).slice(0, 2), [400, "INVALID_ARGUMENT"]);
  const ttlHeader = await fixture.fetch("/v1/objects/t", {
    method: "PUT",
    body: "x",
    headers: { "packice-ttl": "soon" },
  });
  const [, , message] = await errorOf(ttlHeader);
  assertEquals(message, 'Invalid ttl: expected a positive integer of milliseconds, got "soon"');
  (await fixture.fetch(`/v1/leases/${lease.id}`, { method: "DELETE" })).body?.cancel();
});

Deno.test("a JSON body cut off before its Content-Length answers 400 PROTOCOL, not 500", async () => {
  await using fixture = startHttp(failOnInternal());
  for (const path of ["/v1/leases", "/v1/leases/x/renew"]) {
    const answer = await cutOff(fixture, "POST", path, '{"access":');
    assert(answer.startsWith("HTTP/1.1 400 "), answer);
    assert(answer.includes('"code":"PROTOCOL"'), answer);
    assert(answer.includes("Request body cut off"), answer);
  }
});
