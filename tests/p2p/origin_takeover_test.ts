/**
 * The downloader of an origin URL killed in the middle of its body: the
 * daemon that takes the download over resumes from the pieces it holds
 * (the ones it pulled from the dead downloader), the other followers keep
 * theirs, and the origin sends the body once more only by what was in flight
 * at the kill. With a body of no stated length (spooled) and with one of
 * known length; and with a body that changed meanwhile (another ETag), which
 * every daemon then takes whole, never a mix of both. Daemons stopped
 * (SIGSTOP) at the wrong moment, as a loaded host stalls them: a follower
 * granted the claim after another took over and finished; a downloader
 * stopped past its lease while another daemon claimed the download. Each
 * time no download from the origin starts after the stall.
 *
 * The origin holds its first response after 13 MiB: the downloader has three
 * whole pieces of 4 MiB and one MiB of the fourth when it is killed, and the
 * followers have pulled those three pieces.
 */
import { connect, originId } from "../../mod.ts";
import { assert, assertEquals } from "../helpers/assert.ts";
import { pattern, sameBytes, startClusterDaemons } from "../helpers/cluster.ts";
import { eventually } from "../helpers/eventually.ts";
import { owners } from "../../p2p/directory/rendezvous.ts";
import { redisTestOptions, startRedis } from "../helpers/redis_server.ts";
import { type ClusterDaemon, converged, startCluster, TOKEN } from "./cluster_daemons.ts";
import { ETAG, startCountingOrigin } from "./counting_origin.ts";

const SIZE = 32 << 20;
const PAUSE = 13 << 20;
/** What the followers hold at the kill: three whole pieces. */
const HELD = 12 << 20;
/** The pieces' size. */
const PIECE = 4 << 20;
/** The environment of a daemon whose records' piece digests are SHA-256, as an older one's. */
const OLDER = { PACKICE_PIECE_DIGEST: "sha256" };

async function fetchBody(daemon: { readonly socket: string }, url: string) {
  await using client = await connect(daemon.socket);
  const response = await client.fetch(url);
  return {
    status: response.status,
    etag: response.headers.get("etag"),
    body: new Uint8Array(await response.arrayBuffer()),
  };
}

/**
 * Starts a fetch on `a`, then on `b` and `c` once `a`'s origin response
 * paused, waits until `b` and `c` each pulled what `a` holds, and kills `a`.
 *
 * @returns The fetches of `b` and `c`, and the bytes the origin had sent at the kill.
 */
async function killDownloader(
  daemons: readonly ClusterDaemon[],
  origin: { url: string; paused: Promise<void>; readonly sent: number },
) {
  const [a, b, c] = daemons as [ClusterDaemon, ClusterDaemon, ClusterDaemon];
  const first = fetchBody(a, origin.url).catch((error) => error);
  await origin.paused;
  const others = [b, c].map((daemon) => fetchBody(daemon, origin.url));
  await eventually(
    async () =>
      (await b.metric("packice_origin_peer_bytes_total")) >= HELD &&
      (await c.metric("packice_origin_peer_bytes_total")) >= HELD,
    "b and c pulled the pieces a holds",
    { timeout: 15_000, interval: 20 },
  );
  const atKill = origin.sent;
  await a.signal("SIGKILL");
  assert((await first) instanceof Error, "the killed daemon's client saw an error");
  return { results: await Promise.all(others), atKill };
}

