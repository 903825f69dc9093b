// Run with PACKICE_NATIVE_LIB=none: the in-process API must work on plain memory.
import { connect } from "../../mod.ts";

await using first = await connect();
await using second = await connect("memory://fallback");
const id = await first.put("works without native");
using handle = await first.get(id);
await second.put("x", { id: "x" });
await second.delete("x");
console.log(JSON.stringify({
  text: new TextDecoder().decode(handle.bytes),
  deleted: !(await second.has("x")),
}));
