/**
 * Daemons on the embedded directory watch an object while they fetch it:
 * an owner of its entry pushes them its holders' changes, and forgets the
 * watches once the transfers end.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { pattern, sameBytes } from "../helpers/cluster.ts";
import { startCluster, TOKEN } from "./cluster_daemons.ts";

const headers = { authorization: `Bearer ${TOKEN}` };

Deno.test("embedded directory: each transfer watches its object while it runs, and no longer", async () => {
  await using cluster = await startCluster(["h", "r1", "r2"], {
    extra: ["--max-upload-rate", "16MB", "--max-uploads", "2"],
  });
  const [holder, ...receivers] = cluster.daemons;
  for (const daemon of cluster.daemons) {
    await eventually(
      async () => (await daemon.members()).filter((m) => m.state === "alive").length === 3,
      `${daemon.node} sees all three`,
    );
  }
  const bytes = pattern(16 << 20, 17);
  const put = await fetch(`${holder!.url}/v1/objects/watched`, {
    method: "PUT",
    headers,
    body: bytes,
  });
  assertEquals(put.status, 201, await put.text());
  const watches = async () => {
    let sum = 0;
    for (const daemon of cluster.daemons) {
      sum += await daemon.metric("packice_cluster_directory_watches") ?? 0;
    }
    return sum;
  };
  let most = 0;
  let fetching = true;
  const watching = (async () => {
    while (fetching) {
      most = Math.max(most, await watches());
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  try {
    const got = await Promise.all(receivers.map(async (daemon) => {
      const response = await fetch(`${daemon.url}/v1/objects/watched`, { headers });
      assertEquals(response.status, 200, daemon.node);
      return new Uint8Array(await response.arrayBuffer());
    }));
    for (const received of got) assert(sameBytes(received, bytes));
  } finally {
    fetching = false;
    await watching;
  }
  assertEquals(most, 2, "both transfers watched the object at an owner");
  await eventually(async () => await watches() === 0, "the watches ended with the transfers");
});
