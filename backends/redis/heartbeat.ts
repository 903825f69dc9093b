/** The heartbeat of a node: each tick renews its liveness, puts back what Redis lost, and reaps dead nodes. */
import { StoreUnavailableError } from "../../core/errors.ts";
import type { Exec, RedisLogger } from "./connection.ts";
import type { NodeRegistry } from "./node_registry.ts";
import type { Reconciler } from "./reconciliation.ts";

/** What {@link Heartbeat} works with. */
export interface HeartbeatOptions {
  readonly namespace: string;
  readonly registry: NodeRegistry;
  readonly reconciler: Reconciler;
  readonly log: RedisLogger | undefined;
  /** Runs a script once the connection is ready. */
  readonly exec: Exec;
  /** Whether Redis is reachable now. */
  readonly available: () => boolean;
}

/**
 * Every third of the liveness, while Redis is reachable: a heartbeat,
 * re-registration when Redis lost this node, reconciliation, and reaping of
 * dead nodes; copies Redis does not list are checked apart from it.
 */
export class Heartbeat {
  readonly #namespace: string;
  readonly #registry: NodeRegistry;
  readonly #reconciler: Reconciler;
  readonly #log: RedisLogger | undefined;
  readonly #gated: Exec;
  readonly #available: () => boolean;
  #timer: ReturnType<typeof setInterval> | undefined;
  #ticking: Promise<void> | undefined;
  #verifying: Promise<void> | undefined;

  constructor(options: HeartbeatOptions) {
    this.#namespace = options.namespace;
    this.#registry = options.registry;
    this.#reconciler = options.reconciler;
    this.#log = options.log;
    this.#gated = options.exec;
    this.#available = options.available;
  }

  /** Starts ticking, on a timer that does not keep the process alive. */
  start(): void {
    const timer = setInterval(() => this.#tick(), this.#registry.interval);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  /** Stops ticking, and waits for a tick or check under way. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#ticking;
    await this.#verifying;
  }

  /** Runs on each connection before calls go through. */
  async onReady(first: boolean, exec: Exec): Promise<void> {
    if (first) {
      if (await this.#registry.beat(exec) === "TAKEN") {
        this.#log?.warn(
          `Node ${this.#registry.node} was alive in namespace ${this.#namespace}: taking over from its ` +
            `earlier run (or from another daemon with the same node id)`,
        );
      }
      // Whatever an earlier run of this node id left is dead.
      await this.#registry.reap(exec, this.#registry.node);
    }
    const beat = await this.#registry.beat(exec);
    if (!first && beat !== "OK") await this.#reconciler.registerAgain(exec, beat);
    await this.#reconciler.reconcile(exec);
  }

  /** Heartbeat, re-registration when Redis lost this node, reconciliation, and reaping of dead nodes. */
  #tick(): void {
    if (this.#ticking !== undefined || !this.#available()) return;
    this.#ticking = (async () => {
      const beat = await this.#registry.beat(this.#gated);
      if (beat !== "OK") await this.#reconciler.registerAgain(this.#gated, beat);
      await this.#reconciler.reconcile(this.#gated);
      await this.#reconciler.checkEpochs(this.#gated);
      await this.#registry.reap(this.#gated, "");
      // Apart from the heartbeat, which hashing large copies must not hold up.
      this.#verifying ??= this.#reconciler.verify(this.#gated).catch((error) => {
        if (!(error instanceof StoreUnavailableError)) {
          this.#log?.warn(`Cannot check copies held here: ${(error as Error).message}`);
        }
      }).finally(() => this.#verifying = undefined);
    })().catch((error) => {
      if (!(error instanceof StoreUnavailableError)) {
        this.#log?.warn(`Redis heartbeat failed: ${(error as Error).message}`);
      }
    }).finally(() => this.#ticking = undefined);
  }
}