for (const chunked of [false, true]) {
  const kind = chunked ? "a chunked body (spooled)" : "a body of known length";

  Deno.test(`the downloader of ${kind} killed: the taker resumes from the pieces held, the followers keep theirs`, async () => {
    const body = pattern(SIZE, chunked ? 81 : 82);
    await using origin = startCountingOrigin({ body, chunked, pauseAt: PAUSE });
    await using cluster = await startCluster(["a", "b", "c"]);
    await converged(cluster.daemons);
    const { results, atKill } = await killDownloader(cluster.daemons, origin);
    assertEveryBody(results, body);
    const requests = JSON.stringify(origin.requests);
    assertEquals(origin.requests.length, 2, requests);
    assertEquals(origin.requests[1]!.range, `bytes=${HELD}-`, requests);
    assertEquals(origin.requests[1]!.ifRange, ETAG, requests);
    assertEquals(origin.requests[1]!.status, 206, requests);
    // Once the object, and what was in flight at the kill (the fourth piece's MiB).
    const inFlight = atKill - HELD;
    assert(origin.sent <= SIZE + inFlight, `the origin sent ${origin.sent} bytes`);
    // No follower pulled a piece twice: what it had from the dead downloader stayed.
    for (const daemon of cluster.daemons.slice(1)) {
      const pulled = await daemon.metric("packice_origin_peer_bytes_total");
      assert(pulled <= SIZE, `${daemon.node} pulled ${pulled} bytes`);
    }
  });

  Deno.test(`the downloader of ${kind} killed and the origin's body changed: every daemon takes the new one whole`, async () => {
    const body = pattern(SIZE, chunked ? 83 : 84);
    // Another length too when chunked (its length is learnt at its end); the same when not,
    // so that only the validator tells the versions apart.
    const then = pattern(chunked ? SIZE + (3 << 20) : SIZE, chunked ? 85 : 86);
    await using origin = startCountingOrigin({
      body,
      chunked,
      pauseAt: PAUSE,
      then,
      thenEtag: '"v2"',
    });
    await using cluster = await startCluster(["a", "b", "c"]);
    await converged(cluster.daemons);
    const { results, atKill } = await killDownloader(cluster.daemons, origin);
    for (const { status, etag, body: got } of results) {
      assertEquals(status, 200);
      assertEquals(etag, '"v2"');
      assert(sameBytes(got, then), "the new body, whole");
    }
    const requests = JSON.stringify(origin.requests);
    // The resume's If-Range no longer matched: the whole new body, once, in that answer.
    assertEquals(origin.requests.map((request) => request.status), [200, 200], requests);
    assertEquals(origin.requests[1]!.ifRange, ETAG, requests);
    assert(origin.sent <= atKill + then.length, `the origin sent ${origin.sent} bytes`);
    // The old pieces pulled, then the new body's once at most.
    for (const daemon of cluster.daemons.slice(1)) {
      const pulled = await daemon.metric("packice_origin_peer_bytes_total");
      assert(pulled <= HELD + then.length, `${daemon.node} pulled ${pulled} bytes`);
    }
  });
}

// The first two owners of the claim in the embedded directory (all 3 members own it). c, b: c
// takes over at once, and b, granted the claim once c finished and let it go, must not resume
// again. b, a: the stopped follower and the dead downloader, who cannot answer c's claim until the
// membership calls them dead; c must try again meanwhile, not fail its fetch.
for (const claimOwners of [["c", "b"], ["b", "a"]] as const) {
  Deno.test(`the downloader killed while a follower is stopped, claim owners ${claimOwners}: the origin resumes once, the stopped follower pulls the rest from the taker`, async () => {
    const body = pattern(SIZE, 89);
    await using origin = startCountingOrigin({ body, pauseAt: PAUSE });
    const url = ownedBy(origin.url, claimOwners);
    await using cluster = await startCluster(["a", "b", "c"]);
    await converged(cluster.daemons);
    const [a, b, c] = cluster.daemons as [ClusterDaemon, ClusterDaemon, ClusterDaemon];
    const first = fetchBody(a, url).catch((error) => error);
    await origin.paused;
    // Each settled: a failure shows as the one it is, not as a rejection no one awaited yet.
    const [fromB, fromC] = [b, c].map((daemon) =>
      fetchBody(daemon, url).then((result) => ({ result }), (error) => ({ error }))
    );
    await eventually(
      async () => (await holdsPieces(b, url)) && (await holdsPieces(c, url)),
      "b and c hold the pieces a holds",
      { timeout: 15_000, interval: 20 },
    );
    // b learns of a's death only once c took the download over, finished it and let its
    // claim go: b is then granted the claim, with the object sealed at c.
    await b.signal("SIGSTOP");
    try {
      await a.signal("SIGKILL");
      assert((await first) instanceof Error, "the killed daemon's client saw an error");
      assertEveryBody([settled(await fromC!)], body);
    } finally {
      await b.signal("SIGCONT");
    }
    assertEveryBody([settled(await fromB!)], body);
    const requests = JSON.stringify(origin.requests);
    assertEquals(
      origin.requests.map((request) => request.range),
      [null, `bytes=${HELD}-`],
      requests,
    );
    const pulled = await b.metric("packice_origin_peer_bytes_total");
    assert(pulled <= SIZE, `b pulled ${pulled} bytes`);
  });
}

Deno.test("the downloader of a chunked body with no validator killed: the taker asks the whole body again and checks what it held", async () => {
  const body = pattern(SIZE, 87);
  await using origin = startCountingOrigin({ body, chunked: true, etag: false, pauseAt: PAUSE });
  await using cluster = await startCluster(["a", "b", "c"]);
  await converged(cluster.daemons);
  const { results, atKill } = await killDownloader(cluster.daemons, origin);
  assertEveryBody(results, body);
  // A range could splice two versions: none asked.
  assertEquals(origin.requests.map((request) => request.range), [null, null]);
  assert(origin.sent <= atKill + SIZE, `the origin sent ${origin.sent} bytes`);
});

