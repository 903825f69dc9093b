/**
 * Daemons joined with `--join` and no Redis: the embedded directory finds
 * holders, and a get on any daemon fetches the object from the one that has it.
 */
import { assertEquals } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { startCluster, TOKEN } from "./cluster_daemons.ts";

const headers = { authorization: `Bearer ${TOKEN}` };

Deno.test("an object put on one --join daemon is read on each of the others, then deleted everywhere", async () => {
  await using cluster = await startCluster(["a", "b", "c"]);
  const [a, b, c] = cluster.daemons;
  await eventually(
    async () => {
      const views = await Promise.all(cluster.daemons.map((d) => d.members()));
      return views.every((v) => v.filter((m) => m.state === "alive").length === 3);
    },
    "joined",
    { timeout: 5000, interval: 50 },
  );
  const bytes = new Uint8Array(300_000).map((_, i) => (i * 7) & 255);
  const put = await fetch(`${a!.url}/v1/objects/shared`, { method: "PUT", headers, body: bytes });
  assertEquals(put.status, 201, await put.text());
  for (const daemon of [b!, c!]) {
    const response = await fetch(`${daemon.url}/v1/objects/shared`, { headers });
    assertEquals(response.status, 200);
    assertEquals(new Uint8Array(await response.arrayBuffer()), bytes);
  }
  assertEquals(await b!.metric("packice_cluster_fetches_total"), 1);
  const again = await fetch(`${b!.url}/v1/objects/shared`, { headers });
  await again.arrayBuffer();
  assertEquals(await b!.metric("packice_cluster_fetches_total"), 1, "the second read is local");
  const deleted = await fetch(`${c!.url}/v1/objects/shared`, { method: "DELETE", headers });
  assertEquals(deleted.status, 204, await deleted.text());
  for (const daemon of cluster.daemons) {
    await eventually(
      async () => {
        const response = await fetch(`${daemon.url}/v1/objects/shared/info`, { headers });
        await response.body?.cancel();
        return response.status === 404;
      },
      `${daemon.node} no longer has it`,
      { timeout: 3000 },
    );
  }
});
