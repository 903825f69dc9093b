/** A Deno child process that a test starts and waits on until it says it is ready. */

/** A running child that has printed its ready marker. */
export interface ReadyChild {
  /** The child's process id. */
  readonly pid: number;
  /** Sends `signal`, waits for the child to exit, and returns how it ended. */
  stop(signal: Deno.Signal): Promise<Deno.CommandStatus>;
}

/**
 * Runs `deno <args>` with stdout piped (stderr inherited) and resolves once its
 * output includes `marker`; throws, naming `who`, if it exits before that.
 */
export async function spawnReady(args: string[], marker: string, who: string): Promise<ReadyChild> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let output = "";
  while (!output.includes(marker)) {
    const { value, done } = await lines.read();
    if (done) throw new Error(`${who} exited before it was ready: ${output}`);
    output += value;
  }
  return {
    pid: child.pid,
    async stop(signal) {
      Deno.kill(child.pid, signal);
      const status = await child.status;
      await lines.cancel();
      return status;
    },
  };
}
