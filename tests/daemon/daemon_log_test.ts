import { startDaemon } from "../../daemon/daemon.ts";
import type { Logger } from "../../daemon/log.ts";
import { parseServeArgs } from "../../daemon/options.ts";
import { assert, assertEquals } from "../helpers/assert.ts";

/** A logger that keeps every line, by level. */
function recorder(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (message: string) => lines.push(`${level} ${message}`);
  return { lines, error: at("ERROR"), warn: at("WARN"), info: at("INFO"), debug: at("DEBUG") };
}

Deno.test("the daemon logs a startup line and one line per HTTP request, never the token", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = recorder();
    const socket = `${dir}/packice.sock`;
    await using daemon = await startDaemon(
      parseServeArgs(["--socket", socket, "--http", "127.0.0.1:0", "--capacity", "1MiB"]),
      log,
    );
    const url = daemon.addresses[1]!;
    const token = (await Deno.readTextFile(`${socket}.token`)).split("\n")[0]!;
    const version = JSON.parse(await Deno.readTextFile("deno.json")).version;
    const startup = log.lines.find((line) => line.includes(`(pid ${Deno.pid})`));
    assert(startup !== undefined, log.lines.join("\n"));
    for (const part of [`Packice ${version}`, `unix://${socket}`, url, "zero-copy sharing on"]) {
      assert(startup.includes(part), `${part} in ${startup}`);
    }
    assert(startup.includes(`HTTP token made and written to ${socket}.token`), startup);

    const auth = { authorization: `Bearer ${token}` };
    await (await fetch(`${url}/v1/objects`)).body?.cancel();
    await (await fetch(`${url}/v1/objects/a`, { method: "PUT", body: "a", headers: auth })).body
      ?.cancel();
    await (await fetch(`${url}/v1/objects/none`, { headers: auth })).body?.cancel();
    const requests = log.lines.filter((line) => / HTTP [A-Z]+ \//.test(line));
    assertEquals(requests.map((line) => line.split(" ").slice(0, 5).join(" ")), [
      "INFO HTTP GET /v1/objects 401",
      "DEBUG HTTP PUT /v1/objects/a 201",
      "INFO HTTP GET /v1/objects/none 404",
    ]);
    assert(requests[0]!.includes("UNAUTHORIZED"), requests[0]);
    assert(log.lines.every((line) => !line.includes(token)), "no line holds the token");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
