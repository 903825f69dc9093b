/**
 * Counters of a Unix-socket server: requests, errors and request bytes per
 * operation, bytes on the socket, object bytes handed out and stored, and
 * clients. Plain numbers bumped in place, so that counting costs no
 * allocation per request.
 *
 * @module
 */
import { Op } from "./protocol.ts";

/** Byte counts a channel adds to as it sends and receives. */
export interface ByteCounters {
  /** Bytes of messages sent. */
  sent: number;
  /** Bytes of messages received. */
  received: number;
}

/**
 * The memory C holds for the objects of small puts (native/packice.c section 13).
 */
export interface PutMemory {
  /** Bytes of the regions that hold the objects' chunks. */
  readonly regionBytes: number;
  /** Bytes of the regions faulted in ahead of puts and not used yet (at most two regions). */
  readonly spareBytes: number;
  /** Bytes of the chunks objects take, each rounded up to its size class. */
  readonly chunkBytes: number;
  /** Regions faulted in ahead, by a thread of C's, since the start. */
  readonly regionsAhead: number;
  /** Regions faulted in on a receive, none being ready, since the start. */
  readonly regionsInline: number;
}

/** Operation names by code, for labels: `uds_requests_total{op="open"}`. */
const OP_NAMES: readonly string[] = (() => {
  const names: string[] = [];
  for (const [name, code] of Object.entries(Op)) names[code] = name.toLowerCase();
  return names;
})();

/** The counters of one {@link UdsServer}: see {@link UdsMetrics.snapshot} for their names. */
export class UdsMetrics implements ByteCounters {
  /** Requests started, by operation code. */
  readonly requests: Float64Array = new Float64Array(OP_NAMES.length);
  /** Error replies, by operation code. */
  readonly errors: Float64Array = new Float64Array(OP_NAMES.length);
  /** Bytes of request frames, headers included, by operation code. */
  readonly requestBytes: Float64Array = new Float64Array(OP_NAMES.length);
  sent = 0;
  received = 0;
  /** Object bytes under READ leases granted: what clients mapped or read. */
  readBytes = 0;
  /** Object bytes sealed through the socket. */
  writtenBytes = 0;
  /** Clients accepted since the start. */
  accepted = 0;
  /** Clients connected now. */
  clients = 0;
  /** OPENs answered in C, by the native fast path (counted in `requests` too). */
  nativeOpens = 0;
  /** PUTs answered in C, by the native fast path (counted in `requests` too). */
  nativePuts = 0;
  /** DELETEs answered in C, by the native fast path (counted in `requests` too). */
  nativeDeletes = 0;
  /** Where the memory of objects stored in C is read from; none without the fast path. */
  putMemory: (() => PutMemory) | undefined = undefined;

  /** Counts a request of operation `op` in a frame of `bytes`; unknown codes are not counted. */
  request(op: number, bytes: number): void {
    if (op >= this.requests.length) return;
    this.requests[op]!++;
    this.requestBytes[op]! += bytes;
  }

  /** Counts an error reply to a request of operation `op`. */
  error(op: number): void {
    if (op < this.errors.length) this.errors[op]!++;
  }

  /**
   * The counters by name, in the form of `Peer.metrics()`: a name ending in
   * `_total` (before its labels) is a counter, any other a gauge.
   */
  snapshot(): Record<string, number> {
    const figures: Record<string, number> = {
      uds_clients: this.clients,
      uds_clients_total: this.accepted,
      uds_received_bytes_total: this.received,
      uds_sent_bytes_total: this.sent,
      uds_read_object_bytes_total: this.readBytes,
      uds_written_object_bytes_total: this.writtenBytes,
      uds_native_open_total: this.nativeOpens,
      uds_native_put_total: this.nativePuts,
      uds_native_delete_total: this.nativeDeletes,
    };
    const memory = this.putMemory?.();
    if (memory !== undefined) {
      figures.uds_native_put_memory_bytes = memory.regionBytes;
      figures.uds_native_put_spare_bytes = memory.spareBytes;
      figures.uds_native_put_chunk_bytes = memory.chunkBytes;
      figures.uds_native_put_regions_ahead_total = memory.regionsAhead;
      figures.uds_native_put_regions_inline_total = memory.regionsInline;
    }
    const families = [
      ["requests", this.requests],
      ["errors", this.errors],
      ["request_bytes", this.requestBytes],
    ] as const;
    for (const [family, counts] of families) {
      OP_NAMES.forEach((name, code) => {
        if (name !== undefined) figures[`uds_${family}_total{op="${name}"}`] = counts[code]!;
      });
    }
    return figures;
  }
}
