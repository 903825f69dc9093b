/** Content records for directory tests: digests that name no real bytes, by one letter. */
import type { ContentRecord } from "../../p2p/directory.ts";

/** `sha256:` and 64 times `c`: a well-formed digest, told apart by its letter. */
export const fakeDigest = (c: string): string => `sha256:${c.repeat(64)}`;

/** A 12 MiB object `pushed` of three 4 MiB pieces, as the push tests announce it. */
export const pushedRecord: ContentRecord = {
  id: "pushed",
  size: 12 << 20,
  digest: fakeDigest("a"),
  pieceSize: 4 << 20,
  pieceDigests: [fakeDigest("b"), fakeDigest("c"), fakeDigest("d")],
};