Deno.test("the downloader of a chunked body killed while one follower holds less: the pieces the other holds do not come from the origin again", async () => {
  const body = pattern(SIZE, 88);
  await using origin = startCountingOrigin({ body, chunked: true, pauseAt: PAUSE });
  await using cluster = await startCluster(["a", "b"]);
  // c takes 8 MB/s: it holds less than b when a dies (checked), whichever of them takes over.
  const c = await cluster.add("c", ["--max-download-rate", "8MB"]);
  await converged(cluster.daemons);
  const [a, b] = cluster.daemons as [ClusterDaemon, ClusterDaemon];
  const first = fetchBody(a, origin.url).catch((error) => error);
  await origin.paused;
  const fromB = fetchBody(b, origin.url);
  await eventually(
    async () => (await b.metric("packice_origin_peer_bytes_total")) >= HELD,
    "b pulled the pieces a holds",
    { timeout: 15_000, interval: 20 },
  );
  const fromC = fetchBody(c, origin.url);
  await eventually(
    async () => (await c.metric("packice_origin_downstream_total")) >= 1,
    "c follows a",
    { timeout: 15_000, interval: 20 },
  );
  const atKill = origin.sent;
  const heldByC = await c.metric("packice_origin_peer_bytes_total");
  await a.signal("SIGKILL");
  assert(heldByC < HELD, `c pulled ${heldByC} bytes before the kill, as much as b`);
  assert((await first) instanceof Error, "the killed daemon's client saw an error");
  for (const { status, body: got } of await Promise.all([fromB, fromC])) {
    assertEquals(status, 200);
    assert(sameBytes(got, body), "the body after the takeover");
  }
  const requests = JSON.stringify(origin.requests);
  assertEquals(origin.requests.map((request) => request.range), [null, `bytes=${HELD}-`], requests);
  assert(origin.sent <= SIZE + atKill - HELD, `the origin sent ${origin.sent} bytes`);
});

for (const chunked of [true, false]) {
  const kind = chunked ? "a chunked body's" : "a body's";
  const pieces = chunked ? "spool pieces" : "pieces";
  Deno.test(`${kind} downloader of the other piece algorithm killed: a follower keeps the ${pieces} it pulled, checked here, and pulls only the rest`, async () => {
    const size = 24 << 20;
    const body = pattern(size, chunked ? 92 : 94);
    // c's whole download takes 2 s: b finds it downloading, its digests BLAKE3, b's SHA-256.
    await using origin = startCountingOrigin({ body, chunked, pauseAt: PAUSE, rate: 12e6 });
    await using cluster = await startCluster(["b", "c"]);
    const a = await cluster.add("a", [], OLDER);
    await converged(cluster.daemons);
    const [b, c] = cluster.daemons as [ClusterDaemon, ClusterDaemon];
    // c claims first once a is dead, b stopped meanwhile: c takes over with no piece of its own.
    const url = ownedBy(origin.url, ["c", "b"]);
    const first = fetchBody(a, url).catch((error) => error);
    await origin.paused;
    const fromB = fetchBody(b, url).then((result) => ({ result }), (error) => ({ error }));
    await eventually(
      async () => (await b.metric("packice_origin_peer_bytes_total")) >= HELD,
      `b pulled the ${pieces} a holds`,
      { timeout: 15_000, interval: 20 },
    );
    await b.signal("SIGSTOP");
    let fromC;
    try {
      await a.signal("SIGKILL");
      assert((await first) instanceof Error, "the killed daemon's client saw an error");
      fromC = fetchBody(c, url);
      await eventually(() => origin.requests.length === 2, "c downloads", { interval: 10 });
    } finally {
      await b.signal("SIGCONT");
    }
    assertEveryBody([settled(await fromB), await fromC], body);
    const requests = JSON.stringify(origin.requests);
    assertEquals(origin.requests.map((request) => request.range), [null, null], requests);
    // b's three pieces from a stayed: the rest from c, once.
    const pulled = await b.metric("packice_origin_peer_bytes_total");
    assertEquals(pulled, size, `b pulled ${pulled} bytes`);
  });
}

