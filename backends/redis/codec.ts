/**
 * How objects and leases are written in Redis hashes and script arguments.
 *
 * @module
 */
import type { LeaseRecord } from "../../core/lease_store.ts";
import type { ObjectInfo, ObjectState } from "../../core/object.ts";

/** A Redis hash as the flat list HGETALL and the scripts return. */
export type Fields = readonly string[];

/**
 * The version of an object's hash (its `v` field), which changes with every
 * change to it; the hash starts at `fields[from]`.
 */
export function versionOf(fields: Fields, from = 0): string {
  for (let i = from; i + 1 < fields.length; i += 2) {
    if (fields[i] === "v") return fields[i + 1]!;
  }
  return "";
}

/** Rebuilds an object from its hash, which starts at `fields[from]`; undefined for an empty one. */
export function decodeObject(id: string, fields: Fields, from = 0): ObjectInfo | undefined {
  if (fields.length <= from) return undefined;
  const values = new Map<string, string>();
  const holders: { node: string; address?: string }[] = [];
  for (let i = from; i + 1 < fields.length; i += 2) {
    const name = fields[i]!;
    const value = fields[i + 1]!;
    if (name.startsWith("@")) {
      holders.push(
        value === "" ? { node: name.slice(1) } : { node: name.slice(1), address: value },
      );
    } else {
      values.set(name, value);
    }
  }
  const sealedAt = values.get("sealedAt");
  const digest = values.get("digest");
  const tier = values.get("tier");
  return {
    id,
    state: values.get("state") as ObjectState,
    size: Number(values.get("size")),
    blobSizes: JSON.parse(values.get("blobs") ?? "[]"),
    meta: JSON.parse(values.get("meta") ?? "{}"),
    createdAt: Number(values.get("createdAt")),
    ...(sealedAt === undefined ? {} : { sealedAt: Number(sealedAt) }),
    ...(digest === undefined ? {} : { digest }),
    ...(tier === undefined ? {} : { tier }),
    holders,
  };
}

/** The fields a new object's hash starts with, as the create script takes them. */
export function creatingArgs(info: ObjectInfo): [string, string, string, string] {
  return [
    String(info.size),
    JSON.stringify(info.blobSizes),
    JSON.stringify(info.meta),
    String(info.createdAt),
  ];
}

/**
 * A sealed object as the register script takes it; `join` when it may only
 * join an object Redis records, never record one.
 */
export function sealedEntry(info: ObjectInfo, join = false): (string | boolean)[] {
  return [
    info.id,
    ...creatingArgs(info),
    String(info.sealedAt ?? info.createdAt),
    info.digest ?? "",
    info.tier ?? "",
    join,
  ];
}

/**
 * A lease's TTL, expiry and Redis expiry (milliseconds left by `now`, at least
 * 1) as script arguments; empty strings for a lease without a TTL.
 */
export function expiryArgs(lease: LeaseRecord, now: number): [string, string, string] {
  if (lease.ttl === undefined || lease.expiresAt === undefined) return ["", "", ""];
  return [String(lease.ttl), String(lease.expiresAt), String(Math.max(1, lease.expiresAt - now))];
}
