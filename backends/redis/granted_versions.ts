/** The last version of each object a grant returned, so that a grant need not send it again. */
import type { ObjectInfo } from "../../core/object.ts";

/** Objects whose last granted version is kept. */
const CACHED_OBJECTS = 4096;

/** An object as a grant last returned it. */
export interface GrantedVersion {
  readonly version: string;
  readonly info: ObjectInfo;
}

/** The last granted version of the most recently granted objects, by id. */
export class GrantedVersions extends Map<string, GrantedVersion> {
  /** Keeps `info` as version `version` of `objectId`, dropping the oldest past the bound. */
  remember(objectId: string, version: string, info: ObjectInfo): void {
    this.delete(objectId);
    this.set(objectId, { version, info });
    if (this.size > CACHED_OBJECTS) this.delete(this.keys().next().value!);
  }
}
