/** A {@link Directory} in this process's memory, shared by the cluster peers of one test. */
import { ConflictError, NotFoundError } from "../../core/errors.ts";
import type {
  AnnounceOptions,
  ContentRecord,
  Directory,
  DirectoryEntry,
  Holder,
} from "../../p2p/directory.ts";

/** Entries by id; every peer of a test gets a view of the same map through {@link memoryDirectory}. */
export type Entries = Map<string, { record: ContentRecord; holders: Map<string, Holder> }>;

/** A directory over `entries`; closing it leaves the entries to the other peers. */
export function memoryDirectory(entries: Entries): Directory {
  return {
    announce(record: ContentRecord, holder: Holder, options: AnnounceOptions = {}) {
      const entry = entries.get(record.id);
      if (entry !== undefined && entry.record.digest !== record.digest) {
        return Promise.reject(new ConflictError(`Other content under ${record.id}`));
      }
      if (entry === undefined && options.existing) {
        return Promise.reject(new NotFoundError(`No entry: ${record.id}`));
      }
      const holders = entry?.holders ?? new Map();
      holders.set(holder.node, holder);
      entries.set(record.id, { record: entry?.record ?? record, holders });
      return Promise.resolve();
    },
    withdraw(id: string, node: string) {
      const entry = entries.get(id);
      entry?.holders.delete(node);
      if (entry?.holders.size === 0) entries.delete(id);
      return Promise.resolve();
    },
    lookup(id: string): Promise<DirectoryEntry | undefined> {
      const entry = entries.get(id);
      return Promise.resolve(
        entry === undefined ? undefined : { ...entry.record, holders: [...entry.holders.values()] },
      );
    },
    remove(id: string) {
      entries.delete(id);
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
    [Symbol.asyncDispose]: () => Promise.resolve(),
  };
}
