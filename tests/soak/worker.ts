/**
 * One soak client process: lanes of mixed operations on a daemon, over its
 * Unix socket or HTTP, each lane on ids of its own so that it knows what each
 * read must return. Prints one JSON {@link WorkerResult} line when its time is
 * up.
 *
 * Usage: `deno run -A tests/soak/worker.ts '<WorkerConfig as JSON>'`
 */
import { createHash } from "node:crypto";
import { Access, type Client, connect, ErrorCode, PackiceError } from "../../mod.ts";
import { digestOf, pickSize, randomBase, stamp } from "./content.ts";

/** What the orchestrator tells a worker. */
export interface WorkerConfig {
  /** A socket path or an `http://` URL. */
  readonly target: string;
  readonly token: string;
  /** Prefix of this worker's ids. */
  readonly prefix: string;
  readonly seconds: number;
  /** Operation loops run side by side, each on its own ids. */
  readonly lanes: number;
  /** Ids per lane. */
  readonly slots: number;
  /** The largest object. */
  readonly maxSize: number;
  /** Objects put before the workers started and never changed: id and digest. */
  readonly shared: readonly { readonly id: string; readonly digest: string }[];
}

/** What a worker reports. */
export interface WorkerResult {
  /** Operations that ended as expected, per kind. */
  readonly ops: Record<string, number>;
  /** Bytes read and checked against their digest. */
  readonly bytesChecked: number;
  /** Bytes written. */
  readonly bytesWritten: number;
  /** Puts and creates refused with CAPACITY_EXCEEDED. */
  readonly refused: number;
  /** What went wrong, one line each (at most 50 kept). */
  readonly failures: string[];
  /** How many failures there were. */
  readonly failureCount: number;
  /** Failures with INTERNAL, a subset of the failures. */
  readonly internal: number;
}

/** What a lane expects of one id. */
type Slot =
  | { readonly state: "absent"; readonly generation: number }
  | {
    readonly state: "sealed";
    readonly generation: number;
    readonly digest: string;
    readonly size: number;
  }
  | {
    readonly state: "expiring";
    readonly generation: number;
    readonly deadline: number;
    readonly abort: () => Promise<void>;
  };

const KIND_WEIGHTS: readonly [string, number][] = [
  ["put", 18],
  ["get", 24],
  ["stream", 10],
  ["create", 10],
  ["delete", 10],
  ["stat", 8],
  ["list", 3],
  ["lease", 6],
  ["expire", 2],
  ["shared", 6],
  ["reconnect", 3],
];
const WEIGHT_TOTAL = KIND_WEIGHTS.reduce((sum, [, weight]) => sum + weight, 0);
/** How long an abandoned CREATE lease lasts, and how long past it the object may linger. */
const EXPIRE_TTL_MS = 300;
const EXPIRE_GRACE_MS = 10_000;
const WRITE_CHUNK = 1024 * 1024;

function pickKind(): string {
  let r = Math.random() * WEIGHT_TOTAL;
  for (const [kind, weight] of KIND_WEIGHTS) {
    r -= weight;
    if (r < 0) return kind;
  }
  return "get";
}

/** A failure the soak reports: a read of wrong bytes, or an error it did not expect. */
class SoakFailure extends Error {}

function codeOf(error: unknown): string | undefined {
  return error instanceof PackiceError ? error.code : undefined;
}

