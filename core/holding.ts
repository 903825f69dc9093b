/** The local bytes of one incarnation of an object, as a peer holds them for its leases. */
import type { Blob } from "./blob.ts";
import type { StoredObject } from "./blob_store.ts";
import type { ObjectInfo } from "./object.ts";

/** The local bytes of one incarnation of an object, counted by the leases on it. */
export interface Holding {
  info: ObjectInfo;
  readonly stored: StoredObject;
  /** Live leases on this incarnation. */
  refs: number;
  /** Removed from lookups: freed when the last lease ends. */
  removed: boolean;
  sealed: boolean;
  /** Views opened through each lease, closed when that lease ends; made for the first lease handed out. */
  views: Map<string, Array<[Blob, Uint8Array]>> | undefined;
  /** Settles when a seal in progress is done, so freeing waits for it. */
  sealing: Promise<unknown> | undefined;
  /** Settles when the bytes are freed, once freeing has started. */
  freed: Promise<void> | undefined;
  /** Its place in the peer's order when its put began (or it was stored beside): lists follow it. */
  readonly order: number;
  /** Its place in the peer's order when it was last sealed or read: cache mode evicts by it. */
  used: number;
}

/** The info of a holding whose object is sealed, the only kind a shared store may re-register. */
export function sealedInfo(holding: Holding | undefined): ObjectInfo | undefined {
  return holding?.info.state === "SEALED" ? holding.info : undefined;
}

/** Closes the views opened through every lease on `holding`. */
export function closeViews(holding: Holding): void {
  const views = holding.views;
  if (views === undefined) return;
  for (const opened of views.values()) {
    for (const [blob, view] of opened) blob.closeView(view);
  }
  views.clear();
}

/** Closes the views opened through lease `leaseId` on `holding`, as the lease ends. */
export function closeLeaseViews(holding: Holding, leaseId: string): void {
  const views = holding.views?.get(leaseId);
  holding.views?.delete(leaseId);
  for (const [blob, view] of views ?? []) blob.closeView(view);
}
