/**
 * A static type checker for policy conditions.
 *
 * `@bufbuild/cel` 0.6.1 parses and evaluates CEL but its checker only handles constants and
 * identifiers (it is not exported either), so conditions are checked here, on the parsed AST,
 * against the overloads the evaluator itself declares (`celEnv().funcs`): whatever passes the
 * checker has an implementation at run time. The few operators the evaluator implements
 * outside its function table (`&&`, `||`, `?:`, indexing, `in`, `has()`, macros) get their
 * typing rules here, following the CEL language definition
 * (https://github.com/google/cel-spec/blob/master/doc/langdef.md).
 *
 * Deliberately strict where a policy author benefits: `request.method == 1` is rejected
 * (comparing a string with an int is always false at run time, so it is a bug), unknown
 * fields of `token`, `request` and `upstream` are rejected, and the whole condition must be a
 * bool.
 */
import { type CelEnv, CelScalar, type CelType, listType, mapType, type parse } from "@bufbuild/cel";

type ParsedExpr = ReturnType<typeof parse>;
type Expr = ParsedExpr["expr"];

/**
 * A record type: an object with a fixed set of fields, used for the policy variables
 * (`token`, `request`, `upstream`). The evaluator sees them as maps; the checker knows their
 * fields so that a typo such as `request.methd` fails when the policy is written.
 */
export interface RecordType {
  readonly kind: "record";
  readonly name: string;
  readonly fields: Readonly<Record<string, CheckType>>;
}

/** A type as the checker sees it: a CEL type or a record. */
export type CheckType = CelType | RecordType;

/** Extra checks on top of typing. */
export interface CheckOptions {
  /**
   * Called with each constant pattern passed to `matches()`; returns a problem (e.g. the
   * pattern does not compile) to report it at write time instead of failing every
   * evaluation.
   */
  literalPattern?: (pattern: string) => string | undefined;
}

/** A type error with the 1-based column of the sub-expression that caused it. */
export class CelCheckError extends Error {
  readonly column: number | undefined;
  constructor(message: string, column: number | undefined) {
    super(column === undefined ? message : `at column ${column}: ${message}`);
    this.name = "CelCheckError";
    this.column = column;
  }
}

const DYN = CelScalar.DYN;
const BOOL = CelScalar.BOOL;

/** Readable operator names for messages: `_==_` → `==`. */
const operatorNames: Record<string, string> = {
  "_==_": "==",
  "_!=_": "!=",
  "_<_": "<",
  "_<=_": "<=",
  "_>_": ">",
  "_>=_": ">=",
  "_+_": "+",
  "_-_": "-",
  "_*_": "*",
  "_/_": "/",
  "_%_": "%",
  "-_": "-",
  "!_": "!",
  "_&&_": "&&",
  "_||_": "||",
  "_?_:_": "?:",
  "_[_]": "[]",
  "@in": "in",
};

/** The display name of a type, as CEL writes it. */
export function typeName(t: CheckType): string {
  if (t.kind === "record") return t.name;
  if (t.kind === "list") return `list(${typeName(t.element)})`;
  if (t.kind === "map") return `map(${typeName(t.key)}, ${typeName(t.value)})`;
  if (t.kind === "object") {
    if (t.name === "google.protobuf.Timestamp") return "timestamp";
    if (t.name === "google.protobuf.Duration") return "duration";
  }
  return t.name;
}

const isDyn = (t: CheckType) => t.kind === "scalar" && t.scalar === "dyn";
const isNumeric = (t: CheckType) =>
  t.kind === "scalar" && (t.scalar === "int" || t.scalar === "uint" || t.scalar === "double");

/** Whether a value of type `arg` may be passed where `param` is expected. */
function assignable(param: CelType, arg: CheckType): boolean {
  if (isDyn(param) || isDyn(arg)) return true;
  if (arg.kind === "record") return false;
  switch (param.kind) {
    case "scalar":
      return arg.kind === "scalar" && arg.scalar === param.scalar;
    case "list":
      return arg.kind === "list" && assignable(param.element, arg.element);
    case "map":
      return (
        arg.kind === "map" && assignable(param.key, arg.key) && assignable(param.value, arg.value)
      );
    case "object":
      return arg.kind === "object" && arg.name === param.name;
  }
}

