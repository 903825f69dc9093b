/**
 * Property-based fuzzing of the Unix-socket frames of a real daemon:
 * messages of arbitrary bytes, valid headers with arbitrary bodies (JSON of
 * any shape, binary records with any field), truncated frames, headers that
 * lie about their length, unknown operations, versions and flags, several
 * frames per message, and memfds or other fds attached or not. A case fails
 * on any INTERNAL reply, a reply that cannot be read, a request never
 * answered, or the daemon's death; after each case (its connection closed)
 * every lease must be gone, no object left but sealed ones it may have made,
 * and the seeds unchanged. See `budget.ts` for budgets and replay.
 */
import { assert } from "../helpers/assert.ts";
import { RawConnection } from "../helpers/uds_raw.ts";
import { Linux } from "../../native/ffi.ts";
import { decodeOpenReply } from "../../transport/uds/open_frame.ts";
import {
  decodeJson,
  Flag,
  HEADER_SIZE,
  Op,
  PROTOCOL_VERSION,
  writeHeader,
} from "../../transport/uds/protocol.ts";
import { writeUint32 } from "../../core/little_endian.ts";
import { fc, fuzz } from "./budget.ts";
import { FUZZ_IMPLS, type FuzzDaemon, SEED_IDS, startFuzzDaemon } from "./fuzz_daemon.ts";
import { acquireFields, anyId, oddId, putFields, safeId, ttl, wild } from "./values.ts";

/** A lease a case was granted earlier (by index), or a string that is none. */
type LeaseRef = { known: number } | { text: string };

/** A frame body, by what it holds. */
type Body =
  | { kind: "bytes"; bytes: Uint8Array }
  | { kind: "text"; text: string }
  | { kind: "json"; value: unknown }
  | { kind: "lease"; lease: LeaseRef }
  | { kind: "renew"; lease: LeaseRef; ttl: unknown }
  | { kind: "io"; lease: LeaseRef; blob: number; offset: number; length: number; data: Uint8Array }
  | { kind: "put"; fields: unknown; bytes: Uint8Array; lie: number | undefined }
  | { kind: "open"; known: number; flags: number; ttl: number; id: string };

/** A fd attached to a message: a memfd of some size, sealable or not, or a socket. */
type Fd = { memfd: number; sealable: boolean } | "socket";

interface Frame {
  readonly op: number;
  readonly id: number;
  readonly flags: number;
  readonly version: number;
  readonly body: Body;
  /** What the header says about fds, when not the fds attached for this frame. */
  readonly declaredFds: number | undefined;
  /** A length field that lies, replacing the body's. */
  readonly lengthLie: number | undefined;
}

interface Message {
  readonly frames: readonly Frame[];
  readonly fds: readonly Fd[];
  /** Bytes of the message to send, when cut short. */
  readonly cut: number | undefined;
  /** Arbitrary bytes sent in place of the frames. */
  readonly raw: Uint8Array | undefined;
}

const leaseRef: fc.Arbitrary<LeaseRef> = fc.oneof(
  { weight: 4, arbitrary: fc.nat(7).map((known) => ({ known })) },
  { weight: 1, arbitrary: oddId.map((text) => ({ text })) },
  // Of the form of leases granted in C (`n` + 8 hex + `-` + 14 hex), naming none.
  {
    weight: 1,
    arbitrary: fc.constantFrom("n00000000-00000000000001", "nffffffff-ffffffffffffff")
      .map((text) => ({ text })),
  },
);

const f64 = fc.oneof(
  fc.constantFrom(0, 1, 4095, -1, 0.5, 2 ** 53, 1e300, Number.NaN, Infinity, -0),
  fc.nat(1 << 16),
);

