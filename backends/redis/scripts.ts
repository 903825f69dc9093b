/**
 * The Lua scripts of the Redis lease store, by operation: each state change
 * is one script, so it is atomic and daemons racing on one id always agree.
 * They apply the rules of `core/lifecycle.ts`; a refusal returns its error
 * code, and the TypeScript side rebuilds the error by running the same
 * lifecycle check on the state the script saw.
 *
 * Replies are flat arrays: a status (`OK` or an error code), then the fields
 * of the object the script saw or removed, if any.
 *
 * Redis Cluster: every key a script touches is passed in KEYS (but the
 * objects a page finds in its index, whose keys carry the same hash tag),
 * and all of them are in one hash slot (see `keys.ts`); what needs a shard and node
 * liveness both (reaping a dead node, replacing an object whose creator's
 * node died) takes two steps from the TypeScript side.
 *
 * The scripts live in groups: `lease_scripts.ts`, `namespace_scripts.ts`,
 * `upkeep_scripts.ts`, `node_scripts.ts`; `lua.ts` builds them.
 *
 * @module
 */
import { LEASE_SCRIPTS } from "./lease_scripts.ts";
import type { Script } from "./lua.ts";
import { NAMESPACE_SCRIPTS } from "./namespace_scripts.ts";
import { NODE_SCRIPTS } from "./node_scripts.ts";
import { UPKEEP_SCRIPTS } from "./upkeep_scripts.ts";

export type { Script } from "./lua.ts";

/** Every script, by operation. */
export const SCRIPTS = {
  ...LEASE_SCRIPTS,
  ...NAMESPACE_SCRIPTS,
  ...UPKEEP_SCRIPTS,
  ...NODE_SCRIPTS,
} as const satisfies Record<string, Script>;
