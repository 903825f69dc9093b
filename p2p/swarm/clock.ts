/**
 * The time source of the swarm's policies, so that tests drive them with a
 * fake clock.
 *
 * @module
 */

/** Milliseconds now, on any monotonic or wall clock. */
export type Clock = () => number;

/** `performance.now()`: monotonic, unaffected by wall-clock steps. */
export const monotonic: Clock = () => performance.now();
