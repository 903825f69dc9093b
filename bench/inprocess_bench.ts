/**
 * In-process benchmarks of the foundation: get of 1 KiB vs 1 GiB, put of
 * 64 MiB vs a plain copy into touched memory, and 4 KiB operations per second.
 */
import { connect } from "../mod.ts";
import { quantile, report, throughput, timeEach } from "./stats.ts";

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

await using client = await connect(undefined, { capacity: 2 * GiB });

// get: acquire READ, touch a byte, release.
const small = await client.put(new Uint8Array(KiB).fill(1));
const large = await client.create(GiB, { id: "large" });
if (large.buffer) large.buffer.fill(7);
else await large.write(new Uint8Array(GiB).fill(7));
await large.seal();
const getOnce = (id: string) => async () => {
  using handle = await client.get(id);
  if (handle.bytes[handle.size - 1] === 255) throw new Error("unexpected byte");
};
const getSmall = quantile(await timeEach(2000, getOnce(small), 200), 0.5);
const getLarge = quantile(await timeEach(2000, getOnce("large"), 200), 0.5);
report({
  bench: "inprocess_get_1GiB_vs_1KiB",
  get_1KiB_us: getSmall * 1000,
  get_1GiB_us: getLarge * 1000,
  ratio: getLarge / getSmall,
  target: "<= 2",
});
await client.delete("large");

// put of 64 MiB vs copying 64 MiB into already-touched memory.
const payload = new Uint8Array(64 * MiB).fill(3);
const touched = new Uint8Array(64 * MiB).fill(1);
const copy = quantile(await timeEach(20, () => touched.set(payload), 5), 0.5);
const put = quantile(
  await timeEach(20, async () => {
    const id = await client.put(payload);
    await client.delete(id);
  }, 5),
  0.5,
);
report({
  bench: "inprocess_put_64MiB_vs_copy",
  copy_GBps: (64 * MiB) / (copy / 1000) / 1e9,
  put_GBps: (64 * MiB) / (put / 1000) / 1e9,
  ratio: copy / put,
  target: ">= 0.7",
});

// 4 KiB objects: put (create, write, seal, release) and get per second.
const page = new Uint8Array(4 * KiB).fill(9);
const ids: string[] = [];
const putRate = await throughput(2000, 1, async () => {
  ids.push(await client.put(page));
});
let next = 0;
const getRate = await throughput(2000, 1, async () => {
  using handle = await client.get(ids[next++ % ids.length]!);
  if (handle.size !== page.length) throw new Error("wrong size");
});
report({ bench: "inprocess_4KiB_ops", put_per_s: putRate, get_per_s: getRate });
for (const id of ids) await client.delete(id);
