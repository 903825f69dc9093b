/** This node's membership of a namespace: its heartbeat, the liveness of the others, and the reaping of dead ones. */
import type { Clock } from "../../core/clock.ts";
import type { Exec } from "./connection.ts";
import { nodeKeys, objectKey, shardKeys } from "./keys.ts";
import { SCRIPTS } from "./scripts.ts";

/** Entries a reap script ends per call, so one call never holds Redis for long. */
const REAP_LIMIT = 1000;

/** What {@link NodeRegistry} needs to know of the store it serves. */
export interface NodeRegistryOptions {
  readonly namespace: string;
  readonly node: string;
  readonly shards: number;
  readonly address: string;
  readonly clock: Clock;
  /** Milliseconds this node counts as alive after each heartbeat. */
  readonly liveness: number;
}

/**
 * A node's entry in the namespace: each heartbeat extends its liveness and
 * says whether Redis still knew it; a node whose liveness lapsed is dead, and
 * any live node reaps what it left.
 */
export class NodeRegistry {
  readonly node: string;
  readonly #namespace: string;
  readonly #shards: number;
  readonly #address: string;
  readonly #clock: Clock;
  readonly #liveness: number;
  readonly #nodeKeys: readonly string[];
  readonly #incarnation = crypto.randomUUID();

  constructor(options: NodeRegistryOptions) {
    this.node = options.node;
    this.#namespace = options.namespace;
    this.#shards = options.shards;
    this.#address = options.address;
    this.#clock = options.clock;
    this.#liveness = options.liveness;
    this.#nodeKeys = nodeKeys(options.namespace);
  }

  /** Milliseconds between heartbeats: a third of the liveness. */
  get interval(): number {
    return Math.floor(this.#liveness / 3);
  }

  /** Whether `node` is alive in the namespace. */
  async alive(exec: Exec, node: string): Promise<boolean> {
    const now = String(this.#clock.now());
    return await exec(SCRIPTS.dead, this.#nodeKeys, [now, this.node, node]) === "1";
  }

  /** Sends a heartbeat: `OK`, or how Redis lost this node (`TAKEN`, or its state gone). */
  async beat(exec: Exec): Promise<string> {
    return await exec(SCRIPTS.heartbeat, this.#nodeKeys, [
      String(this.#clock.now()),
      this.node,
      this.#incarnation,
      String(this.#liveness),
      this.#address,
    ]) as string;
  }

  /**
   * Ends the state of dead nodes: their leases without a TTL (abandoning the
   * objects they were creating) and their holdings (a sealed object left
   * without a holder leaves lookups), shard by shard, then forgets them.
   * Leases with a TTL end by their Redis expiry. `node`: one node to reap
   * whether or not it looks alive (this node's earlier run, or itself when
   * closing), or '' for every node whose liveness lapsed.
   */
  async reap(exec: Exec, node: string): Promise<void> {
    const now = () => String(this.#clock.now());
    const nodes = node !== ""
      ? [node]
      : await exec(SCRIPTS.dead, this.#nodeKeys, [now(), this.node, ""]) as string[];
    for (const dead of nodes) {
      for (let shard = 0; shard < this.#shards; shard++) {
        const keys = shardKeys(this.#namespace, shard, dead);
        for (;;) {
          const [pairs, held] = await exec(SCRIPTS.owned, keys, [
            now(),
            this.node,
            dead,
            String(REAP_LIMIT),
          ]) as [string[], string[]];
          if (pairs.length === 0 && held.length === 0) break;
          const leases = pairs.filter((_, i) => i % 2 === 0);
          const objects = [...pairs.filter((_, i) => i % 2 === 1).map(objectOfLease), ...held];
          await exec(
            SCRIPTS.reap,
            [...keys, ...objects.map((id) => objectKey(this.#namespace, shard, id))],
            [now(), this.node, dead, String(leases.length), ...leases, ...held],
          );
        }
      }
      await exec(SCRIPTS.forget, this.#nodeKeys, [now(), this.node, dead, node === "" ? "" : "1"]);
    }
  }
}

/** The object id of a lease without a TTL as Redis keeps it: `ACCESS:objectId`. */
export function objectOfLease(value: string): string {
  return value.slice(value.indexOf(":") + 1);
}
