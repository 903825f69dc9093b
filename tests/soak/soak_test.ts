/**
 * A miniature of `deno task soak` (tests/soak/soak.ts), so that the soak
 * itself keeps working: a memory daemon, one client process on its socket and
 * one on HTTP, for a few seconds, with looser bounds on memory and fds.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { flatness, type Sample } from "./sampler.ts";
import { formatReport, runSoak } from "./soak.ts";

const MiB = 2 ** 20;

Deno.test("soak in miniature: every read matches its digest, nothing fails, nothing is left", async () => {
  const [report] = await runSoak({
    seconds: 12,
    impls: ["mem"],
    workers: 2,
    lanes: 2,
    maxSize: 4 * MiB,
    // Looser than the soak's: with 4 s a third, the middle third is barely warm.
    bounds: { memoryRatio: 0.5, memorySlack: 128 * MiB, fdSlack: 2 * 2 * 7 + 32 },
  });
  assert(report !== undefined);
  assertEquals(report.failures, [], formatReport([report]));
  assertEquals([report.failureCount, report.internal], [0, 0]);
  for (const kind of ["put", "get", "stream", "create", "delete", "lease", "reconnect"]) {
    assert((report.ops[kind] ?? 0) > 0, `no ${kind} ran: ${JSON.stringify(report.ops)}`);
  }
  assert(report.bytesChecked > 0);
  assert(report.samples.length >= 9, `${report.samples.length} samples in 12 s`);
});

Deno.test("soak flatness: growth in the last third past the bounds is reported", () => {
  const bounds = { memoryRatio: 0.15, memorySlack: 16 * MiB, fdSlack: 4 };
  const run = (grow: (i: number) => Partial<Sample>) =>
    Array.from({ length: 30 }, (_, i) => ({
      at: i * 1000,
      rss: 200 * MiB,
      anon: 50 * MiB,
      fds: 40,
      ...grow(i),
    }));
  // Noise within the bounds, and a warm-up that grows a lot, are flat.
  assertEquals(
    flatness(run((i) => ({ rss: (i < 10 ? 20 * i : 200 + (i % 3) * 10) * MiB })), bounds).problems,
    [],
  );
  const leak = flatness(run((i) => ({ anon: (50 + 5 * i) * MiB, fds: 40 + i })), bounds);
  assertEquals(leak.problems.length, 2, leak.problems.join("; "));
  assert(leak.problems[0]!.startsWith("RssAnon grew"));
  assert(leak.problems[1]!.startsWith("fds grew from 59 to 69"));
});
