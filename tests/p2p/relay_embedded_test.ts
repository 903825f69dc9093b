/**
 * Relay while downloading without Redis: partial holders' bitfields travel
 * through the embedded directory, and a broadcast still ends with the right
 * bytes everywhere.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { pattern, sameBytes } from "../helpers/cluster.ts";
import { startCluster, TOKEN } from "./cluster_daemons.ts";

const headers = { authorization: `Bearer ${TOKEN}` };

Deno.test("a broadcast over the embedded directory: every daemon gets the right bytes", async () => {
  await using cluster = await startCluster(["h", "r1", "r2", "r3"], {
    extra: ["--max-upload-rate", "32MB", "--max-uploads", "2"],
  });
  const [holder, ...receivers] = cluster.daemons;
  for (const daemon of cluster.daemons) {
    await eventually(
      async () => (await daemon.members()).filter((m) => m.state === "alive").length === 4,
      `${daemon.node} sees all four`,
    );
  }
  const bytes = pattern(24 << 20, 13);
  const put = await fetch(`${holder!.url}/v1/objects/wide`, {
    method: "PUT",
    headers,
    body: bytes,
  });
  assertEquals(put.status, 201, await put.text());
  const got = await Promise.all(receivers.map(async (daemon) => {
    const response = await fetch(`${daemon.url}/v1/objects/wide`, { headers });
    assertEquals(response.status, 200, daemon.node);
    return new Uint8Array(await response.arrayBuffer());
  }));
  for (const received of got) assert(sameBytes(received, bytes));
  let relayed = 0;
  for (const daemon of receivers) {
    assertEquals(await daemon.metric("packice_cluster_fetches_total"), 1, daemon.node);
    const text = await (await fetch(`${daemon.url}/metrics`, { headers })).text();
    const line = text.split("\n").find((l) =>
      l.startsWith('packice_http_requests_total{route="GET /v1/objects/:id",status="206"}')
    );
    // Ranges a relay's native listener answered itself never reach the Deno server.
    const own = /^packice_http_fast_relay_served_total (\S+)$/m.exec(text)?.[1];
    relayed += Number(line?.split(" ").at(-1) ?? 0) + Number(own ?? 0);
  }
  // Pieces went from receiver to receiver, not only from the holder.
  assert(relayed > 0, "no receiver served a piece");
});
