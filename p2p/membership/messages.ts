/**
 * The messages of the gossip protocol, as JSON bodies of `POST
 * /v1/cluster/<kind>`, and their strict parsing: anything malformed is a
 * {@link ProtocolError}, never a crash and never a half-applied message.
 *
 * @module
 */
import { ProtocolError } from "../../core/errors.ts";
import type { MemberState } from "../members.ts";

/** A member announces it is alive at an incarnation; `boot` tells a restart apart. */
export interface AliveUpdate {
  readonly kind: "alive";
  readonly node: string;
  readonly address: string;
  readonly incarnation: number;
  readonly boot: string;
}

/** `from` suspects `node` at an incarnation. */
export interface SuspectUpdate {
  readonly kind: "suspect";
  readonly node: string;
  readonly incarnation: number;
  readonly from: string;
}

/** `from` declares `node` dead at an incarnation; from itself, it left. */
export interface DeadUpdate {
  readonly kind: "dead";
  readonly node: string;
  readonly incarnation: number;
  readonly from: string;
}

/** A change of membership, disseminated by gossip. */
export type Update = AliveUpdate | SuspectUpdate | DeadUpdate;

/** One member in a full state exchange (push/pull). */
export interface MemberRecord {
  readonly node: string;
  readonly address: string;
  readonly state: MemberState;
  readonly incarnation: number;
  readonly boot: string;
}

/** What every gossip request carries: who sends it, to whom, a unique id, and changes. */
export interface Envelope {
  /** The sender's node id. */
  readonly from: string;
  /** The node id the sender means to reach; absent on a join, which knows only an address. */
  readonly to?: string;
  /** Unique per message, so a replay is recognized. */
  readonly id: string;
  /** Piggy-backed membership changes. */
  readonly updates: readonly Update[];
}

/** `POST /v1/cluster/ping`: are you alive? */
export type PingBody = Envelope;

/** The ack of a ping: who answered, and its own changes. */
export interface PingReply {
  readonly node: string;
  readonly updates: readonly Update[];
}

/** `POST /v1/cluster/ping-req`: probe `target` for me. */
export interface PingReqBody extends Envelope {
  readonly target: string;
  readonly targetAddress: string;
}

/** The answer of an indirect probe: ack, or nack (the target did not answer in time). */
export interface PingReqReply {
  readonly ack: boolean;
  readonly updates: readonly Update[];
}

/** `POST /v1/cluster/gossip`: changes only. */
export type GossipBody = Envelope;

/** `POST /v1/cluster/sync`: a full state exchange; `join` on the first one. */
export interface SyncBody extends Envelope {
  readonly join: boolean;
  readonly members: readonly MemberRecord[];
}

/** The other side's full state. */
export interface SyncReply {
  readonly node: string;
  readonly members: readonly MemberRecord[];
}

/** The longest node id accepted. */
export const MAX_NODE_LENGTH = 256;
/** The most changes one message carries. */
export const MAX_UPDATES = 1024;
/** The most members one full state exchange carries. */
export const MAX_MEMBERS = 100_000;

const STATES: readonly MemberState[] = ["alive", "suspect", "dead", "left"];

type Fields = Record<string, unknown>;

/** The fields of a JSON object. */
export function object(value: unknown, what: string): Fields {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ProtocolError(`Malformed ${what}: expected a JSON object`);
  }
  return value as Fields;
}

/** A node id: 1 to 256 printable characters. */
export function nodeId(value: unknown, what: string): string {
  if (
    typeof value !== "string" || value.length === 0 || value.length > MAX_NODE_LENGTH ||
    // deno-lint-ignore no-control-regex
    /[\x00-\x1f\x7f]/.test(value)
  ) {
    throw new ProtocolError(
      `Malformed ${what}: expected a node id of 1 to 256 printable characters`,
    );
  }
  return value;
}

/** An HTTP base URL without credentials, path, query or fragment. */
export function baseUrl(value: unknown, what: string): string {
  let url: URL | undefined;
  if (typeof value === "string" && value.length <= 2048) {
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
  }
  if (
    url === undefined || (url.protocol !== "http:" && url.protocol !== "https:") ||
    url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "" ||
    (url.pathname !== "/" && url.pathname !== "")
  ) {
    throw new ProtocolError(
      `Malformed ${what}: expected an http(s) base URL such as http://10.0.0.1:7070`,
    );
  }
  return url.origin;
}