/**
 * Whether two values may be compared with `==`: the same type, either side dyn, two numbers
 * (CEL compares numbers across int, uint and double), or null against a message.
 */
function comparable(a: CheckType, b: CheckType): boolean {
  if (isDyn(a) || isDyn(b)) return true;
  if (isNumeric(a) && isNumeric(b)) return true;
  if (a.kind === "record" || b.kind === "record") return a.kind === b.kind && a.name === b.name;
  const isNull = (t: CheckType) => t.kind === "scalar" && t.scalar === "null_type";
  if (isNull(a) || isNull(b))
    return isNull(a) ? b.kind === "object" || isNull(b) : a.kind === "object";
  if (a.kind === "list" && b.kind === "list") return comparable(a.element, b.element);
  if (a.kind === "map" && b.kind === "map") {
    return comparable(a.key, b.key) && comparable(a.value, b.value);
  }
  return a.kind === b.kind && a.name === b.name;
}

/** The common type of several values (list elements, ternary branches); dyn when they differ. */
function join(types: CheckType[]): CheckType {
  const first = types[0];
  if (first === undefined) return DYN;
  for (const t of types) {
    if (isDyn(t) || !sameType(t, first)) return DYN;
  }
  return first;
}

function sameType(a: CheckType, b: CheckType): boolean {
  if (a.kind === "list" && b.kind === "list") return sameType(a.element, b.element);
  if (a.kind === "map" && b.kind === "map") {
    return sameType(a.key, b.key) && sameType(a.value, b.value);
  }
  return a.kind === b.kind && a.name === b.name;
}

/** Records are maps at run time; functions that take a map accept them as map(string, dyn). */
function asCelType(t: CheckType): CelType {
  return t.kind === "record" ? mapType(CelScalar.STRING, DYN) : t;
}

/**
 * Type-checks a parsed condition against the declared variables and returns its result type.
 * Throws {@link CelCheckError} naming the first problem.
 */
