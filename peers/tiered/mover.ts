/**
 * The demote/promote engine of a tiered store: demoters that move the least
 * recently used idle objects from memory to disk while memory is above its
 * high watermark, and promotion of objects read from disk often enough.
 */
import type { TieredObject } from "./tiered_object.ts";
import type { Tiers } from "./tiers.ts";

/**
 * Demotions run at once: one object's flushes to disk overlap the next one's
 * copy, where a single demoter would leave the disk idle between objects.
 */
const DEMOTERS = 2;

/** Moves objects between the tiers in the background. */
export class TierMover {
  readonly #tiers: Tiers;
  /** Demoters running. */
  #demoters = 0;
  /** Hot bytes the demoters are moving out. */
  #outgoing = 0;

  constructor(tiers: Tiers) {
    this.#tiers = tiers;
  }

  /** Bytes of the objects being demoted now. */
  get demoting(): number {
    return this.#outgoing;
  }

  /** Starts demoters when memory is above its high watermark, up to {@link DEMOTERS}. */
  kick(): void {
    const tiers = this.#tiers;
    if (tiers.closing !== undefined || tiers.usage.hot.bytes <= tiers.options.highWatermark) return;
    while (this.#demoters < DEMOTERS) {
      this.#demoters++;
      tiers.track(
        this.#demoteDown().finally(() => {
          this.#demoters--;
        }),
      );
    }
  }

  /**
   * Records a read from disk, and starts the object's promotion when that
   * read earns it.
   */
  readCold(object: TieredObject): void {
    if (this.#promotionDue(object)) this.#startPromotion(object);
  }

  /**
   * Demotes the least recently used idle hot objects one after the other,
   * until memory, less what other demoters are moving out, is at the low
   * watermark.
   */
  async #demoteDown(): Promise<void> {
    const tiers = this.#tiers;
    const { lowWatermark } = tiers.options;
    while (tiers.closing === undefined && tiers.usage.hot.bytes - this.#outgoing > lowWatermark) {
      const victim = tiers.idleLeast(tiers.hotLru);
      if (victim === undefined) return;
      this.#outgoing += victim.size;
      try {
        await tiers.move(victim, this.#demote(victim));
      } catch (error) {
        tiers.failed(error);
        tiers.hotLru.refresh(victim);
        return;
      } finally {
        this.#outgoing -= victim.size;
      }
    }
  }

  /**
   * Copies the object to disk unless it is there already, then frees its hot
   * copy if it is still idle; an object a reader took meanwhile keeps both.
   */
  async #demote(object: TieredObject): Promise<void> {
    const tiers = this.#tiers;
    if (object.cold === undefined) {
      await tiers.claimCold(object);
      if (object.freed || object.hot === undefined) {
        tiers.credit("cold", object.size);
        return;
      }
      await tiers.copy(object, "cold");
      tiers.counts.demotedBytes += object.size;
      if (object.freed) return;
      tiers.coldLru.touch(object);
    }
    if (object.freed || object.hot === undefined || !tiers.host!.isIdle(object)) return;
    tiers.counts.demotions++;
    tiers.track(tiers.freeCopy(object, "hot"));
  }

  /** Starts copying the object into memory, when memory has room for it now. */
  #startPromotion(object: TieredObject): void {
    const tiers = this.#tiers;
    if (object.busy || object.hot !== undefined || tiers.closing !== undefined) return;
    // Memory without room now: a later read tries again.
    if (!tiers.fitsHot(object.size)) return;
    tiers.charge("hot", object.size);
    tiers.track(tiers.move(object, this.#promote(object)));
  }

  async #promote(object: TieredObject): Promise<void> {
    const tiers = this.#tiers;
    await tiers.copy(object, "hot");
    object.coldReads = 0;
    object.coldSince = undefined;
    tiers.counts.promotions++;
    tiers.counts.promotedBytes += object.size;
    if (object.freed) return;
    tiers.hotLru.touch(object);
    this.kick();
  }

  /** Counts a read from disk; true when it is the read that earns a promotion. */
  #promotionDue(object: TieredObject): boolean {
    const { promoteAfterReads, promoteWindow, clock } = this.#tiers.options;
    if (promoteAfterReads === 0) return false;
    const now = clock.now();
    if (object.coldSince === undefined || now - object.coldSince > promoteWindow) {
      object.coldSince = now;
      object.coldReads = 0;
    }
    return ++object.coldReads >= promoteAfterReads;
  }
}
