/**
 * Redis losing its state under two daemons (peers in processes of their own on
 * one namespace): wiped, or with a daemon frozen past its liveness while the
 * other puts the same id with other bytes. No daemon may then serve bytes other
 * than the directory's under that id. On a standalone Redis and on a Redis
 * Cluster.
 */
import { assert, assertEquals } from "../../helpers/assert.ts";
import { eventually } from "../../helpers/eventually.ts";
import { redisTestOptions, startRedis } from "../../helpers/redis_server.ts";
import { startRedisCluster } from "../../helpers/redis_cluster.ts";
import type { Target } from "../../helpers/lease_store_cases.ts";
import { computeDigest } from "../../../backends/digest.ts";
import { RedisLeaseStore } from "../../../backends/redis/mod.ts";
import type { Blob } from "../../../core/mod.ts";

const CHILD = new URL("../../helpers/redis_peer_child.ts", import.meta.url).pathname;
const LIVENESS = 450;

interface Daemon extends AsyncDisposable {
  readonly url: string;
  readonly pid: number;
}

async function startDaemon(target: Target, node: string): Promise<Daemon> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, target.url, target.namespace, node, String(LIVENESS)],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let output = "";
  while (!output.includes("\n")) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`Daemon ${node} exited before it was ready: ${output}`);
    output += value;
  }
  const url = output.match(/^ready (\S+)/)?.[1];
  assert(url !== undefined, `daemon ${node} printed ${output}`);
  return {
    url,
    pid: child.pid,
    [Symbol.asyncDispose]: async () => {
      try {
        Deno.kill(child.pid, "SIGCONT");
        Deno.kill(child.pid, "SIGKILL");
      } catch {
        // Gone already.
      }
      await child.status;
      await lines.cancel();
    },
  };
}

/** Daemons a and b, started at once; disposing stops both. */
async function startDaemons(target: Target): Promise<{ a: Daemon; b: Daemon } & AsyncDisposable> {
  const started = await Promise.allSettled([startDaemon(target, "a"), startDaemon(target, "b")]);
  const running = started.flatMap((outcome) =>
    outcome.status === "fulfilled" ? [outcome.value] : []
  );
  const stop = async () => {
    await Promise.all(running.map((daemon) => daemon[Symbol.asyncDispose]()));
  };
  const [a, b] = started;
  if (a?.status !== "fulfilled" || b?.status !== "fulfilled") {
    await stop();
    throw a?.status === "rejected" ? a.reason : (b as PromiseRejectedResult).reason;
  }
  return { a: a.value, b: b.value, [Symbol.asyncDispose]: stop };
}

async function put(daemon: Daemon, id: string, text: string): Promise<void> {
  const response = await fetch(`${daemon.url}/v1/objects/${id}`, { method: "PUT", body: text });
  await response.body?.cancel();
  assertEquals(response.status, 201, `PUT ${id} on ${daemon.url}`);
}

/** The bytes a daemon serves under `id`, or undefined when it serves none. */
async function served(daemon: Daemon, id: string): Promise<Uint8Array | undefined> {
  const response = await fetch(`${daemon.url}/v1/objects/${id}`);
  const body = new Uint8Array(await response.arrayBuffer());
  if (response.status === 404) return undefined;
  assertEquals(response.status, 200, `GET ${id} on ${daemon.url}`);
  return body;
}

async function metric(daemon: Daemon, name: string): Promise<number> {
  const text = await (await fetch(`${daemon.url}/metrics`)).text();
  const line = text.split("\n").find((line) => line.startsWith(`packice_${name} `));
  return line === undefined ? NaN : Number(line.split(" ")[1]);
}

function digestOf(bytes: Uint8Array): Promise<string> {
  const blob: Blob = {
    size: bytes.length,
    openView: () => bytes,
    closeView: () => {},
    read: (offset, length) => Promise.resolve(bytes.slice(offset, offset + length)),
    write: () => Promise.reject(new Error("read-only")),
  };
  return computeDigest([blob]);
}

/**
 * The invariant: every daemon that serves `id` serves bytes whose digest is
 * the directory's digest for `id`, and each holder the directory lists serves.
 */
async function assertOneContent(
  directory: RedisLeaseStore,
  daemons: Record<string, Daemon>,
  id: string,
): Promise<void> {
  let digest: string | undefined;
  await eventually(
    async () => (digest = (await directory.stat(id))?.digest) !== undefined,
    `${id} has a digest`,
  );
  const holders = (await directory.stat(id))?.holders?.map((holder) => holder.node) ?? [];
  for (const [node, daemon] of Object.entries(daemons)) {
    const bytes = await served(daemon, id);
    if (bytes === undefined) {
      assert(
        !holders.includes(node),
        `${node} is listed as a holder of ${id} but does not serve it`,
      );
      continue;
    }
    assertEquals(await digestOf(bytes), digest, `${node} serves other bytes under ${id}`);
  }
}

