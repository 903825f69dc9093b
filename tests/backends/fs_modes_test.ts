/**
 * A data directory is its owner's alone, whatever the umask: directories
 * 0700, files 0600, for the fs peer and the tiered peer's disk tier; an
 * existing data directory with looser bits is tightened.
 */
import { assert, assertEquals } from "../helpers/assert.ts";
import { FileSystemPeer } from "../../mod.ts";

async function modesAfterPuts(impl: string, dir: string): Promise<Record<string, number>> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../helpers/fs_modes_child.ts", import.meta.url).pathname,
      impl,
      dir,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const errors = new TextDecoder().decode(stderr);
  assertEquals(code, 0, errors);
  return JSON.parse(new TextDecoder().decode(stdout));
}

for (const impl of ["fs", "tiered"]) {
  Deno.test(`the ${impl} peer makes directories 0700 and files 0600 under umask 000`, async () => {
    const parent = await Deno.makeTempDir({ prefix: "packice-modes-" });
    try {
      const dir = `${parent}/data`;
      const modes = await modesAfterPuts(impl, dir);
      const files = Object.keys(modes).filter((path) => /\/(\d+|meta\.json)$/.test(path));
      // The large and small objects' blobs and meta files; with fs, the unsealed object's blob too.
      assert(files.length >= (impl === "fs" ? 5 : 4), JSON.stringify(modes));
      assert(
        files.some((path) => path.startsWith(`${dir}/tmp/`)) === (impl === "fs"),
        JSON.stringify(modes),
      );
      for (const [path, mode] of Object.entries(modes)) {
        const expected = files.includes(path) ? 0o600 : 0o700;
        assertEquals(mode.toString(8), expected.toString(8), path);
      }
    } finally {
      await Deno.remove(parent, { recursive: true });
    }
  });
}

Deno.test("an existing data directory readable by others is made 0700", async () => {
  const dir = await Deno.makeTempDir({ prefix: "packice-modes-" });
  try {
    await Deno.mkdir(`${dir}/objects`, { mode: 0o755 });
    await Deno.chmod(dir, 0o755);
    await Deno.chmod(`${dir}/objects`, 0o775);
    await (await FileSystemPeer.open({ dir })).close();
    assertEquals(((await Deno.stat(dir)).mode! & 0o777).toString(8), "700");
    assertEquals(((await Deno.stat(`${dir}/objects`)).mode! & 0o777).toString(8), "700");
    assertEquals(((await Deno.stat(`${dir}/tmp`)).mode! & 0o777).toString(8), "700");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
