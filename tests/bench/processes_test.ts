import process from "node:process";
import { cpuMs, installed, statCpuMs } from "../../bench/processes.ts";
import { machine, report } from "../../bench/stats.ts";
import { assert, assertEquals } from "../helpers/assert.ts";

Deno.test("machine() names the CPU, the cores and the load from /proc", () => {
  const { cpu, cores, load_at_start } = machine();
  const model = /^model name\s*:\s*(.+)$/m.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1];
  assertEquals(cpu, model?.trim() ?? "unknown");
  assertEquals(cores, navigator.hardwareConcurrency);
  assert(load_at_start >= 0, `load ${load_at_start}`);
});

Deno.test("report() prints what the bench ran on in each line", () => {
  const lines: string[] = [];
  const log = console.log;
  console.log = (line: string) => lines.push(line);
  try {
    report({ bench: "example", ops_per_s: 1234.5678 });
  } finally {
    console.log = log;
  }
  const line = JSON.parse(lines[0]!);
  assertEquals(line.bench, "example");
  assertEquals(line.ops_per_s, 1235);
  assertEquals(line.cpu, machine().cpu);
  assertEquals(typeof line.cores, "number");
  assertEquals(typeof line.load_at_start, "number");
});

Deno.test("cpuMs() agrees with the runtime's count of this process's CPU time", () => {
  const before = cpuMs("self");
  const usage = process.cpuUsage();
  const deadline = performance.now() + 5000;
  while (cpuMs("self") - before < 50 && performance.now() < deadline) { /* spin */ }
  const counted = cpuMs("self") - before;
  const used = process.cpuUsage(usage);
  assert(counted >= 50, `spinning shows as CPU time: ${counted} ms`);
  // /proc counts in ticks of 10 ms.
  assert(Math.abs(counted - (used.user + used.system) / 1000) <= 25, `${counted} ms`);
});

Deno.test("statCpuMs() reads own and waited-for children's time from a stat line", async () => {
  const shell = await new Deno.Command("sh", {
    args: ["-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done & wait; cat /proc/$$/stat"],
  }).output();
  const stat = new TextDecoder().decode(shell.stdout);
  assert(statCpuMs(stat, true) > 0, "the shell counts the CPU of the child it waited for");
  assertEquals(statCpuMs("1 (a b) S 0 0 0 0 0 0 0 0 0 0 3 4 5 6 0"), 70);
  assertEquals(statCpuMs("1 (a b) S 0 0 0 0 0 0 0 0 0 0 3 4 5 6 0", true), 110);
});

Deno.test("installed() tells a command on the PATH from a missing one", () => {
  assert(installed("sh", "-c true"));
  assert(!installed("packice-no-such-command"));
});
