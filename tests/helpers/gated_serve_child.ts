/**
 * `cli.ts` behind a start gate, so that several daemons start at the same
 * instant: `gated_serve_child.ts serve ... --gate FILE` announces itself with
 * `FILE.<pid>`, waits for a shared lock on FILE (which the test holds
 * exclusively until every child is waiting), then runs `main`.
 */
import { main } from "../../cli.ts";

const at = Deno.args.indexOf("--gate");
const gate = Deno.args[at + 1]!;
const args = Deno.args.toSpliced(at, 2);
using file = await Deno.open(gate, { read: true });
await Deno.writeTextFile(`${gate}.${Deno.pid}`, "");
await file.lock(false);
file.unlockSync();
Deno.exit(await main(args));
