/**
 * The layer order of the library, checked on every import of non-test code:
 * core <- native <- backends <- peers <- transport <- p2p <- client <-
 * integrations <- daemon, cli <- mod.ts. An import may only point at its own
 * layer or one below it.
 */
import { assertEquals } from "./helpers/assert.ts";

const ROOT = new URL("../", import.meta.url);

/** Each top-level folder or file and its rank; a module imports only equal or lower ranks. */
const LAYERS: Readonly<Record<string, number>> = {
  core: 0,
  native: 1,
  backends: 2,
  peers: 3,
  transport: 4,
  p2p: 5,
  client: 6,
  integrations: 7,
  daemon: 8,
  cli: 9,
  "cli.ts": 9,
  "mod.ts": 10,
  "deno.json": 0,
};

/** Modules a client process loads to reach a daemon; the daemon's backends must stay out of them. */
const CLIENT_ENTRIES = ["transport/uds/uds_peer.ts", "transport/http/http_peer.ts"];
const DAEMON_ONLY = ["backends/", "peers/"];

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s*"([^"]+)"|import\(\s*"([^"]+)"\s*\)/g;

function layerOf(path: string): string {
  const top = path.split("/")[0]!;
  if (!(top in LAYERS)) throw new Error(`Unknown layer of ${path}: add it to LAYERS`);
  return top;
}

async function sources(): Promise<string[]> {
  const files: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(new URL(dir, ROOT))) {
      const path = dir ? `${dir}/${entry.name}` : entry.name;
      if (entry.isDirectory) {
        if (dir === "" && !(entry.name in LAYERS)) continue;
        if (entry.name === "build") continue;
        await walk(path);
      } else if (path.endsWith(".ts") && (dir !== "" || entry.name in LAYERS)) {
        files.push(path);
      }
    }
  };
  await walk("");
  return files.sort();
}

async function importsOf(path: string): Promise<string[]> {
  const text = await Deno.readTextFile(new URL(path, ROOT));
  const found: string[] = [];
  for (const match of text.matchAll(IMPORT)) {
    const specifier = match[1] ?? match[2]!;
    if (!specifier.startsWith(".")) continue;
    const resolved = new URL(specifier, new URL(path, ROOT)).href.slice(ROOT.href.length);
    found.push(resolved);
  }
  return found;
}

Deno.test("no import runs upward in the layer order", async () => {
  const upward: string[] = [];
  for (const path of await sources()) {
    const from = layerOf(path);
    for (const target of await importsOf(path)) {
      const to = layerOf(target);
      if (LAYERS[to]! > LAYERS[from]!) upward.push(`${path} -> ${target}`);
    }
  }
  assertEquals(upward, []);
});

Deno.test("a client process loads none of the daemon's backends", async () => {
  const seen = new Set<string>();
  const pending = [...CLIENT_ENTRIES];
  const offending: string[] = [];
  while (pending.length > 0) {
    const path = pending.pop()!;
    if (seen.has(path)) continue;
    seen.add(path);
    for (const target of await importsOf(path)) {
      if (DAEMON_ONLY.some((prefix) => target.startsWith(prefix))) {
        offending.push(`${path} -> ${target}`);
      }
      pending.push(target);
    }
  }
  assertEquals(offending, []);
});