function incarnation(value: unknown, what: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new ProtocolError(`Malformed ${what}: expected an incarnation, a non-negative integer`);
  }
  return value;
}

function token(value: unknown, what: string): string {
  if (typeof value !== "string" || value.length === 0 || value.length > 128) {
    throw new ProtocolError(`Malformed ${what}: expected a string of 1 to 128 characters`);
  }
  return value;
}

function list(value: unknown, max: number, what: string): readonly unknown[] {
  if (!Array.isArray(value)) throw new ProtocolError(`Malformed ${what}: expected an array`);
  if (value.length > max) {
    throw new ProtocolError(`Malformed ${what}: ${value.length} items, the limit is ${max}`);
  }
  return value;
}

/** Parses one membership change. */
export function parseUpdate(value: unknown): Update {
  const fields = object(value, "update");
  const node = nodeId(fields.node, "update node");
  const inc = incarnation(fields.incarnation, "update incarnation");
  switch (fields.kind) {
    case "alive":
      return {
        kind: "alive",
        node,
        address: baseUrl(fields.address, "update address"),
        incarnation: inc,
        boot: token(fields.boot, "update boot"),
      };
    case "suspect":
    case "dead":
      return {
        kind: fields.kind,
        node,
        incarnation: inc,
        from: nodeId(fields.from, "update from"),
      };
    default:
      throw new ProtocolError(
        `Malformed update kind: ${JSON.stringify(fields.kind)} (one of alive, suspect, dead)`,
      );
  }
}

/** Parses the changes of a message. */
export function parseUpdates(value: unknown): Update[] {
  return list(value ?? [], MAX_UPDATES, "updates").map(parseUpdate);
}

/** Parses the envelope fields every request carries. */
export function parseEnvelope(value: unknown, what = "gossip message"): Envelope {
  const fields = object(value, what);
  return {
    from: nodeId(fields.from, `${what} from`),
    ...(fields.to === undefined ? {} : { to: nodeId(fields.to, `${what} to`) }),
    id: token(fields.id, `${what} id`),
    updates: parseUpdates(fields.updates),
  };
}

/** Parses a ping-req body. */
export function parsePingReq(value: unknown): PingReqBody {
  const fields = object(value, "ping-req");
  return {
    ...parseEnvelope(value, "ping-req"),
    target: nodeId(fields.target, "ping-req target"),
    targetAddress: baseUrl(fields.targetAddress, "ping-req target address"),
  };
}

/** Parses one member of a full state exchange. */
export function parseMemberRecord(value: unknown): MemberRecord {
  const fields = object(value, "member");
  if (!STATES.includes(fields.state as MemberState)) {
    throw new ProtocolError(`Malformed member state: ${JSON.stringify(fields.state)}`);
  }
  return {
    node: nodeId(fields.node, "member node"),
    address: baseUrl(fields.address, "member address"),
    state: fields.state as MemberState,
    incarnation: incarnation(fields.incarnation, "member incarnation"),
    boot: token(fields.boot, "member boot"),
  };
}

/** Parses a sync body. */
export function parseSync(value: unknown): SyncBody {
  const fields = object(value, "sync");
  if (typeof fields.join !== "boolean") {
    throw new ProtocolError("Malformed sync join: expected a boolean");
  }
  return {
    ...parseEnvelope(value, "sync"),
    join: fields.join,
    members: list(fields.members, MAX_MEMBERS, "sync members").map(parseMemberRecord),
  };
}

/** Parses the reply to a ping. */
export function parsePingReply(value: unknown): PingReply {
  const fields = object(value, "ping reply");
  return { node: nodeId(fields.node, "ping reply node"), updates: parseUpdates(fields.updates) };
}

/** Parses the reply to a ping-req. */
export function parsePingReqReply(value: unknown): PingReqReply {
  const fields = object(value, "ping-req reply");
  if (typeof fields.ack !== "boolean") {
    throw new ProtocolError("Malformed ping-req reply: expected ack as a boolean");
  }
  return { ack: fields.ack, updates: parseUpdates(fields.updates) };
}

/** Parses the reply to a sync. */
export function parseSyncReply(value: unknown): SyncReply {
  const fields = object(value, "sync reply");
  return {
    node: nodeId(fields.node, "sync reply node"),
    members: list(fields.members, MAX_MEMBERS, "sync reply members").map(parseMemberRecord),
  };
}
