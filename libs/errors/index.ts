import { Code, ConnectError } from "@connectrpc/connect";

/**
 * What went wrong, in terms a caller can act on. Domain code throws DomainError with one
 * of these; the RPC layer maps it to a Connect code in one place (toConnectError), and
 * anything else becomes Internal with its cause logged, never shown.
 */
export type ErrorKind =
  | "invalid_argument"
  | "not_found"
  | "already_exists"
  | "failed_precondition"
  | "aborted"
  | "permission_denied"
  | "unauthenticated"
  | "unavailable"
  | "resource_exhausted";

/** An error whose message is safe to show to the caller (it never holds a secret). */
export class DomainError extends Error {
  readonly kind: ErrorKind;
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DomainError";
    this.kind = kind;
  }
}

export const invalidArgument = (message: string) => new DomainError("invalid_argument", message);
export const notFound = (message: string) => new DomainError("not_found", message);
export const alreadyExists = (message: string) => new DomainError("already_exists", message);
export const failedPrecondition = (message: string) =>
  new DomainError("failed_precondition", message);
export const permissionDenied = (message: string) => new DomainError("permission_denied", message);
export const unauthenticated = (message: string) => new DomainError("unauthenticated", message);

const codes: Record<ErrorKind, Code> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  failed_precondition: Code.FailedPrecondition,
  aborted: Code.Aborted,
  permission_denied: Code.PermissionDenied,
  unauthenticated: Code.Unauthenticated,
  unavailable: Code.Unavailable,
  resource_exhausted: Code.ResourceExhausted,
};

/**
 * Maps any thrown value to a ConnectError. DomainError keeps its message; ConnectError
 * passes through; everything else becomes Internal with a generic message and the
 * original kept as `cause` for the server log only.
 */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof DomainError)
    return new ConnectError(err.message, codes[err.kind], undefined, undefined, err);
  return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}
