/**
 * The Unix-socket transport: processes of one host share objects without a
 * copy. {@link UdsServer} serves a peer on a `SOCK_SEQPACKET` socket and
 * passes each blob's memfd with its lease; {@link UdsPeer} is the client side,
 * which maps them. `connect("/path.sock")` and `connect("unix:///path.sock")`
 * use it.
 *
 * @example Serve and connect
 * ```ts ignore
 * import { connect, MemoryPeer, UdsServer } from "@packice/packice";
 * await using peer = new MemoryPeer();
 * await using server = await UdsServer.listen(peer, "/tmp/packice-doc.sock");
 * await using client = await connect(server.address);
 * const id = await client.put("zero-copy");
 * using handle = await client.get(id);
 * console.log(handle.size); // 9
 * ```
 *
 * @module
 */
export { defaultSocketPath } from "./default_socket.ts";
export { UdsServer } from "./server.ts";
export type { UdsServerLog, UdsServerOptions } from "./server.ts";
export { UdsPeer } from "./uds_peer.ts";
export type { UdsPeerOptions } from "./uds_peer.ts";
