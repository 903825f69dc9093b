/**
 * Copies a cluster peer builds from bytes it gathers itself (an origin
 * download, or pieces relayed during one), relayed to other daemons as they
 * verify, then sealed among the fetched copies and announced. An object
 * expected before its size is known (an origin that has not answered yet,
 * or a body of no stated length) is known here too, for `stat`.
 *
 * @module
 */
import { Access } from "../core/lease.ts";
import { ConflictError, UnsupportedError } from "../core/errors.ts";
import type { ObjectInfo } from "../core/object.ts";
import type { Meta } from "../core/validate.ts";
import type { ClusterLog } from "./cluster_options.ts";
import type { ContentRecord, Directory, Holder } from "./directory.ts";
import type { FetchedCopies } from "./fetched_copies.ts";
import type { AssembleFill, PartialBytes } from "./origin/origin_store.ts";
import { expectedInfo } from "./arrival.ts";
import type { PartialObject } from "../transport/http/upload_gate.ts";

/** Objects being assembled here, by id. */
export class Assembly {
  readonly #copies: FetchedCopies;
  readonly #directory: Directory;
  readonly #holder: () => Holder | undefined;
  readonly #log: ClusterLog;
  /** Objects being assembled, by id: their verified bytes are relayed. */
  readonly #assembling = new Map<string, PartialObject>();
  /** Objects expected, by id: how many expect them, since when (epoch ms), and their size if known. */
  readonly #expected = new Map<string, { count: number; since: number; size?: number }>();

  /** Assembles among `copies`, announcing to `directory` as `holder`; warns to `log`. */
  constructor(
    copies: FetchedCopies,
    directory: Directory,
    holder: () => Holder | undefined,
    log: ClusterLog,
  ) {
    this.#copies = copies;
    this.#directory = directory;
    this.#holder = holder;
    this.#log = log;
  }

  /** Whether `id` is being assembled here. */
  has(id: string): boolean {
    return this.#assembling.has(id);
  }

  /** See `ClusterPeer.expect`. */
  expect(id: string, size?: number): Disposable {
    const entry = this.#expected.get(id) ?? { count: 0, since: Date.now() };
    entry.count++;
    if (size !== undefined) entry.size = size;
    this.#expected.set(id, entry);
    let held = true;
    return {
      [Symbol.dispose]: () => {
        if (!held) return;
        held = false;
        if (--entry.count === 0 && this.#expected.get(id) === entry) this.#expected.delete(id);
      },
    };
  }

  /** What is known of `id` while it is expected and has no blob yet (see `expectedInfo`). */
  expected(id: string): ObjectInfo | undefined {
    const entry = this.#expected.get(id);
    return entry === undefined ? undefined : expectedInfo(id, entry.since, entry.size);
  }

  /** The verified bytes of `id` being assembled, for a partial read by another daemon. */
  partial(id: string): PartialObject | undefined {
    return this.#assembling.get(id);
  }

  /** See `ClusterPeer.assemble`. */
  async assemble(id: string, size: number, meta: Meta, fill: AssembleFill): Promise<ContentRecord> {
    const copies = this.#copies;
    await copies.gone(id);
    const old = copies.digest(id);
    if (old !== undefined) await copies.drop(id, old);
    const { lease, blobs } = await copies.peer.acquire(id, Access.CREATE, { size, meta });
    let sealed = false;
    try {
      const view = size === 0 ? new Uint8Array(0) : blobs[0]!.openView();
      if (view === undefined) throw new UnsupportedError("Cannot assemble in blobs without a view");
      const fd = size === 0 ? undefined : blobs[0]!.localFd;
      const record = await fill(view, (partial) => this.#assembling.set(id, relayed(partial, fd)));
      this.#assembling.delete(id);
      if (size > 0) blobs[0]!.closeView(view);
      await copies.peer.seal(lease.id);
      sealed = true;
      await copies.peer.recordDigest?.(lease.id, record.digest);
      copies.add(id, record.digest);
      const holder = this.#holder();
      if (holder !== undefined) {
        copies.announcing.add(id);
        await this.#directory.announce(record, holder).catch(async (error) => {
          if (!(error instanceof ConflictError)) throw error;
          // A newer version of the same source: the old one goes everywhere.
          await this.#directory.remove(id);
          await this.#directory.announce(record, holder);
        }).catch((error) => {
          // The directory is away (Redis down): the copy is sealed and served all the same.
          this.#log.warn(`Cannot announce the copy of object ${id}: ${(error as Error).message}`);
        }).finally(() => copies.announcing.delete(id));
      }
      return record;
    } finally {
      this.#assembling.delete(id);
      await (sealed ? copies.peer.release(lease.id) : copies.peer.discard(lease.id))
        .catch(() => {});
    }
  }
}

/**
 * `partial` as another daemon's piece requests see it: with the memfd it
 * lands in (`fd`), where the blob has one, so that the native listener
 * sends its verified ranges from there by ticket.
 */
function relayed(partial: PartialBytes, fd: number | undefined): PartialObject {
  return {
    size: partial.size,
    read: (start, end) => partial.read(start, end),
    ...(partial.lend === undefined ? {} : { lend: (start, end) => partial.lend!(start, end) }),
    ...(fd === undefined ? {} : { fd }),
  };
}
