/**
 * The embedded object directory: entries kept by the members themselves,
 * each on the two live members of highest rendezvous weight for its id.
 *
 * @module
 */
export {
  EmbeddedDirectory,
  type EmbeddedDirectoryOptions,
  type EmbeddedDirectoryStats,
} from "./embedded.ts";
export { hash53, owners } from "./rendezvous.ts";
