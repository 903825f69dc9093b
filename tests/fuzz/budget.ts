/**
 * How long a fuzz property runs, and how a failure is replayed.
 *
 * In `deno task test` each property runs a few hundred cases, a few seconds,
 * against a memory daemon. `deno task fuzz` sets `PACKICE_FUZZ_LONG=1`: each
 * property then runs for `PACKICE_FUZZ_SECONDS` (default 120), against
 * memory, file and tiered daemons. Either way:
 *
 * - `PACKICE_FUZZ_RUNS=N` runs exactly N cases (no time limit);
 * - `PACKICE_FUZZ_SEED=S` starts from seed S, and with `PACKICE_FUZZ_PATH=P`
 *   replays the shrunk counterexample a failure printed:
 *   `PACKICE_FUZZ_SEED=S PACKICE_FUZZ_PATH=P deno task fuzz --filter "<test name>"`.
 */
import fc from "npm:fast-check@4.10.2";

const long = Deno.env.get("PACKICE_FUZZ_LONG") === "1";

function envNumber(name: string): number | undefined {
  const text = Deno.env.get(name);
  if (text === undefined || text === "") return undefined;
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be an integer: ${text}`);
  return value;
}

/**
 * Runs an async property within the budget; on failure throws an error that
 * says how to replay it.
 *
 * @param name The test's name, for the messages and `--filter`.
 * @param property The property.
 * @param shortRuns Cases in `deno task test`.
 */
export async function fuzz<T>(
  name: string,
  property: fc.IAsyncPropertyWithHooks<T>,
  shortRuns: number,
): Promise<void> {
  const runs = envNumber("PACKICE_FUZZ_RUNS");
  const seconds = envNumber("PACKICE_FUZZ_SECONDS") ?? (long ? 120 : 10);
  const seed = envNumber("PACKICE_FUZZ_SEED") ?? Date.now() ^ (Math.random() * 0x1_0000_0000);
  const path = Deno.env.get("PACKICE_FUZZ_PATH") || undefined;
  const started = performance.now();
  const details = await fc.check(property, {
    seed,
    ...(path === undefined ? {} : { path }),
    numRuns: runs ?? (long ? Number.MAX_SAFE_INTEGER : shortRuns),
    // A time limit only where no number of runs is asked for: a shared machine may be slow.
    ...(runs === undefined ? { interruptAfterTimeLimit: seconds * 1000 } : {}),
    markInterruptAsFailure: false,
    endOnFailure: false,
  });
  const elapsed = ((performance.now() - started) / 1000).toFixed(1);
  if (details.failed) {
    const replay = `PACKICE_FUZZ_SEED=${details.seed} PACKICE_FUZZ_PATH=${
      JSON.stringify(details.counterexamplePath ?? "")
    } deno task fuzz --filter ${JSON.stringify(name)}`;
    throw new Error(
      `Fuzzing ${name} failed after ${details.numRuns} cases (${elapsed} s).\n` +
        `Replay: ${replay}\n${fc.defaultReportMessage(details) ?? ""}`,
      { cause: details.errorInstance },
    );
  }
  if (long) console.log(`${name}: ${details.numRuns} cases in ${elapsed} s, seed ${details.seed}`);
}

export { fc };
