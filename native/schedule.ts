import { setImmediate } from "node:timers";

/** How many microtask hops a reply flush waits for the requests in flight to settle. */
const REPLY_HOPS = 16;
/** How many times a wait steps back behind newer microtasks while work is under way. */
const MAX_DEFERRALS = 64;

/**
 * When the messages of the Unix-socket transport leave and when the JS
 * thread waits for what comes back: the scheduling policy of the process in
 * one place, beside the spin policy (`spin.ts`) that says how long a wait
 * polls. The reactor owns the one instance (`Reactor.schedule`); each
 * connection flushes through a {@link Flusher} of it.
 *
 * Everything here is a microtask or the end of an event-loop turn, never a
 * timer: setting a timer costs more than a request. Each policy is one
 * queued step that flushes and then runs the connection's follow-up inline:
 * splitting a step (a flush, then its follow-up in a microtask of its own)
 * would add a hop to every round trip, so keep each step whole.
 */
export class Schedule {
  #busy = 0;
  /** Flushers waiting for the event loop to turn: one `setImmediate` serves them all. */
  #nextTurn: Flusher[] = [];
  readonly #nextTurnStep = () => {
    const flushers = this.#nextTurn;
    this.#nextTurn = [];
    for (let i = 0; i < flushers.length; i++) flushers[i]!.turned();
  };

  /** Has `flusher` told when the event loop turns; see {@link Flusher.nextTurn}. */
  atNextTurn(flusher: Flusher): void {
    // Setting an immediate costs more than a request: one per turn, however many connections.
    if (this.#nextTurn.push(flusher) === 1) setImmediate(this.#nextTurnStep);
  }

  /**
   * Counts work under way that a wait lets run first: a request being
   * served, or frames pushed and waiting for their flush.
   *
   * @param delta +1 when work starts, -1 when it ends.
   */
  busy(delta: number): void {
    this.#busy += delta;
  }

  /**
   * Runs `run` once the work under way has run: it steps back behind newer
   * microtasks while anything is {@link Schedule.busy}, at most
   * {@link MAX_DEFERRALS} times, so that a wait never holds up the flush of
   * replies or requests made in this turn.
   */
  afterWork(run: () => void): void {
    let deferrals = 0;
    const step = () => {
      if (this.#busy > 0 && deferrals++ < MAX_DEFERRALS) queueMicrotask(step);
      else run();
    };
    queueMicrotask(step);
  }

  /**
   * A connection's flushes, each of them asked for once however often.
   *
   * @param flush Sends what the connection has pushed.
   */
  flusher(flush: () => void): Flusher {
    return new Flusher(this, flush);
  }
}

/** One connection's flushes; see {@link Schedule.flusher}. */
export class Flusher {
  readonly #schedule: Schedule;
  readonly #flush: () => void;
  #turnQueued = false;
  #nextTurnQueued = false;
  #settleQueued = false;
  /** What runs after the flush each kind of step does, as asked by the call that queued it. */
  #afterTurn: () => void = nothing;
  #afterSettled: () => void = nothing;
  #inflight: () => number = none;
  #hops = 0;
  // Each step made once, not a closure per call: a connection queues one or two per request.
  readonly #endOfTurnStep = () => {
    this.#turnQueued = false;
    this.#flush();
    this.#afterTurn();
  };
  readonly #settleStep = () => {
    if (this.#inflight() > 0 && this.#hops++ < REPLY_HOPS) {
      queueMicrotask(this.#settleStep);
      return;
    }
    this.#settleQueued = false;
    this.#flush();
    this.#afterSettled();
  };

  constructor(schedule: Schedule, flush: () => void) {
    this.#schedule = schedule;
    this.#flush = flush;
  }

  /** Requests made in the same turn leave in one message, at its end; then `then`. */
  endOfTurn(then: () => void): void {
    if (this.#turnQueued) return;
    this.#turnQueued = true;
    this.#afterTurn = then;
    queueMicrotask(this.#endOfTurnStep);
  }

  /**
   * For what nobody waits on, such as a one-way release: it rides with the
   * next request, or leaves on its own when the event loop turns.
   */
  nextTurn(): void {
    if (this.#nextTurnQueued) return;
    this.#nextTurnQueued = true;
    this.#schedule.atNextTurn(this);
  }

  /** The event loop has turned since {@link Flusher.nextTurn}: what waits for it leaves. */
  turned(): void {
    this.#nextTurnQueued = false;
    this.#flush();
  }

  /**
   * Flushes once the requests in flight have settled (they usually do within
   * a few microtasks, at most {@link REPLY_HOPS} are waited for), so that
   * pipelined requests get their replies in one message; then `then`.
   *
   * @param inflight How many requests are under way.
   */
  whenSettled(inflight: () => number, then: () => void): void {
    if (this.#settleQueued) return;
    this.#settleQueued = true;
    this.#inflight = inflight;
    this.#afterSettled = then;
    this.#hops = 0;
    queueMicrotask(this.#settleStep);
  }
}

function nothing(): void {}

function none(): number {
  return 0;
}
