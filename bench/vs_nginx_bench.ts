/**
 * The daemon's HTTP GET against nginx serving the same bytes from tmpfs, in
 * the same run with the same client (curl, `-o /dev/null -w %{speed_download}`,
 * one request at a time), for a 64 MiB and a 1 MiB object, and for 64 MiB
 * with the Deno `fetch` client of `http_bench.ts` too:
 *
 * - nginx (Debian package): a config written here in a temp dir, `sendfile on`,
 *   one worker, a free loopback port, the file in /dev/shm; run as this user
 *   with `-p`, `-c` and `-g 'daemon off;'`, stopped by its pid;
 * - Packice: the daemon (`deno run cli.ts serve --http ... --http-fast ...`),
 *   the object put over its Unix socket, `GET /v1/objects/:id` of the
 *   native GET listener (sendfile, as nginx), after one GET through it that
 *   the Deno server answers and that offers the object to the listener; and
 *   of the Deno server itself (`via_deno_serve_*`), for comparison.
 *
 * Requests alternate between the servers; each figure is the median of
 * the requests of its size (more of the small ones, whose times vary more
 * between requests), with each server's CPU per request (the schedstat of
 * every thread of the daemon, of nginx's master and worker). Target: >= 0.9x nginx. Without
 * nginx or curl it installs nothing and says it skipped the pair.
 */
import { connect } from "../mod.ts";
import { daemonToken, installed, median, startDaemon, stop, threadsCpuMs } from "./processes.ts";
import { report } from "./stats.ts";

/** Each size: its name, its bytes and how many timed requests each server gets. */
const SIZES: ReadonlyArray<[string, number, number]> = [
  ["64MiB", 64 << 20, 15],
  ["1MiB", 1 << 20, 45],
];
/** The size the Deno fetch client of `http_bench.ts` downloads, in rounds of 8 requests. */
const FETCH_SIZE = 64 << 20;
const FETCH_ROUNDS = 5;

async function main(): Promise<void> {
  const missing = ["nginx", "curl"].filter((tool) => !installed(tool, "-v"));
  if (missing.length > 0) {
    console.error(
      `${missing.join(" and ")} not found: skipping Packice vs nginx (installs nothing)`,
    );
    report({ bench: "vs_nginx", skipped: `${missing.join(", ")} not installed` });
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "packice-vs-nginx-" });
  const files = await Deno.makeTempDir({ dir: "/dev/shm", prefix: "packice-vs-nginx-" });
  const nginxPort = freePort();
  const httpPort = freePort();
  const fastPort = freePort();
  const nginx = await startNginx(dir, files, nginxPort);
  const daemon = await startDaemon(
    `${dir}/daemon.sock`,
    `127.0.0.1:${httpPort}`,
    "--http-fast",
    `127.0.0.1:${fastPort}`,
  );
  try {
    // Both servers get the daemon's token, so each request is the same; nginx ignores it.
    const token = await daemonToken(`${dir}/daemon.sock`);
    await using client = await connect(`${dir}/daemon.sock`);
    for (const [name, size, requests] of SIZES) {
      const bytes = new Uint8Array(size);
      crypto.getRandomValues(bytes.subarray(0, 65536));
      for (let at = 65536; at < size; at *= 2) bytes.copyWithin(at, 0, at);
      await Deno.writeFile(`${files}/${name}`, bytes);
      await client.put(bytes, { id: name });
      const nginxUrl = `http://127.0.0.1:${nginxPort}/${name}`;
      const ourUrl = `http://127.0.0.1:${fastPort}/v1/objects/${name}`;
      const denoUrl = `http://127.0.0.1:${httpPort}/v1/objects/${name}`;
      // One untimed request each: page cache, V8's optimizations, the offer to the listener.
      await curl(nginxUrl, size, token);
      await curl(ourUrl, size, token);
      await curl(denoUrl, size, token);
      const theirs = { speeds: [] as number[], cpuMs: 0 };
      const ours = { speeds: [] as number[], cpuMs: 0 };
      const deno = { speeds: [] as number[], cpuMs: 0 };
      const nginxPids = [nginx.pid, ...childrenOf(nginx.pid)];
      const nginxCpu = () => nginxPids.reduce((sum, pid) => sum + threadsCpuMs(pid), 0);
      const daemonCpu = () => threadsCpuMs(daemon.pid);
      const timed = async (side: typeof ours, url: string, cpu: () => number) => {
        const before = cpu();
        side.speeds.push(await curl(url, size, token));
        side.cpuMs += cpu() - before;
      };
      for (let i = 0; i < requests; i++) {
        await timed(theirs, nginxUrl, nginxCpu);
        await timed(ours, ourUrl, daemonCpu);
        await timed(deno, denoUrl, daemonCpu);
      }
      report({
        bench: `vs_nginx_http_get_${name}`,
        gb_per_s: median(ours.speeds) / 1e9,
        baseline_nginx_gb_per_s: median(theirs.speeds) / 1e9,
        ratio: median(ours.speeds) / median(theirs.speeds),
        target: ">= 0.9",
        server_cpu_ms_per_request: ours.cpuMs / requests,
        baseline_server_cpu_ms_per_request: theirs.cpuMs / requests,
        via_deno_serve_gb_per_s: median(deno.speeds) / 1e9,
        via_deno_serve_ratio: median(deno.speeds) / median(theirs.speeds),
        via_deno_serve_cpu_ms_per_request: deno.cpuMs / requests,
        client: "curl",
        requests,
      });
      if (size === FETCH_SIZE) {
        const fetched = { theirs: [] as number[], ours: [] as number[] };
        for (let round = 0; round < FETCH_ROUNDS; round++) {
          fetched.theirs.push(await fetchClient(nginxUrl, token));
          fetched.ours.push(await fetchClient(ourUrl, token));
        }
        report({
          bench: `vs_nginx_http_get_${name}_fetch`,
          gb_per_s: median(fetched.ours),
          baseline_nginx_gb_per_s: median(fetched.theirs),
          ratio: median(fetched.ours) / median(fetched.theirs),
          target: ">= 0.9",
          client: "deno fetch, body streamed and dropped",
          rounds: FETCH_ROUNDS,
        });
      }
    }
  } finally {
    await stop(daemon);
    await stop(nginx);
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(files, { recursive: true });
  }
}