/** A body that fits the operation, mostly. */
function bodyFor(op: number): fc.Arbitrary<Body> {
  const anyBody: fc.Arbitrary<Body> = fc.oneof(
    fc.uint8Array({ maxLength: 64 }).map((bytes) => ({ kind: "bytes" as const, bytes })),
    wild.map((value) => ({ kind: "json" as const, value })),
    oddId.map((text) => ({ kind: "text" as const, text })),
  );
  const fitting: Record<number, fc.Arbitrary<Body>> = {
    [Op.ACQUIRE]: acquireFields("id").map((value) => ({ kind: "json" as const, value })),
    [Op.SEAL]: leaseRef.map((lease) => ({ kind: "lease" as const, lease })),
    [Op.DISCARD]: leaseRef.map((lease) => ({ kind: "lease" as const, lease })),
    [Op.RELEASE]: leaseRef.map((lease) => ({ kind: "lease" as const, lease })),
    [Op.RENEW]: fc.record({ lease: leaseRef, ttl: fc.option(ttl, { nil: undefined }) })
      .map(({ lease, ttl }) => ({ kind: "renew" as const, lease, ttl })),
    [Op.STAT]: anyId.map((text) => ({ kind: "text" as const, text })),
    [Op.HAS]: anyId.map((text) => ({ kind: "text" as const, text })),
    [Op.DELETE]: safeId.map((text) => ({ kind: "text" as const, text })),
    [Op.READ]: fc.record({
      lease: leaseRef,
      blob: fc.oneof(fc.constantFrom(0, 1, 0xffff_ffff), fc.nat(4)),
      offset: f64,
      length: fc.oneof(fc.nat(5000), fc.constantFrom(0, 131072, 131073, 0xffff_ffff)),
      data: fc.constant(new Uint8Array()),
    }).map((fields) => ({ kind: "io" as const, ...fields })),
    [Op.WRITE]: fc.record({
      lease: leaseRef,
      blob: fc.oneof(fc.constantFrom(0, 1, 0xffff_ffff), fc.nat(4)),
      offset: f64,
      length: fc.constantFrom(0, 3, 0xffff_ffff),
      data: fc.uint8Array({ maxLength: 5000 }),
    }).map((fields) => ({ kind: "io" as const, ...fields })),
    [Op.PUT]: fc.record({
      fields: fc.oneof({ weight: 5, arbitrary: putFields }, { weight: 1, arbitrary: wild }),
      bytes: fc.uint8Array({ maxLength: 8192 }),
      lie: fc.option(fc.constantFrom(0, 1, 3, 0xffff_ffff), { nil: undefined, freq: 4 }),
    }).map((fields) => ({ kind: "put" as const, ...fields })),
    [Op.OPEN]: fc.record({
      known: fc.oneof(fc.constantFrom(0, 1, 2, 0xffff_ffff), fc.nat()),
      flags: fc.constantFrom(0, 0, 2, 1, 255),
      ttl: f64,
      id: anyId,
    }).map((fields) => ({ kind: "open" as const, ...fields })),
  };
  const fit = fitting[op];
  return fit === undefined ? anyBody : fc.oneof({ weight: 5, arbitrary: fit }, anyBody);
}

const op = fc.oneof(
  { weight: 20, arbitrary: fc.integer({ min: Op.ACQUIRE, max: Op.OPEN }) },
  { weight: 1, arbitrary: fc.constantFrom(0, 14, Op.DELETE, 99, 255) },
);

const frame: fc.Arbitrary<Frame> = op.chain((op) =>
  fc.record({
    op: fc.constant(op),
    id: fc.nat(0x7fff_ffff),
    flags: fc.oneof(
      { weight: 12, arbitrary: fc.constant(0) },
      { weight: 2, arbitrary: fc.constant(Flag.ONE_WAY) },
      { weight: 1, arbitrary: fc.nat(255) },
    ),
    version: fc.oneof(
      { weight: 20, arbitrary: fc.constant(PROTOCOL_VERSION) },
      { weight: 1, arbitrary: fc.nat(255) },
    ),
    body: bodyFor(op),
    declaredFds: fc.option(fc.constantFrom(0, 1, 2, 255), { nil: undefined, freq: 12 }),
    lengthLie: fc.option(fc.constantFrom(0, 1, 15, 0xffff_ffff, 1 << 20), {
      nil: undefined,
      freq: 20,
    }),
  })
);

const fd: fc.Arbitrary<Fd> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      memfd: fc.constantFrom(0, 1, 100, 4096, 1 << 20),
      sealable: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.constant("socket" as const) },
);

/** An ACQUIRE CREATE that hands over memfds of its blobs' sizes, as a writing client does. */
const adoption: fc.Arbitrary<Message> = fc.record({
  size: fc.constantFrom(0, 1, 100, 4096, 1 << 20),
  blobs: fc.integer({ min: 1, max: 2 }),
  sealable: fc.boolean(),
  id: fc.option(fc.constantFrom("fz-a", "fz-b"), { nil: undefined }),
  requestId: fc.nat(0x7fff_ffff),
}).map(({ size, blobs, sealable, id, requestId }) => ({
  frames: [{
    op: Op.ACQUIRE,
    id: requestId,
    flags: 0,
    version: PROTOCOL_VERSION,
    body: {
      kind: "json" as const,
      value: { access: "CREATE", size: blobs === 1 ? size : new Array(blobs).fill(size), id },
    },
    declaredFds: undefined,
    lengthLie: undefined,
  }],
  fds: new Array(blobs).fill({ memfd: size, sealable }),
  cut: undefined,
  raw: undefined,
}));

