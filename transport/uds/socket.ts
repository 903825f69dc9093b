import type { Native } from "../../native/load.ts";

const encoder = new TextEncoder();

/**
 * Connects a non-blocking `SOCK_SEQPACKET` socket to `path`.
 *
 * @returns The socket, or `-errno` (`-EAGAIN` when the server's backlog is full).
 */
export function connectSocket(native: Native, path: string): number {
  return native.symbols.pk_uds_connect(encoder.encode(`${path}\0`));
}