/** Starts nginx in the foreground with a config of its own in `dir`, serving `root`. */
async function startNginx(dir: string, root: string, port: number): Promise<Deno.ChildProcess> {
  // As root, nginx would hand its worker to `nobody`, who may not read a 0700 temp dir.
  const user = Deno.uid() === 0 ? "user root root;" : "";
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((kind) => `${kind}_temp_path ${dir}/${kind};`).join(" ");
  await Deno.writeTextFile(
    `${dir}/nginx.conf`,
    `${user}
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  ${temp}
  server {
    listen 127.0.0.1:${port};
    root ${root};
  }
}
`,
  );
  const nginx = new Deno.Command("nginx", {
    args: ["-p", dir, "-c", `${dir}/nginx.conf`, "-g", "daemon off;"],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      if (childrenOf(nginx.pid).length > 0) return nginx;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await stop(nginx);
  throw new Error(`nginx did not listen on port ${port}: see ${dir}/error.log`);
}

/** Pids whose parent is `pid` (nginx's workers). */
function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) children.push(Number(entry.name));
    } catch {
      // Exited meanwhile.
    }
  }
  return children;
}

/** Bytes per second of one curl download of `url`, checking its size. */
async function curl(url: string, size: number, token: string): Promise<number> {
  const output = await new Deno.Command("curl", {
    args: ["-s", "-f", "-o", "/dev/null", "-w", "%{speed_download} %{size_download}"]
      .concat(["-H", `Authorization: Bearer ${token}`, url]),
  }).output();
  const [speed, received] = new TextDecoder().decode(output.stdout).split(" ").map(Number);
  if (!output.success || received !== size) {
    throw new Error(`curl ${url} failed: ${received} of ${size} bytes`);
  }
  return speed!;
}

/** GB/s of the `fetch` client of `http_bench.ts`, in a process of its own, getting `url`. */
async function fetchClient(url: string, token: string): Promise<number> {
  const script = new URL("http_bench.ts", import.meta.url).pathname;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, "client", "get", url, "8", token],
    stderr: "inherit",
  }).output();
  if (!output.success) throw new Error(`The fetch client failed on ${url}`);
  return Number(new TextDecoder().decode(output.stdout).trim());
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

if (import.meta.main) await main();
