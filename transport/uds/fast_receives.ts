/**
 * The receives of a server's fast-path connections (see `fast_opens.ts`)
 * that a wait on the JS thread finds readable together: one call of C for
 * them all (`pk_fp_recv_each`), which answers what it can of each message
 * and hands the JS only the messages with frames left to it, instead of a
 * call, and the JS around it, per socket.
 *
 * @module
 */
import type { Native } from "../../native/load.ts";
import { type Receiver, ReceiverGroup } from "./channel.ts";
import { type FastConnection, spillBuffers } from "./fast_connection.ts";

/** What `pk_fp_recv_each` writes: `pk_fp_recv`'s figures, bytes received, the result left to JS. */
const FIGURES = 17;

/** The receives of one server's fast-path connections, many in one call. */
export class FastReceives extends ReceiverGroup {
  readonly #native: Native;
  readonly #now: () => number;
  #conns = new BigUint64Array(256);
  readonly #out = new Float64Array(FIGURES);

  /**
   * @param native The native library.
   * @param now The peer's clock, epoch ms.
   */
  constructor(native: Native, now: () => number) {
    super();
    this.#native = native;
    this.#now = now;
  }

  receiveEach(
    members: readonly Receiver[],
    count: number,
    buffer: Uint8Array,
    capacity: bigint,
    fds: Int32Array,
    maxFds: number,
    countOut: Int32Array,
    flags: Int32Array,
  ): number {
    if (this.#conns.length < count) this.#conns = new BigUint64Array(count);
    const conns = this.#conns;
    for (let i = 0; i < count; i++) conns[i] = (members[i] as FastConnection).address;
    const out = this.#out;
    const { spillBytes, spillFds } = spillBuffers();
    const done = this.#native.symbols.pk_fp_recv_each(
      conns,
      count,
      buffer,
      capacity,
      fds,
      maxFds,
      countOut,
      flags,
      this.#now(),
      spillBytes,
      spillFds,
      out,
    );
    const last = members[done - 1] as FastConnection;
    last.kept = out[0]!;
    last.answeredInC(out, out[14]!);
    this.leftToHandler = out[16] === 1;
    this.leftResult = out[15]!;
    return done;
  }
}
