import { assert, assertEquals, assertThrows } from "../../helpers/assert.ts";
import { ProtocolError } from "../../../core/errors.ts";
import {
  decodePut,
  decodeRead,
  decodeWrite,
  encodeFrame,
  encodeRead,
  encodeWrite,
  Flag,
  Frames,
  type Header,
  HEADER_SIZE,
  MAX_BODY,
  Op,
  peekHeader,
  PROTOCOL_VERSION,
  readHeader,
} from "../../../transport/uds/protocol.ts";
import { encodePutFrame, encodeTextFrame } from "../../helpers/uds_frames.ts";

Deno.test("encodeFrame() writes a header readHeader() reads back", () => {
  const frame = encodeFrame(Op.ACQUIRE, 0xdeadbeef, Flag.REPLY, new Uint8Array([1, 2, 3]), 2);
  assertEquals(frame.length, HEADER_SIZE + 3);
  assertEquals([...frame.subarray(0, 2)], [0x50, 0x4b]);
  const header = readHeader(frame, 0) as Header;
  assertEquals(header, {
    version: PROTOCOL_VERSION,
    op: Op.ACQUIRE,
    id: 0xdeadbeef,
    length: 3,
    flags: Flag.REPLY,
    fds: 2,
  });
});

Deno.test("encodeTextFrame() encodes UTF-8 bodies in place", () => {
  const frame = encodeTextFrame(Op.STAT, 7, 0, "ü-𝄞");
  const header = readHeader(frame, 0) as Header;
  assertEquals(header.length, 7);
  assertEquals(new TextDecoder().decode(frame.subarray(HEADER_SIZE)), "ü-𝄞");
});

Deno.test("readHeader() reads frames packed in one message", () => {
  const a = encodeTextFrame(Op.RELEASE, 1, Flag.ONE_WAY, "lease");
  const b = encodeTextFrame(Op.HAS, 2, 0, "object");
  const message = new Uint8Array([...a, ...b]);
  assertEquals((readHeader(message, 0) as Header).id, 1);
  assertEquals((readHeader(message, a.length) as Header).id, 2);
});

Deno.test("readHeader() describes malformed frames", () => {
  const frame = encodeTextFrame(Op.STAT, 1, 0, "abc");
  assertEquals(readHeader(frame.subarray(0, 10), 0), "truncated header: 10 bytes");
  assertEquals(
    readHeader(frame.subarray(0, HEADER_SIZE + 1), 0),
    "body of 3 bytes overruns the message",
  );
  const bad = frame.slice();
  bad[0] = 0;
  assertEquals(readHeader(bad, 0), "bad magic");
});

Deno.test("encodeFrame() refuses bodies over the limit", () => {
  assertThrows(() => encodeFrame(Op.WRITE, 1, 0, new Uint8Array(MAX_BODY + 1)), ProtocolError);
});

Deno.test("READ and WRITE bodies round-trip", () => {
  const read = { lease: "lease-1", blob: 3, offset: 2 ** 40, length: 4096 };
  assertEquals(decodeRead(encodeRead(read)), read);
  const write = { lease: "lease-2", blob: 0, offset: 12, bytes: new Uint8Array([9, 8, 7]) };
  const decoded = decodeWrite(encodeWrite(write))!;
  assertEquals(decoded, write);
  assertEquals(decodeRead(new Uint8Array(3)), undefined);
  const short = encodeWrite(write).subarray(0, 18);
  assert(decodeWrite(short) === undefined);
});

Deno.test("encodePutFrame() packs fields and bytes that decodePut() reads back", () => {
  const chunks = [new Uint8Array([1, 2]), new Uint8Array([3])];
  const frame = encodePutFrame(4, { id: "a", meta: { k: "v" } }, chunks, 3);
  const header = readHeader(frame, 0) as Header;
  assertEquals([header.op, header.id, header.length], [Op.PUT, 4, frame.length - HEADER_SIZE]);
  const decoded = decodePut(frame.subarray(HEADER_SIZE))!;
  assertEquals(decoded.request, { id: "a", meta: { k: "v" } });
  assertEquals(decoded.bytes, new Uint8Array([1, 2, 3]));
  assertEquals(decodePut(frame.subarray(HEADER_SIZE, HEADER_SIZE + 6)), undefined);
});

Deno.test("peekHeader() finds the request id of a cut or bad frame", () => {
  const frame = encodeTextFrame(Op.SEAL, 42, 0, "lease");
  assertEquals(peekHeader(frame.subarray(0, 8)), { op: Op.SEAL, id: 42 });
  assertEquals(peekHeader(frame.subarray(0, 7)), { op: 0, id: 0 });
  assertEquals(peekHeader(new TextEncoder().encode("GET / HTTP")), { op: 0, id: 0 });
});

Deno.test("Frames hands each frame its body and its fds, and stops on a bad frame", () => {
  const a = encodeFrame(Op.ACQUIRE, 1, 0, Uint8Array.of(1), 2);
  const b = encodeFrame(Op.STAT, 2, 0, Uint8Array.of(2, 3));
  const message = new Uint8Array([...a, ...b, 0xff, 0xff]);
  const frames = new Frames(message, [10, 11, 12]);
  const first = frames.next() as Header;
  assertEquals([first.id, [...frames.body], frames.fds], [1, [1], [10, 11]]);
  const second = frames.next() as Header;
  assertEquals([second.id, [...frames.body], frames.fds], [2, [2, 3], []]);
  assertEquals(typeof frames.next(), "string");
  assertEquals([...frames.rest()], [0xff, 0xff]);
  assertEquals(frames.takeRest(), [12]);
  assertEquals(frames.takeRest(), []);
  assertEquals(new Frames(a).next() !== undefined, true);
  const empty = new Frames(new Uint8Array(0));
  assertEquals(empty.next(), undefined);
});
