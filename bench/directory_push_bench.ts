/**
 * What a receiver's process spends to learn of its object's holders, per event,
 * on the Redis directory: one lookup of an entry of 8 holders (7 partial,
 * with bitfields of 64 pieces), as a transfer made every 50 ms before the
 * directory pushed changes, against one pushed change (one holder's new
 * bitfield) taken into a transfer's listing. Redis publishes the pushes
 * itself (a script that loops), so this process's CPU is the receiver's
 * alone; lookups go one after the other, as a transfer's do.
 *
 * Also one announce of a partial holder's pieces (the announcer's side: one
 * round trip of the directory's script, which publishes the push).
 *
 * Multiply by the counts of `bench/swarm_bench.ts`'s `swarm_broadcast_directory`
 * line (lookups avoided, pushes delivered: each push reaches every receiver;
 * `piece_announces`) for the balance of a broadcast.
 *
 * `PACKICE_PUSH_PIECES` (default 64) sets the pieces of the object: what a
 * whole bitfield in each push costs against a smaller one (a delta).
 *
 * Usage: deno run -A bench/directory_push_bench.ts
 */
import { startRedis } from "../tests/helpers/redis_server.ts";
import { RedisDirectory } from "../p2p/directory/redis.ts";
import type { ContentRecord } from "../p2p/directory.ts";
import { HolderListing } from "../p2p/holder_listing.ts";
import { threadsCpuMs } from "./processes.ts";
import { report } from "./stats.ts";

const ROUNDS = Number(Deno.env.get("PACKICE_PUSH_ROUNDS") ?? "2000");
/** Milliseconds between two lookups, or two pushes. */
const GAP_MS = 2;
const PIECES = Number(Deno.env.get("PACKICE_PUSH_PIECES") ?? "64");

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const record: ContentRecord = {
  id: "model",
  size: PIECES * (4 << 20),
  digest: digest("a"),
  pieceSize: 4 << 20,
  pieceDigests: Array.from({ length: PIECES }, () => digest("b")),
};
const bits = () => {
  // Two bitfields back to back: the pieces it has, then those coming.
  const pieces = new Uint8Array(2 * Math.ceil(PIECES / 8));
  crypto.getRandomValues(pieces);
  return pieces;
};

await using redis = await startRedis();
await using announcer = await RedisDirectory.connect({ url: redis.url, node: "h" });
await using receiver = await RedisDirectory.connect({ url: redis.url, node: "r" });
await announcer.announce(record, { node: "h", address: "http://127.0.0.1:7000", piecePort: 7001 });
for (let i = 1; i < 8; i++) {
  await announcer.announce(
    record,
    {
      node: `r${i}`,
      address: `http://127.0.0.1:${7000 + 2 * i}`,
      piecePort: 7001 + 2 * i,
      pieces: bits(),
    },
    { existing: true },
  );
}
const listing = new HolderListing({
  initial: [],
  lookup: async () => [...(await receiver.holders(record.id, record.digest) ?? [])],
  ask: () => Promise.resolve(undefined),
  // Not live: every next() is a lookup, as before pushes.
  live: () => false,
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** CPU in µs per round of `round`, run `ROUNDS` times 2 ms apart, less the 2 ms waits alone. */
async function perRound(round: () => Promise<unknown>): Promise<number> {
  let cpu = threadsCpuMs(Deno.pid);
  for (let i = 0; i < ROUNDS; i++) await sleep(GAP_MS);
  const idle = threadsCpuMs(Deno.pid) - cpu;
  cpu = threadsCpuMs(Deno.pid);
  for (let i = 0; i < ROUNDS; i++) {
    await round();
    await sleep(GAP_MS);
  }
  return ((threadsCpuMs(Deno.pid) - cpu - idle) * 1000) / ROUNDS;
}

// Lookups, as a transfer's listing makes them, 2 ms apart.
for (let i = 0; i < 200; i++) await listing.next();
const lookupUs = await perRound(() => listing.next());

// Announces of a partial holder's pieces, one after the other, 2 ms apart.
const self = { node: "r", address: "http://127.0.0.1:7100", piecePort: 7101 };
const announceUs = await perRound(() =>
  receiver.announce(record, { ...self, pieces: bits() }, { existing: true })
);

// Pushes, published 2 ms apart by another process (redis-cli): the message
// of a partial holder's announce, taken into the listing.
const pushed = Promise.withResolvers<void>();
let pushes = 0;
using watch = receiver.watch(record.id, (change) => {
  if (change.kind === "announced" && change.digest === record.digest) listing.apply(change);
  if (++pushes === ROUNDS) pushed.resolve();
});
while (!watch.live) await sleep(5);
const message =
  `+\n${record.digest}\nr3\nhttp://127.0.0.1:7006 ${bits().toBase64()}\n7007 http://127.0.0.1:7006`;
const cpu = threadsCpuMs(Deno.pid);
const publishing = new Deno.Command("redis-cli", {
  args: [
    "-p",
    String(redis.port),
    "-r",
    String(ROUNDS),
    "-i",
    String(GAP_MS / 1000),
    "SPUBLISH",
    `packice:holders:{${record.id}}`,
    message,
  ],
  stdout: "null",
  stderr: "null",
}).output();
await pushed.promise;
const pushMs = threadsCpuMs(Deno.pid) - cpu;
await publishing;
// This process idle as long, waiting: taken out as for lookups.
const pushIdleMs = await (async () => {
  const before = threadsCpuMs(Deno.pid);
  for (let i = 0; i < ROUNDS; i++) await sleep(GAP_MS);
  return threadsCpuMs(Deno.pid) - before;
})();
const pushUs = ((pushMs - pushIdleMs) * 1000) / ROUNDS;
await listing.settled();

report({
  bench: "directory_push_receiver_cpu",
  holders: 8,
  pieces: PIECES,
  rounds: ROUNDS,
  lookup_cpu_us: lookupUs,
  announce_cpu_us: announceUs,
  push_cpu_us: pushUs,
  // What waking this process (a timer every 2 ms, doing nothing) costs by
  // itself: a push costs about that, being one wake.
  wake_cpu_us: (pushIdleMs * 1000) / ROUNDS,
  load: Deno.loadavg()[0],
});
