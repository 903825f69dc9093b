/** Runs `cli.ts` as a user would, in its own process with the permissions of `deno task start`. */
import { startTaskFlags } from "./uds_daemon.ts";

const cli = new URL("../../cli.ts", import.meta.url).pathname;

/** What a run of the CLI gave. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly bytes: Uint8Array;
}

/** Options of {@link runCli}. */
export interface RunOptions {
  /** Environment on top of this process's (without PACKICE_* unless given here). */
  readonly env?: Record<string, string>;
  /** Bytes written to its standard input, through a pipe. */
  readonly stdin?: Uint8Array | ReadableStream<Uint8Array>;
  /** Its working directory. */
  readonly cwd?: string;
}

/**
 * Runs `packice ...args` and waits for it.
 *
 * @param args The arguments after `packice`.
 * @param options Environment, standard input, directory.
 */
export async function runCli(args: string[], options: RunOptions = {}): Promise<CliResult> {
  const env: Record<string, string> = { ...Deno.env.toObject() };
  for (const name of Object.keys(env)) if (name.startsWith("PACKICE_")) delete env[name];
  Object.assign(env, options.env ?? {});
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...(await startTaskFlags()), cli, ...args],
    env,
    clearEnv: true,
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const input = options.stdin instanceof ReadableStream
    ? options.stdin
    : options.stdin === undefined
    ? undefined
    : ReadableStream.from([options.stdin]);
  const [{ code, stdout, stderr }] = await Promise.all([
    child.output(),
    input?.pipeTo(child.stdin),
  ]);
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr), bytes: stdout };
}
