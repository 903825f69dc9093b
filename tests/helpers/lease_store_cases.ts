/**
 * The behaviour every Redis lease store keeps, on a standalone Redis and on a
 * Redis Cluster alike: each case takes the Redis and a namespace of its own.
 */
import { assert, assertEquals, assertRejects } from "./assert.ts";
import { RedisLeaseStore, type RedisLeaseStoreOptions } from "../../backends/redis/mod.ts";
import { MemoryLeaseStore } from "../../backends/memory_lease_store.ts";
import {
  Access,
  AlreadyExistsError,
  type Clock,
  leaseRecord,
  type LeaseStore,
  ManualClock,
  NotFoundError,
  type ObjectInfo,
} from "../../core/mod.ts";

export function creating(id: string, now: number, meta = {}): ObjectInfo {
  return { id, state: "CREATING", size: 3, blobSizes: [1, 2], meta, createdAt: now };
}

/** Creates object `id` on `leases`, under the CREATE lease `lease` taken at `now`. */
export function createAs(
  leases: LeaseStore,
  id: string,
  lease: string,
  now: number,
  ttl?: number,
  meta = {},
): Promise<unknown> {
  return leases.create(creating(id, now, meta), leaseRecord(lease, id, Access.CREATE, ttl, now));
}

/** Where a case runs: a Redis (standalone or a cluster) and a namespace of its own. */
export interface Target {
  /** The Redis URL. */
  readonly url: string;
  /** A namespace no other case uses on that Redis. */
  readonly namespace: string;
}

/** A store of node `node` on the target. */
export function store(target: Target, node: string, options: RedisLeaseStoreOptions = {}) {
  return RedisLeaseStore.connect({
    url: target.url,
    namespace: target.namespace,
    node,
    ...options,
  });
}

/** Stores of nodes "a" and "b" on the target, closed together. */
async function twoNodes(
  target: Target,
): Promise<AsyncDisposable & { a: RedisLeaseStore; b: RedisLeaseStore }> {
  await using stack = new AsyncDisposableStack();
  const a = stack.use(await store(target, "a"));
  const b = stack.use(await store(target, "b"));
  const owned = stack.move();
  return { a, b, [Symbol.asyncDispose]: () => owned.disposeAsync() };
}

/** Runs one scripted history of calls on a store; returns what each call gave or threw. */
async function history(leases: LeaseStore, clock: ManualClock): Promise<unknown[]> {
  const out: unknown[] = [];
  const step = async (fn: () => Promise<unknown>) => {
    try {
      const value = await fn();
      out.push(["ok", strip(value)]);
    } catch (error) {
      out.push([(error as Error).constructor.name, (error as Error).message]);
    }
  };
  const lease = (id: string, object: string, access: Access, ttl?: number) =>
    leaseRecord(id, object, access, ttl, clock.now());
  await step(() =>
    leases.create(creating("x", clock.now(), { k: "v" }), lease("c1", "x", Access.CREATE, 1000))
  );
  await step(() => leases.create(creating("x", clock.now()), lease("c2", "x", Access.CREATE)));
  await step(() => leases.grant("x", lease("r1", "x", Access.READ)));
  await step(() => leases.grant("x", lease("w1", "x", Access.WRITE)));
  await step(() => leases.grant("x", lease("c3", "x", Access.CREATE)));
  await step(() => leases.grant("nope", lease("r0", "nope", Access.READ)));
  await step(() => leases.seal("w1", { sealedAt: clock.now() }));
  await step(() => leases.seal("c1", { sealedAt: clock.now(), digest: "d1" }));
  await step(() => leases.seal("c1", { sealedAt: clock.now() }));
  await step(() => leases.grant("x", lease("r2", "x", Access.READ)));
  await step(() => leases.seal("r2", { sealedAt: clock.now() }));
  await step(() => leases.discard("r2"));
  await step(() => leases.release("r2"));
  await step(() => leases.release("r2"));
  await step(() => leases.release("no-such-lease"));
  await step(() => leases.grant("x", lease("r3", "x", Access.READ, 50)));
  clock.advance(60);
  await step(() => leases.lease("r3"));
  await step(() => leases.release("r3"));
  await step(() => leases.expire(clock.now()));
  await step(() => leases.release("r3"));
  await step(() => leases.create(creating("y", clock.now()), lease("c4", "y", Access.CREATE, 100)));
  clock.advance(90);
  await step(() => leases.renew("c4", 100, clock.now()));
  clock.advance(90);
  await step(() => leases.expire(clock.now()));
  await step(() => leases.seal("c4", { sealedAt: clock.now() }));
  await step(() => leases.release("c4"));
  await step(() => leases.discard("w1"));
  await step(() => leases.stat("x"));
  await step(() => leases.create(creating("z", clock.now()), lease("c5", "z", Access.CREATE, 10)));
  clock.advance(10);
  await step(() => leases.seal("c5", { sealedAt: clock.now() }));
  await step(() => leases.expire(clock.now()));
  await step(() => leases.stat("z"));
  await step(() => leases.annotate("y", { digest: "d2", tier: "hot" }));
  await step(() => leases.stat("y"));
  await step(() => leases.list());
  await step(() => leases.counts());
  await step(() => leases.release("c1"));
  return out;
}

