/**
 * Work deferred to the end of this turn of the event loop, once the callers
 * of this turn have issued their commands: first what gathers commands into
 * fewer (`use_batches.ts`), then what writes them (`resp_socket.ts`), all in
 * one pass on one `setImmediate`, so that a turn's commands leave in one
 * write rather than a loop iteration apart.
 *
 * @module
 */
import { setImmediate } from "node:timers";

const gathering: (() => void)[] = [];
const writing: (() => void)[] = [];
let scheduled = false;

/** Runs `fn`, which issues commands, at the end of this turn, before the writes. */
export function gatherAtTurnEnd(fn: () => void): void {
  gathering.push(fn);
  schedule();
}

/**
 * Runs `fn`, which writes the commands issued, at the end of this turn,
 * after everything gathered; work deferred while the pass runs joins it.
 */
export function writeAtTurnEnd(fn: () => void): void {
  writing.push(fn);
  schedule();
}

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(run);
}

function run(): void {
  while (gathering.length > 0 || writing.length > 0) {
    drain(gathering);
    drain(writing);
  }
  scheduled = false;
}

function drain(queue: (() => void)[]): void {
  for (let i = 0; i < queue.length; i++) {
    try {
      queue[i]!();
    } catch (error) {
      // As from a callback of its own: the rest of the pass still runs.
      reportError(error);
    }
  }
  queue.length = 0;
}
