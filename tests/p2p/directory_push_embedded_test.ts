/** The embedded directory pushes holder changes to the members that watch an object. */
import { NotFoundError } from "../../core/errors.ts";
import type { HolderChange } from "../../p2p/directory.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { inProcessCluster, type InProcessMember } from "./in_process_cluster.ts";
import { fakeDigest, pushedRecord } from "../helpers/directory_records.ts";

const digest = fakeDigest;
const record = pushedRecord;

async function joined(members: InProcessMember[]): Promise<void> {
  await eventually(
    () => members.every((m) => m.membership.live().length === members.length),
    "every member sees every other",
  );
}

Deno.test("EmbeddedDirectory pushes holder changes to a watcher, only while it watches", async () => {
  await using cluster = await inProcessCluster(["a", "b", "c", "d"]);
  await joined(cluster.members);
  // A watcher that owns no entry of the object: its pushes cross the network.
  const owning = cluster.members[0]!.directory.owners("pushed").map((m) => m.node);
  const [watcher, ...others] = [
    ...cluster.members.filter((m) => !owning.includes(m.node)),
    ...cluster.members.filter((m) => owning.includes(m.node)),
  ] as [InProcessMember, InProcessMember, InProcessMember];
  const [one, two] = others;
  const changes: HolderChange[] = [];
  {
    using watch = watcher.directory.watch("pushed", (change) => changes.push(change));
    await eventually(() => watch.live, "the watch is live");
    const watching = cluster.members.map((m) => m.directory.stats().watches);
    assertEquals(watching.reduce((sum, n) => sum + n, 0), 1);

    await one.directory.announce(record, { node: one.node, address: one.address });
    const pieces = new Uint8Array([0b1010_0000, 0]);
    await two.directory.announce(record, { node: two.node, address: two.address, pieces }, {
      existing: true,
    });
    await eventually(() => changes.length === 2, "both announces are pushed", { interval: 1 });
    // One push each: the first at once, the second a push gap (50 ms) after it.
    const pushes = cluster.members.map((m) => m.directory.stats().pushes);
    assertEquals(pushes.reduce((sum, n) => sum + n, 0), 2);
    assertEquals(changes, [
      {
        kind: "announced",
        digest: record.digest,
        holder: { node: one.node, address: one.address },
      },
      {
        kind: "announced",
        digest: record.digest,
        holder: { node: two.node, address: two.address, pieces },
      },
    ]);
    // Its own announce is not pushed back to it.
    await watcher.directory.announce(record, { node: watcher.node, address: watcher.address }, {
      existing: true,
    });
    await one.directory.withdraw("pushed", one.node);
    // Pushed before the removal: one in the same push gap would leave only the removal.
    await eventually(() => changes.length === 3, "the withdrawal is pushed");
    await one.directory.remove("pushed");
    await eventually(() => changes.length === 4, "the removal is pushed");
    assertEquals(changes.slice(2), [{ kind: "withdrawn", node: one.node }, { kind: "removed" }]);
  }
  await eventually(
    () => cluster.members.every((m) => m.directory.stats().watches === 0),
    "the owner forgets the watch",
  );
  // Other content under the id (the removed one is refused a while).
  await one.directory.announce({ ...record, digest: digest("e") }, {
    node: one.node,
    address: one.address,
  });
  await new Promise((resolve) => setTimeout(resolve, 50));
  assertEquals(changes.length, 4);
});

Deno.test("EmbeddedDirectory: a watch whose owner dies is taken by the next owner", async () => {
  await using cluster = await inProcessCluster(["a", "b", "c", "d"]);
  await joined(cluster.members);
  const owning = cluster.members[0]!.directory.owners("pushed").map((m) => m.node);
  const watcher = cluster.members.find((m) => !owning.includes(m.node))!;
  const holder = cluster.members.find((m) => !owning.includes(m.node) && m !== watcher)!;
  const changes: HolderChange[] = [];
  using watch = watcher.directory.watch("pushed", (change) => changes.push(change));
  await eventually(() => watch.live, "the watch is live");
  const first = cluster.members.find((m) => m.directory.stats().watches === 1)!;
  assertEquals(first.node, owning[0]);
  await cluster.kill(first);
  await eventually(() => !watch.live, "the watch is down with its owner", { timeout: 10_000 });
  await eventually(() => watch.live, "the watch is live at the next owner", { timeout: 10_000 });
  await holder.directory.announce(record, { node: holder.node, address: holder.address });
  await eventually(() => changes.length === 1, "the announce is pushed");
});

Deno.test("EmbeddedDirectory: owners that do not know watches (older daemons) leave it not live, and are not asked again at each look", async () => {
  await using cluster = await inProcessCluster(["a", "b", "c"]);
  await joined(cluster.members);
  let asked = 0;
  for (const member of cluster.members) {
    const handle = member.directory.handle.bind(member.directory);
    member.directory.handle = (path, body) => {
      if (path !== "watch") return handle(path, body);
      asked++;
      return Promise.reject(new NotFoundError(`No directory route: ${path}`));
    };
  }
  const [a, b] = cluster.members as [InProcessMember, InProcessMember];
  using watch = a.directory.watch("pushed", () => {});
  await eventually(() => asked === 2, "both owners were asked");
  for (let i = 0; i < 20; i++) {
    assert(!watch.live);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assertEquals(asked, 2);
  // Lookups work as ever.
  await b.directory.announce(record, { node: b.node, address: b.address });
  assertEquals((await a.directory.holders("pushed", record.digest))?.map((h) => h.node), [b.node]);
});

Deno.test("EmbeddedDirectory.announce() answers with the holders after it when asked for a listing", async () => {
  await using cluster = await inProcessCluster(["a", "b", "c"]);
  await joined(cluster.members);
  const [a, b] = cluster.members as [InProcessMember, InProcessMember];
  assertEquals(await a.directory.announce(record, { node: a.node, address: a.address }), undefined);
  const pieces = new Uint8Array([0b1000_0000, 0]);
  const listed = await b.directory.announce(
    record,
    { node: b.node, address: b.address, pieces },
    { existing: true, listing: true },
  );
  assertEquals(
    [...listed!].sort((p, q) => p.node < q.node ? -1 : 1),
    [{ node: a.node, address: a.address }, { node: b.node, address: b.address, pieces }],
  );
});