Deno.test("a body's downloader of the other piece algorithm killed: the taker's record is of one algorithm, and a daemon that fetches it later has it from the cluster", async () => {
  const body = pattern(SIZE, 95);
  await using origin = startCountingOrigin({ body, pauseAt: PAUSE });
  await using cluster = await startCluster(["b", "c"]);
  const a = await cluster.add("a", [], OLDER);
  await converged(cluster.daemons);
  const [b, c] = cluster.daemons as [ClusterDaemon, ClusterDaemon];
  const { results } = await killDownloader([a, b, c], origin);
  assertEveryBody(results, body);
  const d = await cluster.add("d");
  const sent = origin.sent;
  assertEveryBody([await fetchBody(d, origin.url)], body);
  // Not from the origin again (it revalidates, 304): a record of both algorithms is refused.
  const requests = JSON.stringify(origin.requests);
  assertEquals(origin.sent, sent, requests);
  assertEquals(
    origin.requests.map((request) => request.status),
    [200, 206, 304],
    requests,
  );
});

for (const finished of [true, false]) {
  const meanwhile = finished
    ? "another daemon downloaded the body"
    : "another daemon claimed it and still downloads";
  Deno.test(
    `a downloader stopped past its claim's lease while ${meanwhile}: it stops its own download and takes the other's (Redis)`,
    redisTestOptions,
    async () => {
      const body = pattern(SIZE, finished ? 90 : 91);
      // Only the first response pauses: a download that went on after its lease never ends.
      // Unfinished: the second takes 2 s, over the end of the stop.
      await using origin = startCountingOrigin({
        body,
        pauseAt: PAUSE,
        ...(finished ? {} : { rate: SIZE / 2 }),
      });
      await using redis = await startRedis();
      const dir = await Deno.makeTempDir({ prefix: "packice-lease-" });
      try {
        await using daemons = await startClusterDaemons(redis.url, dir, ["a", "b"], "lease");
        const [a, b] = daemons;
        const fromA = fetchBody(a, origin.url).then(
          (result) => ({ result }),
          (error) => ({ error }),
        );
        await origin.paused;
        Deno.kill(a.pid, "SIGSTOP");
        let fromB;
        try {
          // a's claim (3 s, renewed every second) expires in Redis: b claims it and downloads.
          const claim = `lease:claim:{${originId(origin.url)}}`;
          assertEquals(await redis.command("EXISTS", claim), 1, "a claimed the download");
          const expired = async () => await redis.command("EXISTS", claim) === 0;
          await eventually(expired, "a's claim expires", { timeout: 10_000, interval: 20 });
          fromB = fetchBody(b, origin.url);
          if (finished) await fromB;
          else {await eventually(() => origin.sent > SIZE / 4 + PAUSE, "b downloads", {
              interval: 20,
            });}
        } finally {
          Deno.kill(a.pid, "SIGCONT");
        }
        assertEveryBody([await fromB], body);
        let timer: ReturnType<typeof setTimeout> | undefined;
        const outcome = await Promise.race([
          fromA,
          new Promise<{ error: unknown }>((resolve) => {
            timer = setTimeout(
              () => resolve({ error: new Error("a's fetch did not end") }),
              10_000,
            );
          }),
        ]).finally(() => clearTimeout(timer));
        assertEveryBody([settled(outcome)], body);
        const requests = JSON.stringify(origin.requests);
        assertEquals(origin.requests.map((request) => request.range), [null, null], requests);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}

/** `url` with a query that makes `first` and `second` the owners of its claim, in that order. */
function ownedBy(url: string, [first, second]: readonly [string, string]): string {
  for (let i = 0;; i++) {
    const candidate = `${url}?owners=${i}`;
    const chosen = owners(originId(candidate), ["a", "b", "c"], 2);
    if (chosen[0] === first && chosen[1] === second) return candidate;
  }
}

/**
 * Whether `daemon` holds the pieces of `url`'s object that the downloader
 * held at its pause, verified: it serves their last bytes to another daemon.
 */
async function holdsPieces(daemon: ClusterDaemon, url: string): Promise<boolean> {
  for (let end = PIECE; end <= HELD; end += PIECE) {
    const response = await fetch(`${daemon.url}/v1/objects/${originId(url)}?local=1`, {
      headers: { authorization: `Bearer ${TOKEN}`, range: `bytes=${end - 1}-${end - 1}` },
    });
    await response.body?.cancel();
    if (response.status !== 206) return false;
  }
  return true;
}

/** The result of a fetch that settled, or its failure thrown. */
function settled<T>(outcome: { result: T } | { error: unknown }): T {
  if ("error" in outcome) throw outcome.error;
  return outcome.result;
}

/** Every daemon answered 200 with exactly `body`. */
function assertEveryBody(
  results: readonly { status: number; body: Uint8Array }[],
  body: Uint8Array,
): void {
  for (const { status, body: got } of results) {
    assertEquals(status, 200);
    assert(sameBytes(got, body), "the body after the takeover");
  }
}
