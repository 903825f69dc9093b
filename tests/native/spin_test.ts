/** When waits on the JS thread spin before they sleep (transport/uds/spin.ts). */
import { SpinPolicy } from "../../native/spin.ts";
import { assert, assertEquals } from "../helpers/assert.ts";

Deno.test("waits spin while answers come within the spin", () => {
  const policy = new SpinPolicy();
  for (let i = 0; i < 100; i++) {
    const spin = policy.next();
    assert(spin > 0, `wait ${i} did not spin`);
    policy.record(spin, true, spin / 2);
  }
});

Deno.test("spins that find nothing stop spinning, but one wait in 64 tries again", () => {
  const policy = new SpinPolicy();
  const spins: number[] = [];
  for (let i = 0; i < 200; i++) {
    const spin = policy.next();
    spins.push(spin);
    // Answers come only after the spin, as from a process that needs this CPU.
    policy.record(spin, true, spin * 3);
  }
  const spinning = spins.map((spin) => spin > 0);
  assertEquals(spinning.slice(0, 2), [true, true]);
  assertEquals(spinning.slice(2, 65).filter(Boolean).length, 0);
  const probes = spinning.slice(2).filter(Boolean).length;
  assertEquals(probes, 3);
});

Deno.test("a probe that pays resumes spinning", () => {
  const policy = new SpinPolicy();
  for (let i = 0; i < 10; i++) policy.record(policy.next(), false, 0);
  let spin = 0;
  for (let i = 0; i < 64 && spin === 0; i++) spin = policy.next();
  assert(spin > 0, "no probe within 64 waits");
  policy.record(spin, true, 1000);
  assert(policy.next() > 0, "a paying probe did not resume spinning");
});

Deno.test("spins that find the answer only after losing the CPU stop spinning", () => {
  const policy = new SpinPolicy();
  const spins: number[] = [];
  for (let i = 0; i < 70; i++) {
    const spin = policy.next();
    spins.push(spin);
    // The other process ran on this CPU while this one spun: the answer was
    // there when the spin got its CPU back, well within the spin.
    policy.record(spin, true, spin / 2, true);
  }
  assertEquals(spins.slice(2, 65).filter((spin) => spin > 0).length, 0);
});
