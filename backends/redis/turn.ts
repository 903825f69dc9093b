/**
 * Work deferred to the end of this turn of the event loop, once the callers
 * of this turn have issued their commands: gathering them (`use_batches.ts`)
 * and writing them (`resp_socket.ts`) happen in one pass, on one
 * `setImmediate`, rather than a loop iteration apart.
 *
 * @module
 */
import { setImmediate } from "node:timers";

const queue: (() => void)[] = [];
let scheduled = false;

/**
 * Runs `fn` at the end of this turn, after the work deferred before it; work
 * deferred while that runs joins the same pass.
 */
export function atTurnEnd(fn: () => void): void {
  queue.push(fn);
  if (scheduled) return;
  scheduled = true;
  setImmediate(run);
}

function run(): void {
  for (let i = 0; i < queue.length; i++) {
    try {
      queue[i]!();
    } catch (error) {
      // As from a callback of its own: the rest of the pass still runs.
      reportError(error);
    }
  }
  queue.length = 0;
  scheduled = false;
}
