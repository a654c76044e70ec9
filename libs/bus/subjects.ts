import { type StreamKey, streams } from "./types.ts";

/** Namespaces go into stream names and subject tokens, so only these characters are safe. */
const namespacePattern = /^[A-Za-z0-9_-]{1,32}$/;

/** Maps canonical subjects and stream names to one installation's namespace and back. */
export interface SubjectMapper {
  /** `latchkey.audit.acme.x` → `ns.latchkey.audit.acme.x` (unchanged without namespace). */
  toWire(subject: string): string;
  /** The reverse of toWire; undefined for a subject outside the namespace. */
  fromWire(subject: string): string | undefined;
  /** `LATCHKEY_AUDIT` → `LATCHKEY_AUDIT_NS`. */
  streamName(stream: StreamKey): string;
  /** The stream's subjects as stored on the server. */
  streamSubjects(stream: StreamKey): string[];
}

/** Builds the mapper for `namespace` (empty or undefined: the canonical names). */
export function createSubjectMapper(namespace?: string): SubjectMapper {
  if (!namespace) {
    return {
      toWire: (subject) => subject,
      fromWire: (subject) => subject,
      streamName: (stream) => streams[stream].name,
      streamSubjects: (stream) => [...streams[stream].subjects],
    };
  }
  if (!namespacePattern.test(namespace)) {
    throw new Error(`invalid bus namespace ${JSON.stringify(namespace)}: use [A-Za-z0-9_-]`);
  }
  const prefix = `${namespace}.`;
  return {
    toWire: (subject) => prefix + subject,
    fromWire: (subject) => (subject.startsWith(prefix) ? subject.slice(prefix.length) : undefined),
    streamName: (stream) => `${streams[stream].name}_${namespace.toUpperCase()}`,
    streamSubjects: (stream) => streams[stream].subjects.map((subject) => prefix + subject),
  };
}

/**
 * Whether `subject` matches the NATS pattern: `*` matches exactly one token, `>` (last
 * token only) one or more. Used by the memory bus to behave like the server.
 */
export function subjectMatches(pattern: string, subject: string): boolean {
  const want = pattern.split(".");
  const have = subject.split(".");
  for (let i = 0; i < want.length; i++) {
    const token = want[i];
    if (token === ">") return i === want.length - 1 && have.length > i;
    if (i >= have.length) return false;
    if (token !== "*" && token !== have[i]) return false;
  }
  return want.length === have.length;
}

/** The stream that captures `subject`, like the server's subject-to-stream routing. */
export function streamOf(subject: string): StreamKey | undefined {
  for (const key of Object.keys(streams) as StreamKey[]) {
    if (streams[key].subjects.some((pattern) => subjectMatches(pattern, subject))) return key;
  }
  return undefined;
}

/**
 * Rejects subjects NATS would refuse or misroute: empty tokens, whitespace, and wildcards
 * (a publish subject must be literal).
 */
export function assertPublishSubject(subject: string): void {
  if (!/^[^\s.*>]+(\.[^\s.*>]+)*$/.test(subject)) {
    throw new Error(`invalid subject ${JSON.stringify(subject)}`);
  }
}

/** Redelivery delay after the n-th failed delivery: doubling from `baseMs`, capped at 30 s. */
export function redeliveryDelay(baseMs: number, deliveryCount: number): number {
  return Math.min(baseMs * 2 ** Math.max(0, Math.min(deliveryCount - 1, 16)), 30_000);
}
