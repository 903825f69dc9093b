import { Linux } from "../../native/ffi.ts";

/** The seals of a blob whose fd is handed out: its size never changes. */
export const SIZE_SEALS = Linux.F_SEAL_GROW | Linux.F_SEAL_SHRINK;

/** The seals of a sealed blob. */
export const FULL_SEALS = Linux.F_SEAL_WRITE | SIZE_SEALS | Linux.F_SEAL_SEAL;
