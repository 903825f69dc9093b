/** A peer served on a Unix socket in a temporary directory, for tests of the server. */
import type { Peer } from "../../core/peer.ts";
import { UdsServer } from "../../mod.ts";

/** {@link servePeer}'s server and peer; disposing closes both and removes the directory. */
export interface ServedPeer<P extends Peer> extends AsyncDisposable {
  readonly path: string;
  readonly peer: P;
  readonly server: UdsServer;
  /** PUTs answered in C so far. */
  puts(): number;
}

/** Serves `peer` on a fresh socket; the server may be closed before the peer. */
export async function servePeer<P extends Peer>(peer: P): Promise<ServedPeer<P>> {
  const dir = await Deno.makeTempDir({ prefix: "packice-served-" });
  const server = await UdsServer.listen(peer, `${dir}/s.sock`);
  return {
    path: `${dir}/s.sock`,
    peer,
    server,
    puts: () => server.metrics().uds_native_put_total!,
    async [Symbol.asyncDispose]() {
      await server.close();
      await peer.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