export function checkExpr(
  env: CelEnv,
  variables: Readonly<Record<string, CheckType>>,
  parsed: ParsedExpr,
  options: CheckOptions = {},
): CheckType {
  const positions = parsed.sourceInfo?.positions ?? {};
  const columnOf = (e: Expr): number | undefined => {
    const offset = positions[e.id.toString()];
    return offset === undefined ? undefined : offset + 1;
  };
  const fail = (e: Expr, message: string): never => {
    throw new CelCheckError(message, columnOf(e));
  };

  /** Comprehension variables, innermost last. */
  const scopes: Array<Map<string, CheckType>> = [];

  const lookup = (name: string): CheckType | undefined => {
    for (let i = scopes.length - 1; i >= 0; i--) {
      const t = scopes[i]?.get(name);
      if (t !== undefined) return t;
    }
    return variables[name];
  };

  const selectField = (e: Expr, operand: CheckType, field: string): CheckType => {
    if (isDyn(operand)) return DYN;
    if (operand.kind === "record") {
      const t = operand.fields[field];
      if (t === undefined) {
        const known = Object.keys(operand.fields).join(", ");
        return fail(e, `${operand.name} has no field '${field}' (fields: ${known})`);
      }
      return t;
    }
    if (operand.kind === "map") {
      if (!assignable(operand.key, CelScalar.STRING)) {
        return fail(
          e,
          `cannot select '${field}' from ${typeName(operand)}: its keys are not strings`,
        );
      }
      return operand.value;
    }
    return fail(e, `cannot select field '${field}' from a value of type ${typeName(operand)}`);
  };

  const overload = (e: Expr, name: string, target: CheckType | undefined, args: CheckType[]) => {
    const group = env.funcs.find(name);
    const results: CelType[] = [];
    for (const fn of group ?? []) {
      if ((fn.target === undefined) !== (target === undefined)) continue;
      if (fn.arguments.length !== args.length) continue;
      if (target !== undefined && fn.target !== undefined && !assignable(fn.target, target)) {
        continue;
      }
      if (!fn.arguments.every((p, i) => assignable(p, args[i] as CheckType))) continue;
      results.push(fn.result);
    }
    if (results.length === 0) {
      const shown = operatorNames[name] ?? name;
      const argList = args.map(typeName).join(", ");
      if (group === undefined) {
        return fail(e, `undeclared function '${name}'`);
      }
      if (target !== undefined) {
        return fail(e, `no method '${shown}' on ${typeName(target)} taking (${argList})`);
      }
      return fail(e, `no matching overload for '${shown}' applied to (${argList})`);
    }
    // Several overloads can match when an argument is dyn: the result is only known when
    // they agree.
    return join(results);
  };

  const expectBool = (e: Expr, t: CheckType, what: string) => {
    if (!assignable(BOOL, t)) fail(e, `${what} must be bool, got ${typeName(t)}`);
  };

  const visit = (e: Expr): CheckType => {
    const kind = e.exprKind;
    switch (kind.case) {
      case "constExpr": {
        const c = kind.value.constantKind;
        switch (c.case) {
          case "boolValue":
            return BOOL;
          case "int64Value":
            return CelScalar.INT;
          case "uint64Value":
            return CelScalar.UINT;
          case "doubleValue":
            return CelScalar.DOUBLE;
          case "stringValue":
            return CelScalar.STRING;
          case "bytesValue":
            return CelScalar.BYTES;
          case "nullValue":
            return CelScalar.NULL;
          default:
            return fail(e, `unsupported constant ${String(c.case)}`);
        }
      }
      case "identExpr": {
        const t = lookup(kind.value.name);
        if (t === undefined) {
          const declared = Object.keys(variables).join(", ");
          return fail(e, `undeclared reference to '${kind.value.name}' (variables: ${declared})`);
        }
        return t;
      }
      case "selectExpr": {
        const sel = kind.value;
        if (sel.operand === undefined) return fail(e, "select without an operand");
        const operand = visit(sel.operand);
        const t = selectField(e, operand, sel.field);
        // has(x.f) parses into a test-only select: presence, always a bool.
        return sel.testOnly ? BOOL : t;
      }
      case "listExpr": {
        if (kind.value.optionalIndices.length > 0)
          return fail(e, "optional list elements are not supported");
        return listType(asCelType(join(kind.value.elements.map(visit))) as never);
      }
      case "structExpr": {
        const st = kind.value;
        if (st.messageName !== "")
          return fail(e, `creating messages (${st.messageName}) is not supported`);
        const keys: CheckType[] = [];
        const values: CheckType[] = [];
        for (const entry of st.entries) {
          if (entry.optionalEntry) return fail(e, "optional map entries are not supported");
          if (entry.keyKind.case !== "mapKey" || entry.value === undefined) {
            return fail(e, "malformed map literal");
          }
          const k = visit(entry.keyKind.value);
          if (
            !(
              isDyn(k) ||
              (k.kind === "scalar" && ["int", "uint", "bool", "string"].includes(k.scalar))
            )
          ) {
            return fail(e, `map keys must be int, uint, bool or string, got ${typeName(k)}`);
          }
          keys.push(k);
          values.push(visit(entry.value));
        }
        return mapType(asCelType(join(keys)) as never, asCelType(join(values)));
      }
      case "comprehensionExpr": {
        const c = kind.value;
        if (c.iterRange === undefined || c.accuInit === undefined)
          return fail(e, "malformed macro");
        if (c.loopCondition === undefined || c.loopStep === undefined || c.result === undefined) {
          return fail(e, "malformed macro");
        }
        if (c.iterVar2 !== "") return fail(e, "two-variable comprehensions are not supported");
        const range = visit(c.iterRange);
        let iterType: CheckType;
        if (isDyn(range)) iterType = DYN;
        else if (range.kind === "list") iterType = range.element;
        else if (range.kind === "map") iterType = range.key;
        else return fail(c.iterRange, `cannot iterate over a value of type ${typeName(range)}`);
        const accuType = visit(c.accuInit);
        scopes.push(new Map([[c.accuVar, accuType]]));
        scopes.push(new Map([[c.iterVar, iterType]]));
        expectBool(c.loopCondition, visit(c.loopCondition), "a macro's loop condition");
        const step = visit(c.loopStep);
        if (!comparable(accuType, step) && !(accuType.kind === "list" && step.kind === "list")) {
          fail(c.loopStep, `macro step has type ${typeName(step)}, expected ${typeName(accuType)}`);
        }
        scopes.pop();
        const result = visit(c.result);
        scopes.pop();
        return result;
      }
      case "callExpr":
        return visitCall(e, kind.value);
      default:
        return fail(e, "empty expression");
    }
  };

  const visitCall = (
    e: Expr,
    call: Extract<Expr["exprKind"], { case: "callExpr" }>["value"],
  ): CheckType => {
    const name = call.function;
    if (call.target === undefined) {
      switch (name) {
        case "_&&_":
        case "_||_": {
          for (const arg of call.args) {
            expectBool(arg, visit(arg), `each operand of '${operatorNames[name]}'`);
          }
          return BOOL;
        }
        case "@not_strictly_false": {
          const [arg] = call.args;
          if (arg !== undefined) expectBool(arg, visit(arg), "a macro predicate");
          return BOOL;
        }
        case "_?_:_": {
          const [cond, a, b] = call.args;
          if (cond === undefined || a === undefined || b === undefined)
            return fail(e, "malformed ?:");
          expectBool(cond, visit(cond), "the condition of '?:'");
          const ta = visit(a);
          const tb = visit(b);
          if (!comparable(ta, tb)) {
            return fail(
              e,
              `the branches of '?:' have different types: ${typeName(ta)} and ${typeName(tb)}`,
            );
          }
          return sameType(ta, tb) ? ta : DYN;
        }
        case "_==_":
        case "_!=_": {
          const [a, b] = call.args.map(visit);
          if (a === undefined || b === undefined) return fail(e, "malformed comparison");
          if (!comparable(a, b)) {
            return fail(
              e,
              `no matching overload for '${operatorNames[name]}' applied to (${typeName(a)}, ${typeName(b)}): the values can never be equal`,
            );
          }
          return BOOL;
        }
        case "_[_]": {
          const [operand, index] = call.args.map(visit);
          if (operand === undefined || index === undefined) return fail(e, "malformed index");
          if (isDyn(operand)) return DYN;
          if (operand.kind === "list") {
            if (
              !(
                isDyn(index) ||
                (index.kind === "scalar" && (index.scalar === "int" || index.scalar === "uint"))
              )
            ) {
              return fail(e, `a list index must be an int, got ${typeName(index)}`);
            }
            return operand.element;
          }
          if (operand.kind === "map") {
            if (!comparable(operand.key, index)) {
              return fail(e, `a key of ${typeName(operand)} cannot be ${typeName(index)}`);
            }
            return operand.value;
          }
          if (operand.kind === "record") {
            return fail(e, `cannot index ${operand.name}; select its fields with '.'`);
          }
          return fail(e, `cannot index a value of type ${typeName(operand)}`);
        }
        case "@in": {
          const [element, container] = call.args.map(visit);
          if (element === undefined || container === undefined) return fail(e, "malformed 'in'");
          if (isDyn(container)) return BOOL;
          if (container.kind === "list") {
            if (!comparable(element, container.element)) {
              return fail(e, `a ${typeName(element)} can never be in a ${typeName(container)}`);
            }
            return BOOL;
          }
          if (container.kind === "map") {
            if (!comparable(element, container.key)) {
              return fail(e, `a ${typeName(element)} can never be a key of ${typeName(container)}`);
            }
            return BOOL;
          }
          return fail(e, `'in' needs a list or a map on its right, got ${typeName(container)}`);
        }
        case "has":
          return fail(e, "has() takes a field selection, e.g. has(request.headers.origin)");
      }
    }
    const target = call.target === undefined ? undefined : visit(call.target);
    const args = call.args.map(visit);
    const [first] = call.args;
    if (
      name === "matches" &&
      options.literalPattern !== undefined &&
      first?.exprKind.case === "constExpr" &&
      first.exprKind.value.constantKind.case === "stringValue"
    ) {
      const problem = options.literalPattern(first.exprKind.value.constantKind.value);
      if (problem !== undefined) fail(first, problem);
    }
    return overload(
      e,
      name,
      target === undefined ? undefined : recordAsMap(target),
      args.map(recordAsMap),
    );
  };

  return visit(parsed.expr);
}

function recordAsMap(t: CheckType): CheckType {
  return t.kind === "record" ? mapType(CelScalar.STRING, DYN) : t;
}