/**
 * Grants and releases of many callers at once, on objects sealed, being
 * created and missing, with and without a TTL; returns what each call gave or
 * threw, turn by turn.
 */
async function racingUses(leases: LeaseStore, now: number): Promise<unknown[]> {
  const lease = (id: string, object: string, access: Access, ttl?: number) =>
    leaseRecord(id, object, access, ttl, now);
  for (let i = 0; i < 6; i++) {
    await leases.create(creating(`s${i}`, now), lease(`ms${i}`, `s${i}`, Access.CREATE));
    await leases.seal(`ms${i}`, { sealedAt: now });
    await leases.release(`ms${i}`);
    await leases.create(creating(`c${i}`, now), lease(`mc${i}`, `c${i}`, Access.CREATE));
  }
  const settled = async (calls: Promise<unknown>[]) =>
    (await Promise.allSettled(calls)).map((result) =>
      result.status === "fulfilled"
        ? ["ok", strip(result.value)]
        : [result.reason.constructor.name, result.reason.message]
    );
  const grants: Promise<unknown>[] = [];
  const granted: string[] = [];
  for (let i = 0; i < 6; i++) {
    for (
      const [id, object, access, ttl] of [
        [`r${i}`, `s${i}`, Access.READ, undefined],
        [`t${i}`, `s${i}`, Access.READ, 60_000],
        [`w${i}`, `s${i}`, Access.WRITE, undefined],
        [`cr${i}`, `c${i}`, Access.READ, undefined],
        [`cw${i}`, `c${i}`, Access.WRITE, 60_000],
        [`mr${i}`, `m${i}`, Access.READ, undefined],
        [`mw${i}`, `m${i}`, Access.WRITE, undefined],
      ] as const
    ) {
      grants.push(leases.grant(object, lease(id, object, access, ttl)));
      granted.push(id);
    }
  }
  const out: unknown[] = [await settled(grants)];
  out.push(await settled([...granted, "no-such-lease"].map((id) => leases.release(id))));
  out.push(await settled(granted.map((id) => leases.release(id))));
  out.push(strip(await leases.counts()));
  return out;
}

/** Drops what only a shared directory records, to compare with the memory store. */
function strip(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(strip);
  if (value === null || typeof value !== "object") return value;
  const { holders: _holders, node: _node, ...rest } = value as Record<string, unknown>;
  return Object.fromEntries(Object.entries(rest).map(([key, inner]) => [key, strip(inner)]));
}

