import { type Client, connect, NotFoundError } from "../../mod.ts";
import { getFile, putFile } from "../../integrations/mod.ts";
import { assertEquals, assertRejects } from "../helpers/assert.ts";
import { startHttp } from "../helpers/http_fixture.ts";
import { socketDir, spawnDaemon } from "../helpers/uds_daemon.ts";

async function fileSteps(t: Deno.TestContext, client: Client): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "packice-files-" });
  try {
    const bytes = new Uint8Array((9 << 20) + 3).map((_, i) => (i * 31) % 256);
    await Deno.writeFile(`${dir}/in.bin`, bytes);

    await t.step("putFile stores a file and getFile writes it back byte for byte", async () => {
      const id = await putFile(client, `${dir}/in.bin`, { meta: { name: "in.bin" } });
      assertEquals((await client.stat(id)).size, bytes.length);
      await Deno.writeTextFile(`${dir}/out.bin`, "old contents");
      assertEquals(await getFile(client, id, `${dir}/out.bin`), bytes.length);
      assertEquals(await Deno.readFile(`${dir}/out.bin`), bytes);
      await client.delete(id);
    });

    await t.step("an empty file", async () => {
      await Deno.writeFile(`${dir}/empty`, new Uint8Array());
      const id = await putFile(client, `${dir}/empty`);
      assertEquals(await getFile(client, id, `${dir}/empty.out`), 0);
      assertEquals((await Deno.readFile(`${dir}/empty.out`)).length, 0);
    });

    await t.step("getFile of a missing object leaves no file behind", async () => {
      await assertRejects(() => getFile(client, "missing", `${dir}/none`), NotFoundError);
      assertEquals(
        [...Deno.readDirSync(dir)].some((entry) => entry.name.startsWith("none")),
        false,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("putFile and getFile in process", async (t) => {
  await using client = await connect();
  await fileSteps(t, client);
});

Deno.test("putFile and getFile over a Unix socket daemon", async (t) => {
  const dir = await socketDir();
  try {
    await using daemon = await spawnDaemon(`${dir}/packice.sock`);
    await using client = await connect(daemon.path);
    await fileSteps(t, client);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("putFile and getFile over HTTP", async (t) => {
  await using http = startHttp();
  await using client = await connect(http.server.url);
  await fileSteps(t, client);
});

Deno.test("getFile writes into a pipe (or device) at the path, never replaces it; a link to one is refused", async () => {
  await using client = await connect();
  const dir = await Deno.makeTempDir({ prefix: "packice-files-" });
  try {
    // As `packice get -o /dev/null` run as root: the rename over it made /dev/null a file.
    const fifo = `${dir}/fifo`;
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    assertEquals(made.code, 0);
    const id = await client.put("through the pipe");
    // A reader of its own, to end by pid should the pipe be gone.
    const reader = new Deno.Command("cat", { args: [fifo], stdout: "piped" }).spawn();
    try {
      assertEquals(await getFile(client, id, fifo), 16);
      assertEquals((await Deno.lstat(fifo)).isFifo, true);
      assertEquals(new TextDecoder().decode((await reader.output()).stdout), "through the pipe");
    } finally {
      try {
        reader.kill();
      } catch {
        // It has exited.
      }
      await reader.status;
    }

    await Deno.symlink(fifo, `${dir}/link`);
    await assertRejects(() => getFile(client, id, `${dir}/link`), Deno.errors.AlreadyExists);
    assertEquals((await Deno.lstat(`${dir}/link`)).isSymlink, true);
    assertEquals((await Array.fromAsync(Deno.readDir(dir))).length, 2, "no temporary left");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
