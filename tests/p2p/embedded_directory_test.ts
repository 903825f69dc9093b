/** The embedded directory between members in one process, on the test profile. */
import {
  ConflictError,
  InvalidArgumentError,
  NotFoundError,
  ProtocolError,
} from "../../core/errors.ts";
import type { ContentRecord } from "../../p2p/directory.ts";
import { owners } from "../../p2p/directory/rendezvous.ts";
import { assert, assertEquals, assertRejects } from "../helpers/assert.ts";
import { eventually } from "../helpers/eventually.ts";
import { inProcessCluster, type InProcessMember } from "./in_process_cluster.ts";

function record(id: string, fill = "a"): ContentRecord {
  return {
    id,
    size: 10,
    digest: `sha256:${fill.repeat(64)}`,
    pieceSize: 4 << 20,
    pieceDigests: [`sha256:${fill.repeat(64)}`],
  };
}

function holderOf(member: InProcessMember) {
  return { node: member.node, address: member.address };
}

async function joined(members: InProcessMember[]): Promise<void> {
  await eventually(
    () => members.every((m) => m.membership.live().length === members.length),
    "every member sees every other",
  );
}

Deno.test("rendezvous owners: stable, and a new member takes only the ids it wins", () => {
  const ids = Array.from({ length: 2000 }, (_, i) => `object-${i}`);
  const before = ids.map((id) => owners(id, ["a", "b", "c", "d"], 2));
  const after = ids.map((id) => owners(id, ["a", "b", "c", "d", "e"], 2));
  let moved = 0;
  ids.forEach((_, i) => {
    const lost = before[i]!.filter((node) => !after[i]!.includes(node));
    if (lost.length > 0) {
      moved++;
      assert(after[i]!.includes("e"), "only the newcomer takes over an entry");
    }
  });
  // e wins a place for about 2/5 of the ids.
  assert(moved > 2000 * 0.3 && moved < 2000 * 0.5, `${moved} of 2000 moved`);
  const share = new Map<string, number>();
  for (const chosen of after) {
    for (const node of chosen) share.set(node, (share.get(node) ?? 0) + 1);
  }
  for (const [node, n] of share) assert(n > 600 && n < 1000, `${node} owns ${n} of 4000`);
});

Deno.test("announce on one member, look up on every other, withdraw", async () => {
  await using cluster = await inProcessCluster(["a", "b", "c", "d"]);
  await joined(cluster.members);
  const [a, b] = cluster.members as [InProcessMember, InProcessMember];
  await a.directory.announce(record("x"), holderOf(a));
  await b.directory.announce(record("x"), holderOf(b));
  for (const member of cluster.members) {
    const entry = await member.directory.lookup("x");
    assertEquals(entry?.digest, record("x").digest);
    assertEquals(entry?.holders.map((h) => h.node).sort(), ["a", "b"]);
  }
  // Exactly two members keep the entry.
  const keeping = cluster.members.filter((m) => m.directory.stats().entries === 1);
  assertEquals(keeping.map((m) => m.node).sort(), owners("x", ["a", "b", "c", "d"], 2).sort());
  await a.directory.withdraw("x", "a");
  assertEquals((await b.directory.lookup("x"))?.holders.map((h) => h.node), ["b"]);
  await b.directory.withdraw("x", "b");
  assertEquals(await cluster.members[2]!.directory.lookup("x"), undefined);
});

Deno.test("holders() lists the live holders of one content without its record; a join sends no piece digests", async () => {
  await using cluster = await inProcessCluster(["a", "b", "c", "d"]);
  await joined(cluster.members);
  const [a, b] = cluster.members as [InProcessMember, InProcessMember];
  await a.directory.announce(record("x"), holderOf(a));
  // A join of the same content: its digest is all an owner needs.
  await b.directory.announce(
    { ...record("x"), size: 99, pieceDigests: [] },
    { ...holderOf(b), pieces: Uint8Array.of(0x80) },
    { existing: true },
  );
  for (const member of cluster.members) {
    const holders = await member.directory.holders("x", record("x").digest);
    assertEquals([...holders!].sort((p, q) => p.node < q.node ? -1 : 1), [
      holderOf(a),
      { ...holderOf(b), pieces: Uint8Array.of(0x80) },
    ]);
    assertEquals(await member.directory.holders("x", record("x", "e").digest), undefined);
    assertEquals(await member.directory.holders("never", record("x").digest), undefined);
    const entry = await member.directory.lookup("x");
    assertEquals({ size: entry!.size, pieceDigests: entry!.pieceDigests }, {
      size: 10,
      pieceDigests: record("x").pieceDigests,
    });
  }
});