/** The cases, by test name. */
export const LEASE_STORE_CASES: Record<string, (target: Target) => Promise<void>> = {
  "annotate() records a digest only from a holder, and never over another one": async (target) => {
    await using nodes = await twoNodes(target);
    const { a, b } = nodes;
    const now = Date.now();
    await createAs(a, "x", "c1", now);
    await a.seal("c1", { sealedAt: now });
    await a.release("c1");
    await b.annotate("x", { digest: "xxh64:000000000000000b" });
    assertEquals((await b.stat("x"))?.digest, undefined);
    await a.annotate("x", { digest: "xxh64:000000000000000a", tier: "hot" });
    await a.annotate("x", { digest: "xxh64:00000000000000ff" });
    const x = await b.stat("x");
    assertEquals([x?.digest, x?.tier], ["xxh64:000000000000000a", "hot"]);
  },
  "RedisLeaseStore gives the same results and errors as MemoryLeaseStore": async (target) => {
    const memoryClock = new ManualClock(1_000_000);
    const expected = await history(new MemoryLeaseStore(memoryClock), memoryClock);
    const clock = new ManualClock(1_000_000);
    await using leases = await store(target, "a", { clock });
    assertEquals(await history(leases, clock), expected);
  },
  "grants and releases racing in one turn each get their own answer": async (target) => {
    const now = Date.now();
    const expected = await racingUses(new MemoryLeaseStore(new ManualClock(now)), now);
    await using leases = await store(target, "a");
    assertEquals(await racingUses(leases, now), expected);
  },
  "create() of one id by two nodes at once: exactly one wins": async (target) => {
    await using nodes = await twoNodes(target);
    const { a, b } = nodes;
    const now = Date.now();
    for (let round = 0; round < 50; round++) {
      const id = `race-${round}`;
      const results = await Promise.allSettled([
        createAs(a, id, `a-${round}`, now),
        createAs(b, id, `b-${round}`, now),
      ]);
      const won = results.filter((result) => result.status === "fulfilled");
      const lost = results.filter((result) => result.status === "rejected");
      assertEquals(won.length, 1);
      assert(lost[0]!.reason instanceof AlreadyExistsError, String(lost[0]!.reason));
    }
    assertEquals((await a.counts()).objects, 50);
  },
  "a seal racing a discard on another node leaves the object whole or gone": async (target) => {
    await using nodes = await twoNodes(target);
    const { a, b } = nodes;
    const now = Date.now();
    for (let round = 0; round < 30; round++) {
      const id = `r${round}`;
      await createAs(a, id, `c${round}`, now);
      await b.grant(id, leaseRecord(`w${round}`, id, Access.WRITE, undefined, now));
      const [seal, discard] = await Promise.allSettled([
        a.seal(`c${round}`, { sealedAt: now }),
        b.discard(`w${round}`),
      ]);
      assertEquals(discard.status, "fulfilled");
      if (seal.status === "rejected") {
        assert(seal.reason instanceof NotFoundError, String(seal.reason));
      }
      assertEquals(await a.stat(id), undefined);
      await a.release(`c${round}`);
    }
    assertEquals(await b.list(), []);
  },
  "list() and stat() on any node answer for the namespace, with holders": async (target) => {
    await using a = await store(target, "a", { address: "http://10.0.0.1:7070" });
    await using b = await store(target, "b");
    await using other = await store(target, "c", { namespace: `${target.namespace}-elsewhere` });
    const now = Date.now();
    await createAs(a, "x", "c1", now, undefined, { k: "v" });
    await a.seal("c1", { sealedAt: now + 1 });
    await a.release("c1");
    await a.annotate("x", { digest: "sha256:abc" });
    await createAs(b, "y", "c2", now, 60_000);
    const x = await b.stat("x");
    assertEquals(x, {
      id: "x",
      state: "SEALED",
      size: 3,
      blobSizes: [1, 2],
      meta: { k: "v" },
      createdAt: now,
      sealedAt: now + 1,
      digest: "sha256:abc",
      holders: [{ node: "a", address: "http://10.0.0.1:7070" }],
    });
    assertEquals((await a.list()).map((info) => [info.id, info.state]).sort(), [
      ["x", "SEALED"],
      ["y", "CREATING"],
    ]);
    assertEquals(await other.list(), []);
    assertEquals(await other.stat("x"), undefined);
    // A node reads what it does not hold: the directory grants, the peer says it is not held here.
    const read = await b.grant("x", leaseRecord("r1", "x", Access.READ, undefined, now));
    assertEquals(read.holders, [{ node: "a", address: "http://10.0.0.1:7070" }]);
    await b.release("r1");
  },
  "close() ends the node's leases and drops it as holder": async (target) => {
    await using b = await store(target, "b");
    const a = await store(target, "a");
    const now = Date.now();
    await createAs(a, "kept", "c1", now);
    await a.seal("c1", { sealedAt: now });
    await createAs(a, "half", "c2", now, 60_000);
    await a.close();
    assertEquals(await b.list(), []);
    await createAs(b, "half", "c3", now);
  },
  "a CREATING object expires in Redis with its CREATE lease": async (target) => {
    await using nodes = await twoNodes(target);
    const { a, b } = nodes;
    const now = Date.now();
    await createAs(a, "x", "c1", now, 150);
    await assertRejects(
      () =>
        b.create(creating("x", Date.now()), leaseRecord("c2", "x", Access.CREATE, undefined, now)),
      AlreadyExistsError,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    assertEquals(await b.stat("x"), undefined);
    assertEquals((await b.counts()).objects, 0);
    await b.create(
      creating("x", Date.now()),
      leaseRecord("c3", "x", Access.CREATE, undefined, now),
    );
    // The first node's sweep still reports its lease, so its peer frees the bytes.
    const [end] = await a.expire(Date.now());
    assertEquals([end!.lease.id, end!.removed?.id], ["c1", "x"]);
    assertEquals((await b.stat("x"))?.state, "CREATING");
  },
  "a system-clock store and a manual one agree on expiry by the clock they are given": async (
    target,
  ) => {
    const clock: Clock = new ManualClock(Date.now());
    await using a = await store(target, "a", { clock });
    await using b = await store(target, "b");
    const now = clock.now();
    await createAs(a, "x", "c1", now, 60_000);
    (clock as ManualClock).advance(60_000);
    // By b's clock the lease is live: the id stays taken.
    await assertRejects(
      () => createAs(b, "x", "c2", Date.now()),
      AlreadyExistsError,
    );
    // By a's clock it has expired: a's own create replaces it.
    await createAs(a, "x", "c3", clock.now());
  },
  "grant() gives the object as it is now, after changes by other nodes": async (target) => {
    await using nodes = await twoNodes(target);
    const { a, b } = nodes;
    const now = Date.now();
    const make = async (size: number) => {
      const info = { ...creating("x", now), size, blobSizes: [size] };
      await a.create(info, leaseRecord(`c${size}`, "x", Access.CREATE, undefined, now));
      await a.seal(`c${size}`, { sealedAt: now });
      await a.release(`c${size}`);
    };
    const read = async () => {
      const lease = leaseRecord(crypto.randomUUID(), "x", Access.READ, undefined, now);
      const info = await b.grant("x", lease);
      await b.release(lease.id);
      return info;
    };
    await make(1);
    assertEquals((await read()).size, 1);
    assertEquals((await read()).digest, undefined);
    await a.annotate("x", { digest: "d1" });
    assertEquals((await read()).digest, "d1");
    // Deleted and made again under the same id: a new object, never the cached one.
    await a.grant("x", leaseRecord("w", "x", Access.WRITE, undefined, now));
    await a.discard("w");
    await make(2);
    assertEquals([(await read()).size, (await read()).digest], [2, undefined]);
  },
};
