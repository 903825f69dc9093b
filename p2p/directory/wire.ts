/**
 * The directory's messages between members, as JSON bodies of `POST
 * /v1/cluster/directory/<kind>`, and their strict parsing: a malformed
 * message is a {@link ProtocolError} and nothing of it is applied.
 *
 * @module
 */
import { ProtocolError } from "../../core/errors.ts";
import { MAX_ID_BYTES } from "../../core/validate.ts";
import type { ContentRecord, DirectoryEntry, Holder, HolderChange } from "../directory.ts";
import { baseUrl, nodeId, object } from "../membership/messages.ts";

/** A holder as JSON: pieces, when present, in base64. */
export interface HolderJson {
  readonly node: string;
  readonly address: string;
  readonly pieces?: string;
  readonly piecePort?: number;
}

/** One announce: the content, the holder, and whether only an existing entry may take it. */
export interface AnnounceItem {
  readonly record: ContentRecord;
  readonly holder: Holder;
  readonly existing?: boolean;
}

/**
 * What an owner says of one announce: taken, other content recorded,
 * content just removed, or no entry to join (with `existing`).
 */
export type AnnounceStatus = "ok" | "conflict" | "removed" | "missing";

const STATUSES: readonly AnnounceStatus[] = ["ok", "conflict", "removed", "missing"];

/** The most items one batch carries. */
export const MAX_BATCH = 1000;
/** The most pieces one record lists. */
export const MAX_PIECES = 1 << 20;

/** A digest such as `sha256:<hex>` or `xxh64:<hex>`. */
export function digest(value: unknown, what: string): string {
  if (typeof value !== "string" || !/^[a-z0-9]{2,16}:[0-9a-f]{8,128}$/.test(value)) {
    throw new ProtocolError(`Malformed ${what}: expected a digest such as sha256:<hex>`);
  }
  return value;
}

/** An object id as the directory takes it (the peer checks the rest). */
export function objectId(value: unknown, what = "object id"): string {
  if (typeof value !== "string" || value.length === 0 || value.length > MAX_ID_BYTES) {
    throw new ProtocolError(`Malformed ${what}: expected 1 to ${MAX_ID_BYTES} characters`);
  }
  return value;
}

function count(value: unknown, what: string, least: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < least) {
    throw new ProtocolError(`Malformed ${what}: expected an integer of at least ${least}`);
  }
  return value;
}

function array(value: unknown, max: number, what: string): readonly unknown[] {
  if (!Array.isArray(value)) throw new ProtocolError(`Malformed ${what}: expected an array`);
  if (value.length > max) {
    throw new ProtocolError(`Malformed ${what}: ${value.length} items, the limit is ${max}`);
  }
  return value;
}

/** Parses a content record; the piece digests must cover the size exactly. */
export function parseRecord(value: unknown): ContentRecord {
  const fields = object(value, "content record");
  const size = count(fields.size, "record size", 0);
  const pieceSize = count(fields.pieceSize, "record piece size", 1);
  const pieces = array(fields.pieceDigests ?? [], MAX_PIECES, "record piece digests")
    .map((piece) => digest(piece, "piece digest"));
  if (pieces.length !== 0 && pieces.length !== Math.ceil(size / pieceSize)) {
    throw new ProtocolError(
      `Malformed content record: ${pieces.length} piece digests for ${size} bytes in pieces of ${pieceSize}`,
    );
  }
  const record = {
    id: objectId(fields.id),
    size,
    digest: digest(fields.digest, "record digest"),
    pieceSize,
    pieceDigests: pieces,
  };
  if (fields.binding === undefined) return record;
  if (typeof fields.binding !== "string" || fields.binding.length > 100) {
    throw new ProtocolError("Malformed record binding: expected hmac-sha256:<hex>");
  }
  return { ...record, binding: fields.binding };
}

