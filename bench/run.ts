/**
 * Runs every `bench/*_bench.ts` script in turn, each in its own process.
 * Each script measures its baseline in the same run and prints one JSON line
 * per figure: `{"bench": name, ...figures, "ratio": x, "target": y}`.
 *
 * Usage: deno task bench [name-filter]
 */
const filter = Deno.args[0] ?? "";
const dir = new URL(".", import.meta.url);
const scripts = [...Deno.readDirSync(dir)]
  .map((entry) => entry.name)
  .filter((name) => name.endsWith("_bench.ts") && name.includes(filter))
  .sort();
let failed = 0;
for (const script of scripts) {
  console.error(`== ${script}`);
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", new URL(script, dir).pathname],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) {
    console.error(`${script} failed with exit code ${code}`);
    failed++;
  }
}
Deno.exit(failed === 0 ? 0 : 1);
