import { CapacityExceededError, connect } from "../../mod.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { spawnDaemon, testInSocketDir } from "../helpers/uds_daemon.ts";

const MiB = 1024 * 1024;

testInSocketDir(
  "a daemon makes room by default, counts it, and says so over its socket",
  async (dir) => {
    const path = `${dir}/p.sock`;
    await using _daemon = await spawnDaemon(path, ["--capacity", "4MiB"]);
    await using client = await connect(path);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await client.put(new Uint8Array(MiB).fill(i + 1)));
    // The oldest objects went to make room for the newest.
    assertEquals(await client.has(ids[0]!), false);
    using last = await client.get(ids[5]!);
    assertEquals(last.bytes[0], 6);
    for (let i = 0; i < 9; i++) (await client.get(ids[5]!)).close();
    const figures = await client.metrics();
    assert(figures.evictions_total! >= 2, `evictions ${figures.evictions_total}`);
    assertEquals(figures.hits_total, 10);
    assert(figures.bytes! <= 4 * MiB);
    assertEquals(figures.uds_clients, 1);
    assertEquals(figures['uds_requests_total{op="open"}'], 10);
    assert(figures.uds_written_object_bytes_total! >= 6 * MiB);
    assertEquals(figures.uds_read_object_bytes_total, 10 * MiB);
    assert(figures.uds_received_bytes_total! > 0 && figures.uds_sent_bytes_total! > 0);
    // An OPEN frame: a 16-byte header and a body of at least the object id.
    assert(figures['uds_request_bytes_total{op="open"}']! >= 10 * (16 + ids[5]!.length));
  },
);

testInSocketDir("a daemon in store mode refuses writes when full", async (dir) => {
  const path = `${dir}/p.sock`;
  await using _daemon = await spawnDaemon(path, ["--capacity", "2MiB", "--mode", "store"]);
  await using client = await connect(path);
  await client.put(new Uint8Array(MiB));
  await client.put(new Uint8Array(MiB));
  await assertRejects(() => client.put(new Uint8Array(MiB)), CapacityExceededError);
  const figures = await client.metrics();
  assertEquals(figures.evictions_total, 0);
  const errors = Object.entries(figures).filter(([name]) => name.startsWith("uds_errors_total"));
  assertEquals(errors.reduce((sum, [, count]) => sum + count, 0), 1);
});

testInSocketDir("an object put with a TTL over the socket expires in the daemon", async (dir) => {
  const path = `${dir}/p.sock`;
  await using _daemon = await spawnDaemon(path);
  await using client = await connect(path);
  const small = await client.put("hello", { ttl: 1500 });
  const large = await client.put(new Uint8Array(2 * MiB), { ttl: 1500 });
  await using writer = await client.create(3, { ttl: 1500 });
  await writer.write(new Uint8Array([1, 2, 3]));
  await writer.seal();
  for (const id of [small, large, writer.id]) {
    const info = await client.stat(id);
    assertEquals(info.expiresAt, info.createdAt + 1500);
  }
  using reader = await client.get(large);
  // The daemon's timer removes them; nothing here looks them up until then.
  const deadline = Date.now() + 10_000;
  while ((await client.metrics()).expirations_total! < 3 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  for (const id of [small, large, writer.id]) assertEquals(await client.has(id), false);
  assertEquals(reader.bytes.length, 2 * MiB);
  assertEquals((await client.metrics()).expirations_total, 3);
});

testInSocketDir("a daemon's /metrics includes its socket's counters", async (dir) => {
  const path = `${dir}/p.sock`;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  await using _daemon = await spawnDaemon(path, ["--http", `127.0.0.1:${port}`]);
  const url = `http://127.0.0.1:${port}`;
  await using client = await connect(path);
  const id = await client.put("x");
  (await client.get(id)).close();
  // The token the daemon made, as a client of its user finds it.
  const token = (await Deno.readTextFile(`${path}.token`)).split("\n")[0]!;
  const text = await (await fetch(`${url}/metrics`, {
    headers: { authorization: `Bearer ${token}` },
  })).text();
  assert(/^packice_uds_requests_total\{op="open"\} 1$/m.test(text), text);
  assert(/^packice_uds_clients 1$/m.test(text), text);
  // With --http the daemon reads a new object once itself, to announce it to a cluster.
  assert(/^packice_hits_total [12]$/m.test(text), text);
  assertEquals(text.match(/^# TYPE packice_uds_requests_total counter$/gm)?.length, 1);
});
