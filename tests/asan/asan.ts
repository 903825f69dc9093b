/**
 * The `test:asan` task: the tests that drive the native library most, run
 * in parallel (as `deno task test` runs them) against its AddressSanitizer
 * build (`native/build/libpackice-asan.so`), `--runs=N` times over. Every
 * process the tests start (daemons, children writing into sealed objects)
 * loads that build too. Fails when a test fails or any process reported a
 * memory error, whose report it prints.
 *
 * Usage: `deno task test:asan [--runs=N] [test files or folders...]`; with
 * `tests/`, every test.
 *
 * Options, and why: leaks are not errors here (the library is pinned, and
 * Deno frees little at exit); an error aborts its process at once;
 * `handle_segv=0` leaves SIGSEGV to Deno and to the tests that expect a
 * write into a sealed mapping to kill a child; `detect_odr_violation=0`, as
 * the runtime and the library are linked apart.
 *
 * @module
 */
import { buildNative, libraryPath } from "../../native/build.ts";

const DEFAULT_TARGETS = [
  "tests/native/",
  "tests/transport/",
  "tests/p2p/",
  "tests/daemon/",
  "tests/backends/memory/",
  "tests/peers/",
];

/**
 * Tests whose failure under ASAN is no memory error, by part of their name:
 * they measure a process's memory, which ASAN's shadow and quarantine grow
 * past their budgets; or time what ASAN slows down; or build and load a
 * library of their own rather than the one named in PACKICE_NATIVE_LIB. A
 * run whose only failures are these passes.
 */
const EXPECTED_FAILURES = [
  "imported by an http URL",
  "memory stays in the budget",
  "spooled, not gathered in memory",
  "costs the client no copy of it",
  "with little client memory",
  "serve starts fast",
  "lets the event loop turn",
];

const ASAN_OPTIONS = [
  "detect_leaks=0",
  "abort_on_error=1",
  "handle_segv=0",
  "allow_user_segv_handler=1",
  "detect_odr_violation=0",
];

/** The path of the AddressSanitizer runtime of the first C compiler that has one. */
async function runtimePath(): Promise<string> {
  for (const compiler of ["gcc", "cc"]) {
    try {
      const { success, stdout } = await new Deno.Command(compiler, {
        args: ["-print-file-name=libasan.so"],
        stderr: "null",
      }).output();
      const path = new TextDecoder().decode(stdout).trim();
      // Without the runtime the compiler echoes the bare name back.
      if (success && path.startsWith("/")) return path;
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
  throw new Error("Cannot find libasan.so: install gcc with AddressSanitizer (libasan)");
}

async function main(): Promise<number> {
  const runs = Number(Deno.args.find((arg) => arg.startsWith("--runs="))?.slice(7) ?? "1");
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`Cannot run ${runs} times`);
  const named = Deno.args.filter((arg) => !arg.startsWith("--"));
  const targets = named.length > 0 ? named : DEFAULT_TARGETS;
  await buildNative(false, "address");
  const runtime = await runtimePath();
  const logs = await Deno.makeTempDir({ prefix: "packice-asan-" });
  let failed = 0;
  try {
    for (let run = 1; run <= runs; run++) {
      const started = performance.now();
      const child = new Deno.Command(Deno.execPath(), {
        args: ["test", "--allow-all", "--parallel", ...targets],
        env: {
          LD_PRELOAD: runtime,
          ASAN_OPTIONS: [...ASAN_OPTIONS, `log_path=${logs}/asan`].join(":"),
          PACKICE_NATIVE_LIB: libraryPath("address"),
          NO_COLOR: "1",
        },
        stdout: "piped",
        stderr: "inherit",
      }).spawn();
      let output = "";
      const decoder = new TextDecoder();
      for await (const chunk of child.stdout) {
        await Deno.stdout.write(chunk);
        output += decoder.decode(chunk, { stream: true });
      }
      const { code } = await child.status;
      const seconds = ((performance.now() - started) / 1000).toFixed(0);
      const failures = [...output.matchAll(/^(?:\S+ => )?(.*) \.\.\. FAILED/gm)].map((m) => m[1]!);
      const unexpected = failures.filter((name) =>
        !EXPECTED_FAILURES.some((part) => name.includes(part))
      );
      // A test process that died (a crash, an ASAN abort) ends the run without its summary.
      const finished = /^(ok|FAILED) \| \d+ passed/m.test(output);
      console.log(
        `ASAN run ${run} of ${runs}: exit code ${code}, ${seconds} s, ` +
          `${failures.length} failed (${unexpected.length} unexpected)` +
          (finished ? "" : ", no summary: a test process died"),
      );
      for (const name of unexpected) console.log(`  unexpected failure: ${name}`);
      if (code !== 0 && (unexpected.length > 0 || !finished)) failed++;
    }
    let reports = 0;
    for await (const entry of Deno.readDir(logs)) {
      reports++;
      console.error(`--- ${entry.name}\n${await Deno.readTextFile(`${logs}/${entry.name}`)}`);
    }
    if (reports > 0) console.error(`AddressSanitizer reported ${reports} time(s)`);
    return failed > 0 || reports > 0 ? 1 : 0;
  } finally {
    await Deno.remove(logs, { recursive: true });
  }
}

if (import.meta.main) Deno.exit(await main());
