import { UnsupportedError } from "../core/errors.ts";
import { formatJson, table } from "./format.ts";
import {
  daemonStatus,
  open,
  parse,
  positionals,
  SHOW_FLAGS,
  TARGET_USAGE,
  targetOf,
} from "./command.ts";

/** The usage text of `packice members`. */
export const MEMBERS_USAGE = `Usage: packice members [--json]

Lists the daemon's cluster as it sees it: each member's node id, state (alive,
suspect, dead, left), incarnation, address and when its state last changed.

  --json   as JSON
${TARGET_USAGE}`;

/** `packice members`. */
export async function members(args: string[]): Promise<number> {
  const { values, positionals: rest } = parse(args, SHOW_FLAGS);
  positionals(rest, []);
  await using client = await open(values);
  const { members } = await daemonStatus(client, values.target, "members");
  if (members === undefined) {
    throw new UnsupportedError(
      `No members: the daemon at ${
        targetOf(values.target)
      } is in no cluster (start it with --http)`,
    );
  }
  if (values.json) {
    console.log(formatJson(members));
    return 0;
  }
  const rows = [...members].sort((a, b) => a.node.localeCompare(b.node)).map((member) => [
    member.node,
    member.state,
    String(member.incarnation),
    member.address,
    new Date(member.changedAt).toISOString().replace(/\.\d+Z$/, "Z"),
  ]);
  console.log(table([["NODE", "STATE", "INC", "ADDRESS", "CHANGED"], ...rows]));
  return 0;
}
