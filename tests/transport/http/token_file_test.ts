import { assert, assertEquals } from "../../helpers/assert.ts";
import { randomToken } from "../../../transport/http/token_file.ts";

Deno.test("randomToken() makes distinct tokens that a command line takes as values", () => {
  const tokens = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const token = randomToken();
    // A token that starts with a dash reads as an option: `packice ls --token -x…`.
    assert(/^[0-9a-f]{64}$/.test(token), token);
    tokens.add(token);
  }
  assertEquals(tokens.size, 2000);
});