Deno.test("holders() asks an owner that does not know the message for its whole entry", async () => {
  await using cluster = await inProcessCluster(["a", "b", "c"]);
  await joined(cluster.members);
  const [a] = cluster.members as [InProcessMember];
  await a.directory.announce(record("x"), holderOf(a));
  // Every owner answers as a daemon of an older version would.
  for (const member of cluster.members) {
    const handle = member.directory.handle.bind(member.directory);
    member.directory.handle = (path, body) =>
      path === "holders"
        ? Promise.reject(new NotFoundError(`No directory route: ${path}`))
        : handle(path, body);
  }
  for (const member of cluster.members) {
    assertEquals(await member.directory.holders("x", record("x").digest), [holderOf(a)]);
    assertEquals(await member.directory.holders("x", record("x", "e").digest), undefined);
  }
});

Deno.test("an announce of other content under an id is refused with CONFLICT", async () => {
  await using cluster = await inProcessCluster(["a", "b", "c"]);
  await joined(cluster.members);
  const [a, b] = cluster.members as [InProcessMember, InProcessMember];
  await a.directory.announce(record("x", "a"), holderOf(a));
  const error = await assertRejects(
    () => b.directory.announce(record("x", "b"), holderOf(b)),
    ConflictError,
  );
  assertEquals(error.code, "CONFLICT");
  const entry = await b.directory.lookup("x");
  assertEquals(entry?.holders.map((h) => h.node), ["a"], "the conflicting holder was not merged");
  await assertRejects(
    () => a.directory.announce({ ...record("y"), digest: "md5" }, holderOf(a)),
    InvalidArgumentError,
  );
});

Deno.test("remove() tells every holder, and the old content cannot come back", async () => {
  await using cluster = await inProcessCluster(["a", "b", "c", "d"]);
  await joined(cluster.members);
  const [a, b, c] = cluster.members as [InProcessMember, InProcessMember, InProcessMember];
  await a.directory.announce(record("x"), holderOf(a));
  await b.directory.announce(record("x"), holderOf(b));
  await c.directory.remove("x");
  assertEquals(a.dropped, ["x"]);
  assertEquals(b.dropped, ["x"]);
  assertEquals(await c.directory.lookup("x"), undefined);
  // A holder that had not heard yet cannot re-announce the removed content...
  await assertRejects(() => b.directory.announce(record("x"), holderOf(b)), Error, "deleted");
  // ...but new content under the same id is welcome.
  await c.directory.announce(record("x", "c"), holderOf(c));
  assertEquals((await a.directory.lookup("x"))?.digest, record("x", "c").digest);
});

Deno.test("a dead member's holdings leave, and entries survive the death of an owner", async () => {
  await using cluster = await inProcessCluster(["a", "b", "c", "d", "e"]);
  await joined(cluster.members);
  const ids = Array.from({ length: 40 }, (_, i) => `obj-${i}`);
  const [a, b] = cluster.members as [InProcessMember, InProcessMember];
  for (const id of ids) {
    await a.directory.announce(record(id), holderOf(a));
    await b.directory.announce(record(id), holderOf(b));
  }
  // Kill b: it holds every object and owns some entries.
  await cluster.kill(b);
  const others = cluster.members.filter((m) => m !== b);
  await eventually(
    () => others.every((m) => m.membership.list().find((x) => x.node === "b")?.state === "dead"),
    "all see b dead",
    { timeout: 5000 },
  );
  await eventually(
    async () => {
      for (const id of ids) {
        const entry = await others[3]!.directory.lookup(id);
        if (entry?.holders.length !== 1 || entry.holders[0]!.node !== "a") return false;
      }
      return true;
    },
    "every entry lists a alone",
    { timeout: 2000 },
  );
  // Every entry is kept by its two live owners again, once a has announced to the new ones.
  await eventually(
    () => others.reduce((sum, m) => sum + m.directory.stats().entries, 0) === ids.length * 2,
    "every entry on two owners",
    { timeout: 2000 },
  );
  for (const id of ids) {
    const chosen = owners(id, others.map((m) => m.node), 2);
    for (const member of others) {
      assertEquals(
        (await member.directory.handle("lookup", { id }) as { entry: unknown }).entry !== null,
        chosen.includes(member.node),
        `${id} on ${member.node}`,
      );
    }
  }
});

