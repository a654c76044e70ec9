/**
 * The SQLSTATE code of a database error (`23505` for a unique violation), on both `pg` and
 * PGlite, whose errors both carry a `code` field; undefined for anything else.
 */
export function sqlState(error: unknown): string | undefined {
  if (typeof error !== "object" || error === null || !("code" in error)) return undefined;
  const code = (error as { code: unknown }).code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * Whether `error` is a unique-constraint violation, optionally on the named constraint:
 * how stores turn a duplicate insert into `alreadyExists` or an idempotent replay.
 */
export function isUniqueViolation(error: unknown, constraint?: string): boolean {
  if (sqlState(error) !== "23505") return false;
  if (constraint === undefined) return true;
  return (error as { constraint?: unknown }).constraint === constraint;
}