/** Parses a holder. */
export function parseHolder(value: unknown): Holder {
  const fields = object(value, "holder");
  const holder: { node: string; address: string; piecePort?: number } = {
    node: nodeId(fields.node, "holder node"),
    address: baseUrl(fields.address, "holder address"),
  };
  if (fields.piecePort !== undefined) holder.piecePort = piecePort(fields.piecePort);
  if (fields.pieces === undefined) return holder;
  if (typeof fields.pieces !== "string" || fields.pieces.length > (MAX_PIECES >> 2)) {
    throw new ProtocolError("Malformed holder pieces: expected a base64 bitfield");
  }
  let pieces: Uint8Array;
  try {
    pieces = Uint8Array.from(atob(fields.pieces), (c) => c.charCodeAt(0));
  } catch {
    throw new ProtocolError("Malformed holder pieces: expected a base64 bitfield");
  }
  return { ...holder, pieces };
}

/**
 * A holder's piece port: a TCP port number.
 *
 * @throws {ProtocolError} For anything else.
 */
export function piecePort(value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 65535) {
    throw new ProtocolError("Malformed holder piece port: expected a port from 1 to 65535");
  }
  return value;
}

/** A holder as JSON. */
export function holderJson(holder: Holder): HolderJson {
  const { node, address, pieces, piecePort } = holder;
  return {
    node,
    address,
    ...(pieces === undefined ? {} : { pieces: base64(pieces) }),
    ...(piecePort === undefined ? {} : { piecePort }),
  };
}

/** An entry as JSON. */
export function entryJson(entry: DirectoryEntry): unknown {
  return { ...recordJson(entry), holders: entry.holders.map(holderJson) };
}

/** A record as JSON, without any other field the object carries. */
export function recordJson(record: ContentRecord): ContentRecord {
  const { id, size, digest, pieceSize, pieceDigests, binding } = record;
  const json = { id, size, digest, pieceSize, pieceDigests };
  return binding === undefined ? json : { ...json, binding };
}

/** Parses an entry. */
export function parseEntry(value: unknown): DirectoryEntry {
  const fields = object(value, "directory entry");
  return {
    ...parseRecord(value),
    holders: array(fields.holders, 100_000, "entry holders").map(parseHolder),
  };
}

/** Parses `{ items: [{ record, holder }] }`. */
export function parseAnnounce(value: unknown): AnnounceItem[] {
  const fields = object(value, "announce");
  return array(fields.items, MAX_BATCH, "announce items").map((item) => {
    const parts = object(item, "announce item");
    if (parts.existing !== undefined && typeof parts.existing !== "boolean") {
      throw new ProtocolError("Malformed announce existing: expected a boolean");
    }
    return {
      record: parseRecord(parts.record),
      holder: parseHolder(parts.holder),
      existing: parts.existing === true,
    };
  });
}

/** Parses `{ items: [{ id, node }] }`. */
export function parseWithdraw(value: unknown): Array<{ id: string; node: string }> {
  const fields = object(value, "withdraw");
  return array(fields.items, MAX_BATCH, "withdraw items").map((item) => {
    const parts = object(item, "withdraw item");
    return { id: objectId(parts.id), node: nodeId(parts.node, "withdraw node") };
  });
}

/** Parses `{ id }`, and a digest when `withDigest`. */
export function parseId(value: unknown, what: string): { id: string; digest?: string } {
  const fields = object(value, what);
  const id = objectId(fields.id);
  return fields.digest === undefined
    ? { id }
    : { id, digest: digest(fields.digest, `${what} digest`) };
}

/** Parses the statuses an owner returns for a batch of announces. */
export function parseStatuses(value: unknown, expected: number): AnnounceStatus[] {
  const fields = object(value, "announce reply");
  const statuses = array(fields.statuses, MAX_BATCH, "announce statuses");
  if (statuses.length !== expected) {
    throw new ProtocolError(
      `Malformed announce reply: ${statuses.length} statuses for ${expected} items`,
    );
  }
  return statuses.map((status) => {
    if (!STATUSES.includes(status as AnnounceStatus)) {
      throw new ProtocolError(`Malformed announce status: ${JSON.stringify(status)}`);
    }
    return status as AnnounceStatus;
  });
}