async function main(config: WorkerConfig): Promise<WorkerResult> {
  const ops: Record<string, number> = {};
  const failures: string[] = [];
  let failureCount = 0;
  let internal = 0;
  let bytesChecked = 0;
  let bytesWritten = 0;
  let refused = 0;
  const base = randomBase(config.maxSize);
  const open = () =>
    connect(config.target, config.target.startsWith("http") ? { token: config.token } : {});
  const end = performance.now() + config.seconds * 1000;

  const fail = (kind: string, id: string, error: unknown) => {
    failureCount++;
    if (codeOf(error) === ErrorCode.INTERNAL) internal++;
    const what = error instanceof SoakFailure
      ? error.message
      : `${codeOf(error) ?? "unexpected"}: ${error instanceof Error ? error.message : error}`;
    if (failures.length < 50) failures.push(`${kind} ${id}: ${what}`);
  };

  const lane = async (index: number) => {
    let client: Client = await open();
    const ids = Array.from({ length: config.slots }, (_, i) => `${config.prefix}.${index}.${i}`);
    const slots = new Map<string, Slot>(ids.map((id) => [id, { state: "absent", generation: 0 }]));
    const pick = (state: Slot["state"]) => {
      const found = ids.filter((id) => slots.get(id)!.state === state);
      return found[Math.floor(Math.random() * found.length)];
    };
    const check = (id: string, got: string, size: number) => {
      const slot = slots.get(id)!;
      if (slot.state !== "sealed") throw new SoakFailure(`read an object that should be gone`);
      if (size !== slot.size) throw new SoakFailure(`size ${size}, expected ${slot.size}`);
      if (got !== slot.digest) {
        throw new SoakFailure(
          `digest ${got} of generation ${slot.generation}, expected ${slot.digest}`,
        );
      }
      bytesChecked += size;
    };
    const content = (generation: number) => {
      const size = pickSize(config.maxSize);
      const offset = Math.floor(Math.random() * (config.maxSize - size + 1));
      return { head: stamp(generation), body: base.subarray(offset + 16, offset + size) };
    };

    /** Runs one operation; returns its kind. */
    const step = async (): Promise<string> => {
      // Abandoned creates whose lease has run out must be gone by now.
      for (const id of ids) {
        const slot = slots.get(id)!;
        if (slot.state !== "expiring" || performance.now() < slot.deadline) continue;
        if (await client.has(id)) {
          if (performance.now() < slot.deadline + EXPIRE_GRACE_MS) continue;
          throw new SoakFailure(`${id}: an unsealed object outlived its CREATE lease by 10 s`);
        }
        await slot.abort().catch((error) => {
          const code = codeOf(error);
          if (code !== ErrorCode.LEASE_EXPIRED && code !== ErrorCode.UNKNOWN_LEASE) throw error;
        });
        slots.set(id, { state: "absent", generation: slot.generation });
        return "expired";
      }
      let kind = pickKind();
      const needsSealed = ["get", "stream", "delete", "stat", "lease"].includes(kind);
      if (needsSealed && pick("sealed") === undefined) kind = "put";
      if ((kind === "put" || kind === "create" || kind === "expire") && !pick("absent")) {
        kind = pick("sealed") ? "delete" : "list";
      }
      const id = kind === "put" || kind === "create" || kind === "expire"
        ? pick("absent")!
        : pick("sealed") ?? ids[0]!;
      const slot = slots.get(id)!;
      try {
        switch (kind) {
          case "put":
          case "create": {
            const generation = slot.generation + 1;
            const { head, body } = content(generation);
            const size = head.length + body.length;
            const digest = digestOf(head, body);
            try {
              if (kind === "put") {
                const bytes = new Uint8Array(size);
                bytes.set(head);
                bytes.set(body, head.length);
                await client.put(bytes, { id, meta: { generation } });
              } else {
                await using writer = await client.create(size, { id, meta: { generation } });
                await writer.write(head);
                for (let at = 0; at < body.length; at += WRITE_CHUNK) {
                  await writer.write(body.subarray(at, at + WRITE_CHUNK));
                }
                await writer.seal();
              }
            } catch (error) {
              if (codeOf(error) !== ErrorCode.CAPACITY_EXCEEDED) throw error;
              refused++;
              slots.set(id, { state: "absent", generation });
              return kind;
            }
            bytesWritten += size;
            slots.set(id, { state: "sealed", generation, digest, size });
            return kind;
          }
          case "get": {
            // Now and then with a TTL on the READ lease.
            const options = Math.random() < 0.3 ? { ttl: 5_000 } : {};
            using handle = await client.get(id, options);
            check(id, digestOf(...handle.blobs), handle.size);
            return kind;
          }
          case "stream": {
            const handle = await client.get(id);
            let size = 0;
            const hash = createHash("sha256");
            for await (const chunk of handle.stream()) {
              hash.update(chunk);
              size += chunk.length;
            }
            check(id, hash.digest("hex"), size);
            return kind;
          }
          case "delete": {
            await client.delete(id);
            slots.set(id, { state: "absent", generation: slot.generation });
            // A read of what was just deleted must not find it.
            try {
              using handle = await client.get(id);
              throw new SoakFailure(`read ${handle.size} bytes of a deleted object`);
            } catch (error) {
              if (codeOf(error) !== ErrorCode.NOT_FOUND) throw error;
            }
            return kind;
          }
          case "stat": {
            const info = await client.stat(id);
            if (slot.state !== "sealed") throw new SoakFailure("stat of a missing object");
            if (info.state !== "SEALED" || info.size !== slot.size) {
              throw new SoakFailure(`stat says ${info.state} ${info.size}, expected ${slot.size}`);
            }
            return kind;
          }
          case "list": {
            const listed = new Map(
              (await client.list()).filter((info) =>
                info.id.startsWith(`${config.prefix}.${index}.`)
              )
                .map((info) => [info.id, info]),
            );
            for (const each of ids) {
              const expected = slots.get(each)!;
              const info = listed.get(each);
              if (expected.state === "sealed" && info?.size !== expected.size) {
                throw new SoakFailure(`list: ${each} is ${info?.size}, expected ${expected.size}`);
              }
              if (expected.state === "absent" && info !== undefined) {
                throw new SoakFailure(`list: ${each} is listed after its delete`);
              }
            }
            return kind;
          }
          case "lease": {
            const { lease } = await client.peer.acquire(id, Access.READ, { ttl: 2_000 });
            await client.peer.renew(lease.id, 2_000);
            await client.peer.release(lease.id);
            return kind;
          }
          case "expire": {
            const generation = slot.generation + 1;
            const { head, body } = content(generation);
            const writer = await client.create(head.length + body.length, {
              id,
              ttl: EXPIRE_TTL_MS,
            });
            // On a loaded machine the lease may end before the write: then it is gone already.
            await writer.write(head).catch((error) => {
              const code = codeOf(error);
              if (code !== ErrorCode.LEASE_EXPIRED && code !== ErrorCode.UNKNOWN_LEASE) throw error;
            });
            slots.set(id, {
              state: "expiring",
              generation,
              deadline: performance.now() + EXPIRE_TTL_MS,
              abort: () => writer.abort(),
            });
            return kind;
          }
          case "shared": {
            const shared = config.shared[Math.floor(Math.random() * config.shared.length)]!;
            using handle = await client.get(shared.id);
            const got = digestOf(...handle.blobs);
            if (got !== shared.digest) throw new SoakFailure(`shared ${shared.id} changed`);
            bytesChecked += handle.size;
            return kind;
          }
          case "reconnect": {
            await client.close();
            client = await open();
            return kind;
          }
        }
        throw new Error(`Unknown kind ${kind}`);
      } catch (error) {
        fail(kind, id, error);
        // A lost connection is counted once; the lane goes on with a new one.
        if (codeOf(error) === ErrorCode.CLOSED) client = await open();
        return "failed";
      }
    };

    try {
      while (performance.now() < end) {
        const kind = await step().catch((error) => {
          fail("check", "", error);
          return "failed";
        });
        if (kind !== "failed") ops[kind] = (ops[kind] ?? 0) + 1;
      }
      // Leave nothing behind: abandoned creates ended, sealed objects deleted.
      for (const id of ids) {
        const slot = slots.get(id)!;
        if (slot.state === "expiring") await slot.abort().catch(() => {});
        if (slot.state !== "absent") await client.delete(id).catch(() => {});
      }
    } finally {
      await client.close();
    }
  };

  await Promise.all(Array.from({ length: config.lanes }, (_, i) => lane(i)));
  return { ops, bytesChecked, bytesWritten, refused, failures, failureCount, internal };
}

if (import.meta.main) {
  const result = await main(JSON.parse(Deno.args[0]!));
  console.log(JSON.stringify(result));
}
