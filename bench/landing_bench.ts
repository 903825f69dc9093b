/**
 * What it costs to land an arriving object's bytes in a fresh memfd, by the
 * ways a receiver could: the CPU time (this thread's, user and kernel) to
 * fill `PACKICE_LANDING_MIB` (default 256) from a buffer already in cache,
 * 256 KiB at a time, as `pk_http_recv_fd` (section 10 of native/packice.c)
 * lands a piece after hashing it:
 *
 * - `pwrite`: how pieces land (p2p/swarm/landing.ts): each page is allocated
 *   as the write comes to it, neither zeroed first nor put in a page table.
 * - `mapped`: stores through a writable shared mapping, as a receive straight
 *   into mapped pages would make: each page is allocated, zeroed and mapped
 *   by a fault on its first store.
 * - `populated`: the mapping's pages made ahead (fallocate, then
 *   MADV_POPULATE_WRITE), then stores: the making could run on another
 *   thread, the stores on the receive path.
 * - `fallocated`: the pages allocated ahead (fallocate), then pwrite.
 *
 * Each line gives the total, the part made ahead (`prep_ms`) and the rest
 * (`write_ms`), the best of `PACKICE_LANDING_ROUNDS` (default 3). On a
 * machine whose CPUs are all busy (a broadcast, bench/swarm_bench.ts), work
 * made ahead on another thread is still work: compare the totals.
 *
 * Then what hashing the same bytes as they land costs (`landing_piece_hash`),
 * 256 KiB in cache at a time as the receiver hashes them, by each piece
 * digest algorithm and kernel on this CPU: SHA-256 (the SHA extensions where
 * the CPU has them), BLAKE3 in plain C and in 8 (AVX2) and 16 (AVX-512)
 * lanes; `ratio` is SHA-256's time over each one's, in the same run.
 *
 * Usage: deno run -A bench/landing_bench.ts
 */
import { loadNative } from "../native/load.ts";
import { Mapping } from "../native/mapping.ts";
import { check } from "../native/errno.ts";
import { report } from "./stats.ts";

const SIZE = Number(Deno.env.get("PACKICE_LANDING_MIB") ?? "256") << 20;
const ROUNDS = Number(Deno.env.get("PACKICE_LANDING_ROUNDS") ?? "3");
const STEP = 256 << 10;

const native = loadNative();
if (native === undefined) throw new Error("The native library is needed: deno task build:native");
const { symbols } = native;
// Off V8's heap, filled once: in cache, as a piece's bytes are when they land.
const stage = new Uint8Array(new ArrayBuffer(STEP)).fill(7);

/** CPU time of this thread so far, in ms (on-CPU time from schedstat, kernel included). */
function threadMs(): number {
  return Number(Deno.readTextFileSync(`/proc/thread-self/schedstat`).split(" ")[0]) / 1e6;
}

/** A fresh memfd of SIZE bytes, its pages allocated (`allocate`) or not, and its mapping if asked. */
function prepare(allocate: boolean, map: boolean): { fd: number; pointer: bigint } {
  const fd = new Int32Array(1);
  const pointer = new BigUint64Array(1);
  check(
    symbols.pk_memfd_prepare(BigInt(SIZE), allocate ? 1 : 0, fd, map ? pointer : null),
    "memfd",
  );
  return { fd: fd[0]!, pointer: pointer[0]! };
}

function pwriteAll(fd: number): void {
  for (let at = 0; at < SIZE; at += STEP) {
    check(symbols.pk_pwrite_all(fd, stage, BigInt(STEP), BigInt(at)), "pwrite");
  }
}

function store(mapping: Mapping): void {
  const view = mapping.openView();
  for (let at = 0; at < SIZE; at += STEP) view.set(stage, at);
  mapping.closeView(view);
}

/** One way of landing: what is made ahead (it returns what frees it), then the writes. */
const ways: Record<string, { prep: () => () => void; write: () => void }> = {};
let fd = -1;
let mapping: Mapping | undefined;
const free = () => {
  mapping?.close();
  mapping = undefined;
  symbols.pk_close(fd);
};
ways.pwrite = {
  prep: () => (fd = prepare(false, false).fd, free),
  write: () => pwriteAll(fd),
};
ways.mapped = {
  prep: () => {
    fd = prepare(false, false).fd;
    mapping = Mapping.map(native, fd, SIZE, { writable: true });
    return free;
  },
  write: () => store(mapping!),
};
ways.populated = {
  prep: () => {
    const made = prepare(true, true);
    fd = made.fd;
    mapping = new Mapping(native, Deno.UnsafePointer.create(made.pointer), SIZE);
    return free;
  },
  write: () => store(mapping!),
};
ways.fallocated = {
  prep: () => (fd = prepare(true, false).fd, free),
  write: () => pwriteAll(fd),
};

for (const [way, { prep, write }] of Object.entries(ways)) {
  let best = { total: Infinity, prep: 0, write: 0 };
  for (let round = 0; round < ROUNDS; round++) {
    const start = threadMs();
    const done = prep();
    const made = threadMs();
    write();
    const end = threadMs();
    done();
    if (end - start < best.total) {
      best = { total: end - start, prep: made - start, write: end - made };
    }
  }
  report({
    bench: "landing_fresh_memfd",
    way,
    object_mib: SIZE >> 20,
    cpu_ms: best.total,
    prep_ms: best.prep,
    write_ms: best.write,
    ns_per_byte: (best.total * 1e6) / SIZE,
  });
}

/** Hashes SIZE bytes, STEP at a time from the stage. */
const hashes: Record<string, { lanes: number; hash: () => void }> = {
  sha256: {
    lanes: 1,
    hash: () => {
      const context = new Uint8Array(symbols.pk_sha256_ctx_size());
      const out = new Uint8Array(32);
      for (let at = 0; at < SIZE; at += STEP) {
        symbols.pk_sha256_init(context);
        symbols.pk_sha256_update(context, stage, BigInt(STEP));
        symbols.pk_sha256_final(context, out);
      }
    },
  },
};
for (const lanes of [1, 8, 16].filter((lanes) => lanes <= symbols.pk_blake3_lanes(0))) {
  const out = new Uint8Array(32);
  hashes[`blake3`.concat(lanes === 1 ? "_c" : `_x${lanes}`)] = {
    lanes,
    hash: () => {
      for (let at = 0; at < SIZE; at += STEP) symbols.pk_blake3(stage, BigInt(STEP), out);
    },
  };
}
let sha256Ms = 0;
for (const [algorithm, { lanes, hash }] of Object.entries(hashes)) {
  symbols.pk_blake3_lanes(lanes);
  let best = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    const start = threadMs();
    hash();
    best = Math.min(best, threadMs() - start);
  }
  if (algorithm === "sha256") sha256Ms = best;
  report({
    bench: "landing_piece_hash",
    algorithm,
    object_mib: SIZE >> 20,
    cpu_ms: best,
    gb_per_s: SIZE / best / 1e6,
    ratio: sha256Ms / best,
  });
}
symbols.pk_blake3_lanes(0);