const message: fc.Arbitrary<Message> = fc.oneof(
  { weight: 2, arbitrary: adoption },
  {
    weight: 12,
    arbitrary: fc.record({
      frames: fc.array(frame, { minLength: 1, maxLength: 3 }),
      fds: fc.oneof(
        { weight: 8, arbitrary: fc.constant([]) },
        { weight: 1, arbitrary: fc.array(fd, { minLength: 1, maxLength: 3 }) },
      ),
      cut: fc.option(fc.nat(200), { nil: undefined, freq: 15 }),
      raw: fc.constant(undefined),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.uint8Array({ minLength: 1, maxLength: 100 }).map((raw) => ({
      frames: [],
      fds: [],
      cut: undefined,
      raw,
    })),
  },
);

/** What a case learned: the leases it was granted, and the requests still to be answered. */
interface Run {
  readonly leases: string[];
  /** By request id, how many answers are due: one per frame the daemon could read. */
  readonly due: Map<number, number>;
}

/**
 * The requests of a message that must each get one answer: all of them,
 * error or not, unless the framing is broken (one answer for the message)
 * or the frame wants none.
 */
function dueOf(message: Message): number[] {
  if (message.raw !== undefined || message.cut !== undefined) return [];
  if (message.frames.some((frame) => frame.lengthLie !== undefined)) return [];
  return message.frames.filter((frame) => !(frame.flags & Flag.ONE_WAY)).map((frame) => frame.id);
}

const encoder = new TextEncoder();

function leaseOf(run: Run, ref: LeaseRef): string {
  if ("text" in ref) return ref.text;
  return run.leases[ref.known % Math.max(run.leases.length, 1)] ??
    "00000000-0000-4000-8000-000000000000";
}

function bodyBytes(run: Run, body: Body): Uint8Array {
  switch (body.kind) {
    case "bytes":
      return body.bytes;
    case "text":
      return encoder.encode(body.text);
    case "json":
      return encoder.encode(JSON.stringify(body.value) ?? "");
    case "lease":
      return encoder.encode(leaseOf(run, body.lease));
    case "renew":
      return encoder.encode(JSON.stringify({ lease: leaseOf(run, body.lease), ttl: body.ttl }));
    case "io": {
      const lease = encoder.encode(leaseOf(run, body.lease));
      const bytes = new Uint8Array(16 + lease.length + body.data.length);
      const view = new DataView(bytes.buffer);
      view.setUint32(0, body.blob, true);
      view.setFloat64(4, body.offset, true);
      // READ: the length; WRITE: the lease id's length, or a lie.
      view.setUint32(12, body.data.length === 0 ? body.length : lease.length, true);
      bytes.set(lease, 16);
      bytes.set(body.data, 16 + lease.length);
      return bytes;
    }
    case "put": {
      const fields = encoder.encode(JSON.stringify(body.fields) ?? "");
      const bytes = new Uint8Array(4 + fields.length + body.bytes.length);
      writeUint32(bytes, 0, body.lie ?? fields.length);
      bytes.set(fields, 4);
      bytes.set(body.bytes, 4 + fields.length);
      return bytes;
    }
    case "open": {
      const id = encoder.encode(body.id);
      const bytes = new Uint8Array(13 + id.length);
      writeUint32(bytes, 0, body.known);
      bytes[4] = body.flags;
      new DataView(bytes.buffer).setFloat64(5, body.ttl, true);
      bytes.set(id, 13);
      return bytes;
    }
  }
}

/** The bytes of a message, and how many fds each frame declares. */
function messageBytes(run: Run, message: Message): Uint8Array {
  if (message.raw !== undefined) return message.raw;
  const parts: Uint8Array[] = [];
  // Fds go with the first frame that declares none otherwise.
  let fdsLeft = message.fds.length;
  for (const frame of message.frames) {
    const body = bodyBytes(run, frame.body);
    const bytes = new Uint8Array(HEADER_SIZE + body.length);
    const fds = frame.declaredFds ?? fdsLeft;
    fdsLeft = 0;
    writeHeader(bytes, frame.op, frame.id, frame.flags, Math.min(body.length, 1 << 20), fds);
    bytes[2] = frame.version;
    if (frame.lengthLie !== undefined) writeUint32(bytes, 8, frame.lengthLie);
    bytes.set(body, HEADER_SIZE);
    parts.push(bytes);
  }
  const total = parts.reduce((sum, part) => sum + part.length, 0);
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return message.cut === undefined ? bytes : bytes.subarray(0, Math.min(message.cut, total));
}

/** Makes the fds of a message in this process; the caller closes them after sending. */
function openFds(raw: RawConnection, fds: readonly Fd[]): number[] {
  const { symbols } = raw.native;
  return fds.map((fd) => {
    if (fd === "socket") return symbols.pk_dup(raw.fd);
    const memfd = symbols.pk_memfd_create(
      encoder.encode("fuzz\0"),
      fd.sealable ? Linux.MFD_ALLOW_SEALING : 0,
    );
    assert(memfd >= 0, `memfd_create: ${memfd}`);
    symbols.pk_ftruncate(memfd, BigInt(fd.memfd));
    return memfd;
  });
}

/** The request ids of sentinels: above every id a fuzzed frame uses. */
const SENTINEL = 0xf000_0000;

/**
 * Reads replies until the sentinel `id` is answered, checking each: no
 * INTERNAL, and learning leases from ACQUIRE and OPEN replies.
 */
async function readUntil(
  raw: RawConnection,
  run: Run,
  done: () => boolean,
  what: string,
): Promise<void> {
  while (!done()) {
    const reply = await raw.receive(10_000);
    assert(
      reply !== undefined,
      `${what}: the daemon did not answer (or hung up); unanswered: ${[...run.due.keys()]}`,
    );
    for (const fd of reply.fds) raw.native.symbols.pk_close(fd);
    for (const { header, body } of reply.frames) {
      assert(header.flags & Flag.REPLY, `${what}: a frame that is not a reply`);
      if (header.flags & Flag.ERROR) {
        const error = decodeJson(body) as { code?: unknown; message?: unknown };
        assert(typeof error.code === "string" && typeof error.message === "string", what);
        assert(error.code !== "INTERNAL", `${what}: INTERNAL: ${error.message}`);
      } else if (header.op === Op.ACQUIRE) {
        const lease = (decodeJson(body) as { lease?: { id?: unknown } }).lease?.id;
        assert(typeof lease === "string", `${what}: an ACQUIRE reply without a lease`);
        run.leases.push(lease);
      } else if (header.op === Op.OPEN && header.id < SENTINEL) {
        const open = decodeOpenReply(body);
        assert(open !== undefined, `${what}: a malformed OPEN reply`);
        run.leases.push(open.leaseId);
      }
      const due = run.due.get(header.id);
      if (due !== undefined && !(header.flags & Flag.MORE)) {
        if (due === 1) run.due.delete(header.id);
        else run.due.set(header.id, due - 1);
      }
    }
  }
}

async function runCase(daemon: FuzzDaemon, messages: readonly Message[]): Promise<number> {
  const run: Run = { leases: [], due: new Map() };
  let mayHaveMade = 0;
  using raw = new RawConnection(daemon.socket);
  for (const [index, message] of messages.entries()) {
    for (const frame of message.frames) {
      if (frame.op === Op.PUT || frame.op === Op.SEAL) mayHaveMade++;
    }
    for (const id of dueOf(message)) run.due.set(id, (run.due.get(id) ?? 0) + 1);
    const bytes = messageBytes(run, message);
    const fds = openFds(raw, message.fds);
    try {
      raw.sendRaw(bytes, fds);
    } finally {
      for (const fd of fds) raw.native.symbols.pk_close(fd);
    }
    if (bytes.length === 0) {
      // A message of no bytes reads as a hang-up: the daemon ends the connection.
      assert(
        await raw.closedByServer(),
        "the daemon keeps a connection that sent an empty message",
      );
      return mayHaveMade;
    }
    const sentinel = SENTINEL + index;
    run.due.set(sentinel, 1);
    raw.send(Op.HAS, sentinel, SEED_IDS[0]);
    await readUntil(raw, run, () => !run.due.has(sentinel), `message ${index}`);
  }
  // Every request is answered, the slow ones too.
  await readUntil(raw, run, () => run.due.size === 0, "the last answers");
  return mayHaveMade;
}

// A daemon alone answers gets of objects read before in C (transport/uds/fast_opens.ts),
// a cluster's in JS: both are fuzzed, each with half the cases.
for (const [impl, alone] of FUZZ_IMPLS.flatMap((impl) => [[impl, false], [impl, true]] as const)) {
  const name = `fuzz (${impl}${
    alone ? ", alone: gets answered in C" : ""
  }): the Unix socket answers every frame without INTERNAL and loses nothing`;
  Deno.test(name, async () => {
    await using daemon = await startFuzzDaemon(impl, false, alone);
    const property = fc.asyncProperty(
      fc.array(message, { minLength: 1, maxLength: 8 }),
      async (messages) => {
        let mayHaveMade: number;
        try {
          mayHaveMade = await runCase(daemon, messages);
        } catch (error) {
          await daemon.reset();
          throw error;
        }
        await daemon.settle(mayHaveMade);
      },
    );
    await fuzz(name, property, 125);
    if (alone && impl === "mem") {
      // The seeds are read after every case: their gets in later cases were answered in C.
      const figures = await daemon.client.metrics();
      assert(figures.uds_native_open_total! > 0, "no OPEN was answered in C");
    }
  });
}
