/**
 * The lifecycle suite through each transport: a client peer over a real Unix
 * socket or real HTTP to a server in this process, whose peer's clock and
 * sweep the suite drives. The same rules and the same error classes as in
 * process, as the README promises.
 */
import { MemoryPeer } from "../../mod.ts";
import { loadNative } from "../../native/load.ts";
import { UdsPeer } from "../../transport/uds/uds_peer.ts";
import { UdsServer } from "../../transport/uds/server.ts";
import { HttpPeer } from "../../transport/http/http_peer.ts";
import { serveHttp } from "../../transport/http/server.ts";
import { lifecycleSuite } from "../helpers/lifecycle_suite.ts";

lifecycleSuite("UdsPeer to a UdsServer", { ignore: loadNative() === undefined }, async (clock) => {
  const home = new MemoryPeer({ clock, sweepInterval: 0 });
  const dir = await Deno.makeTempDir();
  const server = await UdsServer.listen(home, `${dir}/packice.sock`);
  const peer = await UdsPeer.connect(`${dir}/packice.sock`);
  return {
    peer,
    home,
    async [Symbol.asyncDispose]() {
      await peer.close();
      await server.close();
      await home.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
});

lifecycleSuite("HttpPeer to an HTTP server", {}, async (clock) => {
  const home = new MemoryPeer({ clock, sweepInterval: 0 });
  const server = serveHttp(home, { port: 0, token: "lifecycle", clock });
  const peer = await HttpPeer.connect(server.url, { token: "lifecycle" });
  return {
    peer,
    home,
    async [Symbol.asyncDispose]() {
      await peer.close();
      await server.close();
      await home.close();
    },
  };
});
