import { connect, FileSystemPeer } from "../../mod.ts";
import { startHttp } from "../helpers/http_fixture.ts";
import { socketDir, spawnDaemon } from "../helpers/uds_daemon.ts";
import { cacheSemantics } from "./cache_suite.ts";

Deno.test("PackiceCache follows the Cache API in process", async (t) => {
  await using client = await connect();
  await cacheSemantics(t, client);
});

Deno.test("PackiceCache follows the Cache API over a Unix socket daemon", async (t) => {
  const dir = await socketDir();
  try {
    await using daemon = await spawnDaemon(`${dir}/packice.sock`);
    await using client = await connect(daemon.path);
    await cacheSemantics(t, client);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PackiceCache follows the Cache API over HTTP", async (t) => {
  await using http = startHttp();
  await using client = await connect(http.server.url);
  await cacheSemantics(t, client);
});

Deno.test("PackiceCache follows the Cache API on a file-system peer", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "packice-cache-fs-" });
  try {
    await using peer = await FileSystemPeer.open({ dir });
    await using client = await connect(peer);
    await cacheSemantics(t, client);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