function base64(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    text += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return btoa(text);
}

/**
 * A claim message: `{ key, holder, ttl, since?, renew?, force? }`. `since`:
 * when the claimant was granted it (absent while tentative); `renew`: a
 * renewal within its lease, which takes over a holder granted later;
 * `force`: older members' copy of a grant.
 */
export interface ClaimItem {
  readonly key: string;
  readonly holder: Holder;
  readonly ttl: number;
  readonly since: number | undefined;
  readonly renew: boolean;
  readonly force: boolean;
}

/** The longest claim, in milliseconds: a holder renews long before. */
export const MAX_CLAIM_TTL = 10 * 60_000;

/** Parses a claim message. */
export function parseClaim(value: unknown): ClaimItem {
  const fields = object(value, "claim");
  const ttl = count(fields.ttl, "claim ttl", 1);
  if (ttl > MAX_CLAIM_TTL) {
    throw new ProtocolError(`Malformed claim ttl: ${ttl} ms, the limit is ${MAX_CLAIM_TTL}`);
  }
  for (const flag of ["renew", "force"] as const) {
    if (fields[flag] !== undefined && typeof fields[flag] !== "boolean") {
      throw new ProtocolError(`Malformed claim ${flag}: expected a boolean`);
    }
  }
  return {
    key: objectId(fields.key, "claim key"),
    holder: parseHolder(fields.holder),
    ttl,
    since: fields.since === undefined ? undefined : count(fields.since, "claim since", 0),
    renew: fields.renew === true,
    force: fields.force === true,
  };
}

/** Parses `{ key, node }`: a claim let go (`unclaim`), or one its holder should check (`check`). */
export function parseClaimOf(
  value: unknown,
  what: "unclaim" | "check",
): { key: string; node: string } {
  const fields = object(value, what);
  return { key: objectId(fields.key, "claim key"), node: nodeId(fields.node, `${what} node`) };
}

/** A watch message: `{ id, node, address }`, the watcher and where pushes reach it. */
export function parseWatch(value: unknown): { id: string; node: string; address: string } {
  const fields = object(value, "watch");
  return {
    id: objectId(fields.id),
    node: nodeId(fields.node, "watch node"),
    address: baseUrl(fields.address, "watch address"),
  };
}

/** Parses `{ id, node }`, a watch ended. */
export function parseUnwatch(value: unknown): { id: string; node: string } {
  const fields = object(value, "unwatch");
  return { id: objectId(fields.id), node: nodeId(fields.node, "unwatch node") };
}

/** A change of holders as JSON: a holder's pieces in base64. */
export function changeJson(change: HolderChange): unknown {
  return change.kind === "announced" ? { ...change, holder: holderJson(change.holder) } : change;
}

/** The most changes one push carries. */
export const MAX_CHANGES = 10_000;

/** Parses `{ items: [{ id, change }] }`, the changes of holders an owner pushes to a watcher. */
export function parseChanged(value: unknown): Array<{ id: string; change: HolderChange }> {
  const fields = object(value, "changed");
  return array(fields.items, MAX_CHANGES, "changed items").map((item) => {
    const parts = object(item, "changed item");
    const change = object(parts.change, "holder change");
    const id = objectId(parts.id);
    switch (change.kind) {
      case "announced":
        return {
          id,
          change: {
            kind: "announced",
            digest: digest(change.digest, "change digest"),
            holder: parseHolder(change.holder),
          },
        };
      case "withdrawn":
        return { id, change: { kind: "withdrawn", node: nodeId(change.node, "change node") } };
      case "removed":
        return { id, change: { kind: "removed" } };
      default:
        throw new ProtocolError(`Malformed holder change kind: ${JSON.stringify(change.kind)}`);
    }
  });
}
