/** Run beside tests/helpers/reactor_left_child.ts: keeps the process running after it ends. */
Deno.test("a module outlasts the other", async () => {
  await new Promise((later) => setTimeout(later, 1500));
});
