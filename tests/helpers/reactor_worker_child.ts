/**
 * Run by tests/native/reactor_teardown_test.ts: Workers whose reactors are
 * told of an always ready fd end, one terminated, one closing itself, while
 * this process goes on. Prints "survived" when it has.
 */
for (const end of ["terminate", "close"]) {
  const worker = new Worker(new URL("./reactor_worker.ts", import.meta.url), { type: "module" });
  await new Promise((told) => worker.onmessage = told);
  if (end === "terminate") worker.terminate();
  else worker.postMessage("close");
  await new Promise((later) => setTimeout(later, 500));
}
console.log("survived");