Deno.test("malformed directory messages are refused and nothing is applied", async () => {
  await using cluster = await inProcessCluster(["a"]);
  const a = cluster.members[0]!.directory;
  await assertRejects(() => a.handle("announce", { items: [{ record: {} }] }), ProtocolError);
  await assertRejects(
    () =>
      a.handle("announce", {
        items: [{
          record: { ...record("x"), size: 10 << 23 },
          holder: { node: "a", address: "http://a" },
        }],
      }),
    ProtocolError,
    "piece digests",
  );
  await assertRejects(
    () =>
      a.handle("announce", {
        items: [{ record: record("x"), holder: { node: "a", address: "file:///etc/passwd" } }],
      }),
    ProtocolError,
  );
  assertEquals(a.stats().entries, 0);
});

Deno.test("an announce with existing only joins an entry of the same content", async () => {
  await using cluster = await inProcessCluster(["a", "b", "c"]);
  await joined(cluster.members);
  const [a, b] = cluster.members as [InProcessMember, InProcessMember];
  await assertRejects(
    () => b.directory.announce(record("x"), holderOf(b), { existing: true }),
    NotFoundError,
    "no entry",
  );
  await a.directory.announce(record("x"), holderOf(a));
  await b.directory.announce(record("x"), holderOf(b), { existing: true });
  assertEquals((await a.directory.lookup("x"))?.holders.length, 2);
});

Deno.test("a member that joins takes over the entries it wins; the old owners forget them", async () => {
  await using cluster = await inProcessCluster(["a", "b", "c"]);
  await joined(cluster.members);
  const a = cluster.members[0]!;
  const ids = Array.from({ length: 60 }, (_, i) => `obj-${i}`);
  for (const id of ids) await a.directory.announce(record(id), holderOf(a));
  await cluster.add("d");
  await joined(cluster.members);
  const nodes = cluster.members.map((m) => m.node);
  await eventually(
    async () => {
      for (const id of ids) {
        const chosen = owners(id, nodes, 2);
        for (const member of cluster.members) {
          const { entry } = await member.directory.handle("lookup", { id }) as { entry: unknown };
          if ((entry !== null) !== chosen.includes(member.node)) return false;
        }
      }
      return true;
    },
    "every entry on exactly its two owners",
    { timeout: 3000 },
  );
  assert(cluster.members[3]!.directory.stats().entries > 0, "d owns some entries");
  assert(a.directory.stats().reannounced > 0);
  assert(a.directory.stats().reannounced < ids.length, "only the entries d won moved");
});

Deno.test("a lookup does not wait for an owner that hangs once the other has answered", async () => {
  await using cluster = await inProcessCluster(["a", "b", "c"]);
  await joined(cluster.members);
  const [a] = cluster.members as [InProcessMember];
  await a.directory.announce(record("x"), holderOf(a));
  const asker =
    cluster.members.find((m) => !a.directory.owners("x").some((o) => o.node === m.node)) ??
      a;
  const hung = cluster.members.find((m) =>
    m !== asker && asker.directory.owners("x").some((o) => o.node === m.node)
  )!;
  cluster.network.pause(hung.address, true);
  const started = performance.now();
  const entry = await asker.directory.lookup("x");
  const took = performance.now() - started;
  cluster.network.pause(hung.address, false);
  assertEquals(entry?.holders.map((h) => h.node), ["a"]);
  assert(took < 400, `lookup took ${took} ms with the request timeout at 500 ms`);
});
