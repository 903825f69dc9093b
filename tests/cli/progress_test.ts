/**
 * The progress bar as a person sees it: the CLI in a real terminal (tmux),
 * with transfers slowed down by the other end of a pipe, read off the screen.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { runCli } from "../helpers/cli.ts";
import { spawnDaemon, startTaskFlags, testInSocketDir } from "../helpers/uds_daemon.ts";

const deno = Deno.execPath();
const cli = new URL("../../cli.ts", import.meta.url).pathname;

let sessions = 0;

/** A tmux server of its own, with one window running `command`. */
async function tmux(
  dir: string,
  command: string,
): Promise<AsyncDisposable & { screen(): Promise<string> }> {
  // A server of its own each time: one that is still exiting keeps its socket for a while.
  const socket = `${dir}/tmux-${++sessions}.sock`;
  const run = async (...args: string[]) => {
    const { code, stdout, stderr } = await new Deno.Command("tmux", {
      args: ["-S", socket, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    if (code !== 0) throw new Error(`tmux ${args[0]}: ${decoder.decode(stderr)}`);
    return decoder.decode(stdout);
  };
  await run("new-session", "-d", "-x", "150", "-y", "12", "sh", "-c", command);
  return {
    screen: () => run("capture-pane", "-p"),
    [Symbol.asyncDispose]: async () => {
      await run("kill-server").catch(() => {});
    },
  };
}

/** Polls the screen until `test` holds, returning the screen. */
async function waitFor(
  screen: () => Promise<string>,
  test: (text: string) => boolean,
  what: string,
): Promise<string> {
  const deadline = Date.now() + 20_000;
  let text = "";
  while (Date.now() < deadline) {
    text = await screen();
    if (test(text)) return text;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Timed out waiting for ${what}; the screen:\n${text}`);
}

/** Sends 24 MiB in 1 MiB pieces, one every 100 ms: about 2.4 s. */
const SLOW_WRITER = `for (let i = 0; i < 24; i++) {
  await Deno.stdout.write(new Uint8Array(1 << 20));
  await new Promise((resolve) => setTimeout(resolve, 100));
}`;
/** Reads at about 10 MiB/s. */
const SLOW_READER = `let n = 0;
for await (const chunk of Deno.stdin.readable) {
  n += chunk.length;
  await new Promise((resolve) => setTimeout(resolve, chunk.length / 10_000));
}
console.log("read", n);`;

/** Whether tmux runs here; CI installs it, so there its absence fails the test. */
async function hasTmux(): Promise<boolean> {
  try {
    return (await new Deno.Command("tmux", { args: ["-V"], stdout: "null" }).output()).success;
  } catch {
    if (Deno.env.get("CI") === "true") throw new Error("tmux is missing: .ci/run installs it");
    return false;
  }
}

const tmuxHere = await hasTmux();
if (!tmuxHere) {
  console.warn("tests/cli/progress_test.ts: tmux is missing, the terminal test is skipped");
}

testInSocketDir(
  "a slow transfer shows bytes, rate and ETA on a terminal, and nothing elsewhere",
  async (dir) => {
    if (!tmuxHere) return;
    await using daemon = await spawnDaemon(`${dir}/packice.sock`, ["--capacity", "256MiB"]);
    const flags = (await startTaskFlags()).join(" ");
    const packice = `PACKICE_TARGET=${daemon.path} ${deno} run ${flags} ${cli}`;
    await Deno.writeTextFile(`${dir}/writer.ts`, SLOW_WRITER);
    await Deno.writeTextFile(`${dir}/reader.ts`, SLOW_READER);

    // Unknown size (a pipe): bytes, rate and time so far.
    {
      await using terminal = await tmux(
        dir,
        `${deno} run ${dir}/writer.ts | ${packice} put - --id slow; echo "exit $?"; sleep 60`,
      );
      const moving = await waitFor(
        terminal.screen,
        (text) => /^put - \d+\.\d MiB \d+\.\d MiB\/s \d+s/m.test(text),
        "a progress line while the pipe runs",
      );
      assert(!moving.includes("exit"), moving);
      const done = await waitFor(terminal.screen, (text) => text.includes("exit "), "the exit");
      assert(/^put - 24\.0 MiB /m.test(done), done);
      assert(/^slow$/m.test(done), done);
      assert(/^exit 0$/m.test(done), done);
    }

    // Known size, read by a slow reader: a bar, a percentage and the time left.
    {
      await using terminal = await tmux(
        dir,
        `${packice} get slow -o - | ${deno} run ${dir}/reader.ts; echo "exit $?"; sleep 60`,
      );
      const moving = await waitFor(
        terminal.screen,
        (text) => /^get slow \[#*-+\] +\d+% .+\/24\.0 MiB .+\/s ETA \d+s/m.test(text),
        "a bar with a percentage and ETA",
      );
      assert(!moving.includes("exit"), moving);
      const done = await waitFor(terminal.screen, (text) => text.includes("exit "), "the exit");
      assert(/^get slow \[#+\] 100% 24\.0 MiB\/24\.0 MiB/m.test(done), done);
      assert(done.includes(`read ${24 << 20}`), done);
    }

    // Not a terminal: the same slow pipe, for as long, prints no progress at all.
    const writer = new Deno.Command(deno, {
      args: ["run", `${dir}/writer.ts`],
      stdout: "piped",
    }).spawn();
    const quiet = await runCli(["put", "-", "--id", "quiet"], {
      env: { PACKICE_TARGET: daemon.path },
      stdin: writer.stdout,
    });
    await writer.status;
    assertEquals([quiet.code, quiet.stdout, quiet.stderr], [0, "quiet\n", ""]);
  },
);
