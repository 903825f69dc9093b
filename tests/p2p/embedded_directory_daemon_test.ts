/**
 * The embedded directory across real daemons: this test process joins their
 * cluster as a member of its own (a real HTTP server with the cluster
 * routes), announces through its directory, and watches the daemons keep,
 * drop and forget entries.
 */
import { MemoryPeer } from "../../peers/memory_peer.ts";
import { HttpClusterTransport } from "../../p2p/cluster_transport.ts";
import { clusterRoutes } from "../../p2p/cluster_routes.ts";
import type { ContentRecord } from "../../p2p/directory.ts";
import { EmbeddedDirectory } from "../../p2p/directory/embedded.ts";
import { TEST_PROFILE } from "../../p2p/membership/config.ts";
import { Membership } from "../../p2p/membership/membership.ts";
import { serveHttp } from "../../transport/http/server.ts";
import { assertEquals } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { type ClusterDaemon, startCluster, TOKEN } from "./cluster_daemons.ts";

const headers = { authorization: `Bearer ${TOKEN}` };

/** A member in this process, with a real HTTP server. */
async function testMember(seed: string) {
  const transport = new HttpClusterTransport({ token: TOKEN });
  const membership = new Membership({ node: "tester", transport, config: TEST_PROFILE });
  const directory = new EmbeddedDirectory({ members: membership, transport, settle: 50 });
  const peer = new MemoryPeer({ capacity: 1 << 20 });
  const server = serveHttp(peer, {
    port: 0,
    token: TOKEN,
    routes: clusterRoutes(
      membership,
      (path, body) =>
        path.startsWith("directory/")
          ? directory.handle(path.slice("directory/".length), body)
          : membership.handle(path, body),
    ),
  });
  await membership.start(server.url, [seed]);
  return {
    membership,
    directory,
    [Symbol.asyncDispose]: async () => {
      await directory.close();
      await membership.close();
      await server.close();
      await peer.close();
    },
  };
}

async function put(daemon: ClusterDaemon, id: string, text: string): Promise<ContentRecord> {
  const response = await fetch(`${daemon.url}/v1/objects/${id}`, {
    method: "PUT",
    headers,
    body: text,
  });
  assertEquals(response.status, 201, await response.text());
  // The digest the daemon serves as its entity tag.
  const head = await fetch(`${daemon.url}/v1/objects/${id}`, { method: "HEAD", headers });
  const digest = head.headers.get("etag")!.slice(1, -1);
  return { id, size: text.length, digest, pieceSize: 4 << 20, pieceDigests: [] };
}

async function lookupAt(daemon: ClusterDaemon, id: string): Promise<unknown> {
  const response = await fetch(`${daemon.url}/v1/cluster/directory/lookup`, {
    method: "POST",
    headers,
    body: JSON.stringify({ id }),
  });
  return (await response.json()).entry;
}

Deno.test("the embedded directory on real daemons: owners keep entries, a killed holder leaves, delete drops copies", async () => {
  await using cluster = await startCluster(["a", "b", "c"]);
  const [a, b, c] = cluster.daemons as [ClusterDaemon, ClusterDaemon, ClusterDaemon];
  await using tester = await testMember(a.url);
  await eventually(
    async () => {
      const views = await Promise.all(cluster.daemons.map((d) => d.members()));
      return views.every((v) => v.filter((m) => m.state === "alive").length === 4);
    },
    "the daemons see the tester",
    { timeout: 5000, interval: 50 },
  );

  const record = await put(b, "shared", "hello cluster");
  // One id, one content: c takes its copy from b (a put of the id on c is refused).
  const refused = await fetch(`${c.url}/v1/objects/shared`, {
    method: "PUT",
    headers,
    body: "other bytes",
  });
  assertEquals(refused.status, 409, await refused.text());
  const copy = await fetch(`${c.url}/v1/objects/shared`, { headers });
  assertEquals(await copy.text(), "hello cluster");
  const holder = (d: ClusterDaemon) => ({ node: d.node, address: d.url });
  await tester.directory.announce(record, holder(b));
  await tester.directory.announce(record, holder(c));

  // Exactly the two owners keep the entry, and answer for it.
  const owners = tester.directory.owners("shared").map((m) => m.node);
  assertEquals(owners.length, 2);
  for (const daemon of cluster.daemons) {
    const entry = await lookupAt(daemon, "shared") as { holders: unknown[] } | null;
    if (owners.includes(daemon.node)) assertEquals(entry?.holders.length, 2);
    else assertEquals(entry, null);
  }

  const kept = await Promise.all(
    cluster.daemons.map((d) => d.metric("packice_cluster_directory_entries")),
  );
  assertEquals(kept.reduce((sum, n) => sum + n, 0), owners.filter((o) => o !== "tester").length);

  // SIGKILL c: within the failure-detection bound only b is left as a holder.
  await c.signal("SIGKILL");
  await eventually(
    async () => {
      const entry = await tester.directory.lookup("shared");
      return entry?.holders.length === 1 && entry.holders[0]!.node === "b";
    },
    "c's holding leaves",
    { timeout: 6000, interval: 50 },
  );

  // A cluster-wide delete: b drops its copy, and the directory forgets the object.
  await tester.directory.remove("shared");
  await eventually(
    async () => {
      const response = await fetch(`${b.url}/v1/objects/shared/info`, { headers });
      await response.body?.cancel();
      return response.status === 404;
    },
    "b dropped its copy",
    { timeout: 2000 },
  );
  assertEquals(await tester.directory.lookup("shared"), undefined);
});
