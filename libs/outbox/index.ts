export { enqueue } from "./enqueue.ts";
export { enqueueChange, resourceSubjectWord } from "./enqueue-change.ts";
export { createOutboxRelay } from "./relay.ts";
export type * from "./types.ts";
