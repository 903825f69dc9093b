import { Client } from "../../client/client.ts";
import { UdsPeer } from "../../transport/uds/uds_peer.ts";

/**
 * A client over its own Unix-socket connection to `path`, which its close
 * closes. A `Client` does not close a peer it was given: one left open
 * ended only when the daemon went, and its socket's end stopped the
 * reactor's thread then, unawaited. A test module ending meanwhile had that
 * thread call into its torn-down runtime (SIGSEGV in the test runner).
 */
export async function udsClient(path: string): Promise<Client> {
  const peer = await UdsPeer.connect(path);
  return new Client(peer, () => peer.close());
}
