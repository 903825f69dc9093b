/**
 * Runs every `bench/*_bench.ts` script in turn, each in its own process.
 * Each script measures its baseline in the same run and prints one JSON line
 * per figure: `{"bench": name, ...figures, "ratio": x, "target": y}`.
 *
 * Every line also says what it ran on: `cpu`, `cores`, `load_at_start`.
 *
 * Usage: deno task bench [name-filter]. A filter that names one script
 * (`redis` for `redis_bench.ts`, `vs_redis` for `vs_redis_bench.ts`) runs
 * that one; any other runs every script whose name holds it.
 */
const filter = Deno.args[0] ?? "";
const dir = new URL(".", import.meta.url);
const all = [...Deno.readDirSync(dir)]
  .map((entry) => entry.name)
  .filter((name) => name.endsWith("_bench.ts"))
  .sort();
const named = all.filter((name) => [`${filter}_bench.ts`, `${filter}.ts`, filter].includes(name));
const scripts = named.length > 0 ? named : all.filter((name) => name.includes(filter));
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
