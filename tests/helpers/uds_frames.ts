/**
 * Whole frames of the Unix-socket protocol built in one call, for tests that
 * play a client or a daemon by hand; the library writes its frames in place.
 */
import {
  putFrameRoom,
  type PutRequest,
  textFrameRoom,
  writePutFrame,
  writeTextFrame,
} from "../../transport/uds/protocol.ts";

/** Builds a frame whose body is a string (an id, or JSON), encoded straight into the frame. */
export function encodeTextFrame(
  op: number,
  id: number,
  flags: number,
  text: string,
  fds = 0,
): Uint8Array {
  const room = new Uint8Array(textFrameRoom(text));
  return room.subarray(0, writeTextFrame(room, op, id, flags, text, fds));
}

/**
 * Builds a PUT frame: its body is the u32 length of the JSON fields, the
 * JSON, then the object's bytes, all written into one array.
 */
export function encodePutFrame(
  id: number,
  request: PutRequest,
  chunks: readonly Uint8Array[],
  size: number,
  flags = 0,
): Uint8Array {
  const fields = JSON.stringify(request);
  const room = new Uint8Array(putFrameRoom(fields, size));
  return room.subarray(0, writePutFrame(room, id, fields, chunks, size, 0, flags));
}
