import { type Duration, durationMs } from "@bufbuild/protobuf/wkt";

/** A protobuf Duration in milliseconds; 0 when unset or negative. */
export function ttlMs(duration: Duration | undefined): number {
  if (duration === undefined) return 0;
  return Math.max(0, durationMs(duration));
}
