/**
 * Policy conditions: CEL expressions over `token`, `request` and `upstream`, parsed and
 * type-checked when a policy is written and planned once when it is compiled.
 */
import {
  type CelMap,
  type CelResult,
  CelScalar,
  celEnv,
  celMap,
  isCelError,
  mapType,
  objectType,
  parse,
  plan,
} from "@bufbuild/cel";
import { TimestampSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  CelCheckError,
  type CheckType,
  checkExpr,
  type RecordType,
  typeName,
} from "./cel-check.ts";
import type { EvaluationInput } from "./types.ts";

/** Longest condition accepted, in characters (bounds parse and check time on write). */
export const maxConditionLength = 4096;

const STRING = CelScalar.STRING;
const stringMap = mapType(STRING, STRING);

/** `token`: what policy knows of the calling proxy token. */
const tokenType: RecordType = {
  kind: "record",
  name: "token",
  fields: { id: STRING, subject: STRING, attributes: stringMap },
};

/** `request`: the HTTP request being decided on. */
const requestType: RecordType = {
  kind: "record",
  name: "request",
  fields: {
    method: STRING,
    path: STRING,
    client_address: STRING,
    headers: stringMap,
    time: objectType(TimestampSchema),
  },
};

/** `upstream`: the API the request is for. */
const upstreamType: RecordType = {
  kind: "record",
  name: "upstream",
  fields: { slug: STRING, origin: STRING },
};

/** The variables a condition may use, with their types. */
export const conditionVariables: Readonly<Record<string, CheckType>> = {
  token: tokenType,
  request: requestType,
  upstream: upstreamType,
};

/**
 * The evaluation environment. Variables are bound as plain objects (maps at run time); the
 * checker above knows their fields. The standard library only: every function a condition may
 * call is one the checker resolves against this environment's function table.
 */
const env = celEnv({
  variables: {
    token: mapType(STRING, CelScalar.DYN),
    request: mapType(STRING, CelScalar.DYN),
    upstream: mapType(STRING, CelScalar.DYN),
  },
});

/**
 * Bindings for one evaluation. Each variable becomes a CEL map the first time a condition
 * reads it, and is reused by every later condition of the same evaluation: building maps
 * for variables nobody reads would cost more than most conditions (see bench.ts).
 */
export class ConditionBindings {
  readonly #input: EvaluationInput;
  #token: CelMap | undefined;
  #request: CelMap | undefined;
  #upstream: CelMap | undefined;

  constructor(input: EvaluationInput) {
    this.#input = input;
  }

  /** `token`: id, subject, attributes. */
  get token(): CelMap {
    const t = this.#input.token;
    this.#token ??= celMap(
      new Map<string, unknown>([
        ["id", t.id],
        ["subject", t.subject],
        ["attributes", celMap(new Map(Object.entries(t.attributes)))],
      ]) as Map<string, never>,
    );
    return this.#token;
  }

  /** `request`: method, path, client_address, headers, time. */
  get request(): CelMap {
    const r = this.#input.request;
    this.#request ??= celMap(
      new Map<string, unknown>([
        ["method", r.method],
        ["path", r.path],
        ["client_address", r.clientAddress],
        ["headers", celMap(new Map(Object.entries(r.headers)))],
        ["time", timestampFromDate(r.time)],
      ]) as Map<string, never>,
    );
    return this.#request;
  }

  /** `upstream`: slug, origin. */
  get upstream(): CelMap {
    const u = this.#input.upstream;
    this.#upstream ??= celMap(
      new Map<string, string>([
        ["slug", u.slug],
        ["origin", u.origin],
      ]),
    );
    return this.#upstream;
  }
}

/** A planned condition: returns true, false, or an error (never throws). */
export type ConditionProgram = (bindings: ConditionBindings) => boolean | Error;

type Checked = { ok: true; parsed: ReturnType<typeof parse> } | { ok: false; problem: string };

/** Parses and type-checks a condition; the problem text is safe to show to the author. */
function parseAndCheck(source: string): Checked {
  if (source.length > maxConditionLength) {
    return { ok: false, problem: `is longer than ${maxConditionLength} characters` };
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(source);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    // The parser prefixes positions with "<input>:line:column:".
    return {
      ok: false,
      problem: `syntax error ${message.replace(/^<input>:(\d+):(\d+): /, "at $1:$2: ")}`,
    };
  }
  try {
    const result = checkExpr(env, conditionVariables, parsed, { literalPattern: patternProblem });
    if (!(result.kind === "scalar" && (result.scalar === "bool" || result.scalar === "dyn"))) {
      return { ok: false, problem: `must evaluate to bool, but evaluates to ${typeName(result)}` };
    }
  } catch (err) {
    if (err instanceof CelCheckError) return { ok: false, problem: `type error ${err.message}` };
    // A RangeError from a pathologically nested expression ends up here too.
    return { ok: false, problem: "could not be type-checked" };
  }
  return { ok: true, parsed };
}

/** A program that compiles a `matches()` pattern, to check constant patterns on write. */
let compilePattern: ((bindings: object) => CelResult) | undefined;

/** Why a regular expression (RE2 syntax, as `matches()` uses) does not compile, if it does not. */
function patternProblem(pattern: string): string | undefined {
  compilePattern ??= plan(env, parse('"".matches(pattern)')) as (bindings: object) => CelResult;
  const result = compilePattern({ pattern });
  return isCelError(result) ? `invalid regular expression ${JSON.stringify(pattern)}` : undefined;
}

/** Returns the problem with a condition (syntax or type), or undefined when it is valid. */
export function conditionProblem(source: string): string | undefined {
  const checked = parseAndCheck(source);
  return checked.ok ? undefined : checked.problem;
}

/**
 * Compiles a condition into a reusable program. Throws when the condition does not parse or
 * type-check. A dyn-typed condition (e.g. `token.attributes["x"] in dyn(...)`) that yields a
 * non-bool at run time is reported as an error, like any other run-time failure.
 */
export function compileCondition(source: string): ConditionProgram {
  const checked = parseAndCheck(source);
  if (!checked.ok) throw new Error(`condition ${checked.problem}`);
  const program = plan(env, checked.parsed) as (bindings: object) => CelResult;
  return (bindings) => {
    const result = program(bindings);
    if (typeof result === "boolean") return result;
    if (isCelError(result)) return result;
    return new Error(`condition evaluated to a non-bool value`);
  };
}