/** The directory as any node sees it, for the test to check against. */
function observer(target: Target): Promise<RedisLeaseStore> {
  return RedisLeaseStore.connect({
    url: target.url,
    namespace: target.namespace,
    node: "observer",
    backoff: { initial: 20, max: 100 },
  });
}

async function digested(directory: RedisLeaseStore, ids: readonly string[]): Promise<void> {
  for (const id of ids) {
    await eventually(
      async () => (await directory.stat(id))?.digest !== undefined,
      `${id} digested`,
    );
  }
}

/** a puts, is frozen past its liveness and reaped; b puts the same ids; a resumes. */
async function frozen(target: Target): Promise<void> {
  await using daemons = await startDaemons(target);
  const { a, b } = daemons;
  await using directory = await observer(target);
  // x: other size; y: same size, other bytes; z: the same bytes on both.
  await put(a, "x", "14 bytes of a.");
  await put(a, "y", "15 bytes of a..");
  await put(a, "z", "the same bytes");
  await digested(directory, ["x", "y", "z"]);

  Deno.kill(a.pid, "SIGSTOP");
  try {
    await eventually(async () => (await directory.list()).length === 0, "b reaps a", {
      timeout: 10 * LIVENESS,
    });
    await put(b, "x", "15 bytes of b..");
    await put(b, "y", "15 bytes of b..");
    await put(b, "z", "the same bytes");
  } finally {
    Deno.kill(a.pid, "SIGCONT");
  }

  await eventually(
    async () => await metric(a, "directory_conflicts_total") === 2,
    "a drops x and y",
  );
  await eventually(
    async () => (await directory.stat("z"))?.holders?.length === 2,
    "a joins b as a holder of the same bytes",
  );
  for (const id of ["x", "y", "z"]) await assertOneContent(directory, { a, b }, id);
  assertEquals(await served(a, "x"), undefined);
  assertEquals(new TextDecoder().decode(await served(b, "x")), "15 bytes of b..");
  assertEquals(new TextDecoder().decode(await served(a, "z")), "the same bytes");
}

/** a puts and is frozen; Redis loses everything (`wipe`); b puts the same ids; a resumes. */
async function wiped(target: Target, wipe: () => Promise<void>): Promise<void> {
  await using daemons = await startDaemons(target);
  const { a, b } = daemons;
  await using directory = await observer(target);
  await put(a, "x", "14 bytes of a.");
  await put(a, "y", "15 bytes of a..");
  await put(a, "kept", "only a has it");
  await digested(directory, ["x", "y", "kept"]);

  Deno.kill(a.pid, "SIGSTOP");
  try {
    await wipe();
    await eventually(
      () => put(b, "x", "15 bytes of b..").then(() => true, () => false),
      "b is back",
    );
    await put(b, "y", "15 bytes of b..");
  } finally {
    Deno.kill(a.pid, "SIGCONT");
  }

  await eventually(
    async () => await metric(a, "directory_conflicts_total") === 2,
    "a drops x and y",
  );
  await eventually(async () => (await directory.stat("kept")) !== undefined, "a registers again");
  for (const id of ["x", "y", "kept"]) await assertOneContent(directory, { a, b }, id);
  assertEquals(new TextDecoder().decode(await served(a, "kept")), "only a has it");
  assertEquals((await directory.stat("x"))?.holders?.map((holder) => holder.node), ["b"]);
}

Deno.test(
  "a daemon frozen past its liveness never serves its old bytes under an id put again elsewhere",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await frozen({ url: redis.url, namespace: "loss" });
  },
);

Deno.test(
  "Redis restarted empty: a daemon registering again never merges its bytes with another's",
  redisTestOptions,
  async () => {
    await using redis = await startRedis();
    await wiped({ url: redis.url, namespace: "loss" }, async () => {
      await redis.stop();
      await redis.restart();
    });
  },
);

Deno.test(
  "on a Redis Cluster: frozen past liveness, or every master wiped by FLUSHALL, one id keeps one content",
  redisTestOptions,
  async (t) => {
    await using cluster = await startRedisCluster();
    await t.step("frozen", () => frozen({ url: cluster.url, namespace: "frozen" }));
    await t.step("wiped", () =>
      wiped({ url: cluster.url, namespace: "wiped" }, async () => {
        for (const port of cluster.ports) await cluster.cli(port, "FLUSHALL");
      }));
  },
);
