/**
 * A client that pipelines READs of an object on a daemon without memfds (the
 * file peer) is not disconnected while it is busy: the daemon starts only as
 * many READs as their replies fit in its send queue, and the rest wait until
 * the client reads again. (Found by the soak: a client reading a 64 MiB
 * object from `--impl fs` while hashing another was cut off with "send queue
 * over 8388608 bytes".)
 */
import { connect } from "../../../mod.ts";
import { CHUNK, encodeRead, Flag, Op } from "../../../transport/uds/protocol.ts";
import { assert, assertEquals } from "../../helpers/assert.ts";
import { RawConnection } from "../../helpers/uds_raw.ts";
import { spawnDaemon, testInSocketDir } from "../../helpers/uds_daemon.ts";

const MiB = 2 ** 20;
const SIZE = 16 * MiB;

testInSocketDir(
  "a client reading 16 MiB in pipelined READs, late, is not disconnected",
  async (dir) => {
    await using daemon = await spawnDaemon(`${dir}/packice.sock`, [
      "--impl",
      "fs",
      "--data-dir",
      `${dir}/data`,
    ]);
    const bytes = new Uint8Array(SIZE).map((_, i) => (i * 7 + (i >> 17)) & 255);
    {
      await using client = await connect(daemon.path);
      await client.put(bytes, { id: "big" });
    }
    using raw = new RawConnection(daemon.path);
    raw.send(Op.ACQUIRE, 1, JSON.stringify({ id: "big", access: "READ" }));
    const acquired = await raw.receive();
    const reply = acquired?.frames[0];
    assert(reply !== undefined && !(reply.header.flags & Flag.ERROR), "the READ lease");
    const lease: string = JSON.parse(new TextDecoder().decode(reply.body)).lease.id;
    for (const fd of acquired!.fds) raw.native.symbols.pk_close(fd);

    // Every chunk asked for at once, then nothing read for a while, as a busy client does.
    const chunks = SIZE / CHUNK;
    for (let i = 0; i < chunks; i++) {
      assert(
        raw.send(
          Op.READ,
          100 + i,
          encodeRead({ lease, blob: 0, offset: i * CHUNK, length: CHUNK }),
        ) > 0,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));

    const got = new Uint8Array(SIZE);
    for (let received = 0; received < chunks;) {
      const message = await raw.receive();
      assert(
        message !== undefined,
        `disconnected after ${received} of ${chunks} replies: ${daemon.stderr()}`,
      );
      for (const frame of message.frames) {
        assert(!(frame.header.flags & Flag.ERROR), new TextDecoder().decode(frame.body));
        got.set(frame.body, (frame.header.id - 100) * CHUNK);
        received++;
      }
    }
    assertEquals(got, bytes);
    assert(!daemon.stderr().includes("Disconnected"), daemon.stderr());
  },
);
